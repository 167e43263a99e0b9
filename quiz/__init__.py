"""Security-awareness quizzes: the application factory."""

from __future__ import annotations

import gc
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from . import config, models, pool, sqlite
from .extensions import csrf, db, limiter, login_manager, migrate
from .flaskapp import QuizFlask


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure the app: settings, extensions, blueprints, errors, CLI."""
    app = QuizFlask(
        __name__,
        instance_relative_config=True,
        template_folder=str(config.TEMPLATE_DIR),
        static_folder=str(config.STATIC_DIR),
    )
    configure(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    if not app.testing:
        settle_memory()
    return app


def settle_memory() -> None:
    """Take what the app was built from out of the garbage collector's way.

    A full collection walks every object the process holds: in a worker, some
    70 to 120 ms, measured under load, during which its requests wait (and, on
    SQLite, any other worker wanting the write lock it might hold). The objects
    alive once the app is built (modules, SQLAlchemy's metadata, compiled
    templates) live as long as the process, so they are frozen: collections
    skip them (10 to 25 ms then). With gunicorn's ``--preload`` this runs
    before the workers fork, and they share those pages of memory longer.
    """
    gc.collect()
    gc.freeze()


def configure(app: Flask, test_config: dict | None) -> None:
    env = (test_config or {}).get("ENV") or os.environ.get("QUIZ_ENV", "development")
    app.config.from_mapping(config.defaults(app.instance_path, env))
    app.config.from_prefixed_env("QUIZ")
    if test_config:
        app.config.from_mapping(test_config)
    if app.config["ENV"] == "production":
        problems = config.check_production(app.config)
        if problems:
            raise config.ConfigError("Refusing to start: " + "; ".join(problems))
    elif not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.load_secret_key(app.instance_path)
    url = config.normalise_database_url(app.config["DATABASE_URL"])
    if url.startswith("sqlite:///"):
        os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["DATABASE_PING_AFTER"] = config.seconds(
        "DATABASE_PING_AFTER", app.config["DATABASE_PING_AFTER"]
    )
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", config.engine_options(url))
    if app.config["PROXY_HOPS"]:
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(config.MIGRATIONS_DIR),
        render_as_batch=True,
        include_object=models.include_in_migrations,
    )
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    from . import cache, changes, reads, security

    with app.app_context():
        reads.guard_core_transactions(db.engine)  # before SQLite's BEGIN IMMEDIATE
        if db.engine.dialect.name == "sqlite":
            sqlite.configure(db.engine)
        elif config.flag(app.config["DATABASE_PRE_PING"]):
            pool.ping_after_rest(db.engine, app.config["DATABASE_PING_AFTER"])

    security.init_app(app)
    cache.init_app(app)
    reads.init_app(app)  # its commit listener first: changes count once sent
    changes.init_app(app)


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` URL parts no larger than a database integer: a longer number is a
    404 like any other unknown id, not a database error."""

    def __init__(self, url_map, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, **kwargs)


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntConverter
    from .admin import bp as admin_bp
    from .auth import bp as auth_bp
    from .play import bp as play_bp
    from .trainer import bp as trainer_bp

    app.register_blueprint(play_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(trainer_bp)


def register_errorhandlers(app: Flask) -> None:
    from . import errors, formatting, layout

    errors.init_app(app)
    formatting.init_app(app)
    layout.init_app(app)


def register_commands(app: Flask) -> None:
    from . import cli

    cli.init_app(app)
