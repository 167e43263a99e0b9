"""Fixtures: a fresh app and database per test, on SQLite or on PostgreSQL.

Set ``QUIZ_TEST_DATABASE_URL`` (e.g. ``postgresql+psycopg://127.0.0.1:5432/test``) to
run the whole suite against PostgreSQL; otherwise each test gets its own SQLite file.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, Type

from quiz import create_app, passwords
from quiz.extensions import db

POSTGRES_URL = os.environ.get("QUIZ_TEST_DATABASE_URL", "")

requires_postgres = pytest.mark.skipif(
    not POSTGRES_URL.startswith("postgresql"),
    reason="PostgreSQL test: set QUIZ_TEST_DATABASE_URL=postgresql+psycopg://... to run",
)


def _database_url(tmp_path) -> str:
    return POSTGRES_URL or f"sqlite:///{tmp_path / 'test.sqlite'}"


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """argon2id with tiny costs: the suite hashes hundreds of passwords."""
    monkeypatch.setattr(
        passwords,
        "_hasher",
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID),
    )
    passwords._dummy_hash.cache_clear()
    yield
    passwords._dummy_hash.cache_clear()


@pytest.fixture
def app_config(tmp_path) -> dict:
    """Settings for a test app; a test may change them before using ``app``."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "DATABASE_URL": _database_url(tmp_path),
        "WTF_CSRF_ENABLED": False,
    }


@pytest.fixture
def app(app_config, tmp_path):
    application = create_app(app_config)
    application.instance_path = str(tmp_path / "instance")
    with application.app_context():
        if POSTGRES_URL:
            _reset_postgres()
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        if POSTGRES_URL:
            _reset_postgres()
        db.engine.dispose()


def _reset_postgres() -> None:
    """Drop everything in the test database's public schema."""
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def ctx(app):
    """An application context, for tests that call domain functions directly."""
    with app.app_context():
        yield


class AuthActions:
    """Sign in and out through the real forms, as a person would."""

    def __init__(self, client):
        self._client = client

    def login(self, email="admin@example.org", password=None, **extra):
        from tests.factories import PASSWORD

        return self._client.post(
            "/auth/login",
            data={"email": email, "password": password or PASSWORD, **extra},
        )

    def logout(self):
        return self._client.post("/auth/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def population(app):
    """A quiz, a guest, and one account per role (player, trainer, admin): their ids."""
    from tests.factories import make_account, make_player, make_quiz

    with app.app_context():
        make_quiz("alpha")
        make_player("Somebody")
        return {
            role: make_account(f"{role}@example.org", role=role).id
            for role in ("player", "trainer", "admin")
        }


@pytest.fixture
def admin(app, client, auth):
    """The test client, signed in as an admin."""
    from tests.factories import make_account

    with app.app_context():
        make_account(name="Ada Admin")
    auth.login()
    return client


@pytest.fixture
def sqlite_app(app_config, tmp_path):
    """The app on its own SQLite file, even when the suite runs on PostgreSQL, and the
    file's path: a quiz "alpha" is in it."""
    from tests.factories import make_quiz

    path = tmp_path / "own.sqlite"
    application = create_app({**app_config, "DATABASE_URL": f"sqlite:///{path}"})
    with application.app_context():
        db.create_all()
        make_quiz("alpha")
    yield application, path
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def renders(monkeypatch) -> list:
    """The template of every piece of a page rendered rather than served from the
    cache of pieces, in order (``quiz.fragments.piece`` and those who call it)."""
    from quiz import fragments, layout
    from quiz.play import views

    made = []
    real = fragments.piece

    def counted(template, **context):
        made.append(template)
        return real(template, **context)

    for module in (fragments, layout, views):
        monkeypatch.setattr(module, "piece", counted)
    return made
