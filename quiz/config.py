"""Settings: defaults, then ``QUIZ_*`` environment variables, then test overrides."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = PROJECT_ROOT / "templates"
STATIC_DIR = PROJECT_ROOT / "static"
QUESTIONS_DIR = PROJECT_ROOT / "questions"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message names the setting."""


def defaults(instance_path: str, env: str = "development") -> dict:
    """Settings for local use (SQLite in the instance folder, debug off); production
    also marks cookies Secure."""
    production = env == "production"
    return {
        "ENV": env,
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'quiz.sqlite'}",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        # Browsers accept __Host- cookies only over HTTPS, for this host and path "/":
        # no subdomain or plain-HTTP page can set or shadow them.
        "SESSION_COOKIE_NAME": "__Host-session" if production else "session",
        "REMEMBER_COOKIE_NAME": "__Host-remember_token"
        if production
        else "remember_token",
        "WTF_CSRF_TIME_LIMIT": None,
        "LEADERBOARD_PAGE_SIZE": 20,
        "REMEMBER_COOKIE_DURATION": 14 * 24 * 3600,
        # Flask-Limiter: per-process memory by default; a redis:// URI shares the
        # counts between app servers.
        "RATELIMIT_STORAGE_URI": "memory://",
        # Fixed windows: sign-in gives back the units a successful attempt took.
        "RATELIMIT_STRATEGY": "fixed-window",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_SIGNIN_ACCOUNT": "5 per 15 minutes",
        "RATELIMIT_SIGNIN_ADDRESS": "20 per 15 minutes",
        "RATELIMIT_GUESTS": "30 per hour",
        "RATELIMIT_REGISTER": "10 per hour",
        "RATELIMIT_ACCOUNT_CHANGES": "10 per 15 minutes",  # the change-password form
        "PERMANENT_SESSION_LIFETIME": 90 * 24 * 3600,
        # A session's cookie is re-sent when the session changes (a sign-in, a flash
        # message) and, for a permanent one, on the first visit of each day
        # (security._refresh_session_daily), not re-signed on every page view.
        "SESSION_REFRESH_EACH_REQUEST": False,
        # How many proxies in front of the app set X-Forwarded-For (0: none).
        "PROXY_HOPS": 0,
        # Check a pooled PostgreSQL connection before use (one round trip) when it has
        # rested in the pool more than DATABASE_PING_AFTER seconds (0: every time).
        "DATABASE_PRE_PING": True,
        "DATABASE_PING_AFTER": 1.0,
        # On PostgreSQL, keep the rows every view reads in each process, dropped when
        # the database announces a change (quiz.changes); off: read them every time.
        "CHANGE_FEED": True,
        # Worker processes per app server (default: $WEB_CONCURRENCY, else 1); production
        # checks the rate-limit store against it.
        "WORKERS": None,
    }


def load_secret_key(instance_path: str) -> str:
    """Return the instance folder's secret key, generating it (mode 0600) on first use."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def check_production(config: dict) -> list[str]:
    """List what makes these settings unsafe for production (empty when they are fine)."""
    problems = []
    key = str(config.get("SECRET_KEY") or "")  # an all-digit key arrives as a number
    if len(key) < MIN_SECRET_LENGTH:
        problems.append(
            f"QUIZ_SECRET_KEY must be set to a random value of at least "
            f"{MIN_SECRET_LENGTH} characters"
        )
    if config.get("DEBUG"):
        problems.append("QUIZ_DEBUG (and FLASK_DEBUG) must be off in production")
    workers = int(config.get("WORKERS") or os.environ.get("WEB_CONCURRENCY") or 1)
    if workers > 1 and str(config.get("RATELIMIT_STORAGE_URI", "")).startswith(
        "memory"
    ):
        problems.append(
            f"QUIZ_RATELIMIT_STORAGE_URI must be shared (redis://...) with {workers} "
            "workers (QUIZ_WORKERS / WEB_CONCURRENCY): per-process counts let every "
            "worker allow the whole limit"
        )
    if not config.get("SESSION_COOKIE_SECURE") or not config.get(
        "REMEMBER_COOKIE_SECURE"
    ):
        problems.append(
            "QUIZ_SESSION_COOKIE_SECURE and QUIZ_REMEMBER_COOKIE_SECURE must be on "
            "(serve production over HTTPS)"
        )
    return problems


def deployment_settings(instance_path: str, environ=os.environ) -> dict:
    """The settings production would start with, read from ``QUIZ_*`` variables, for
    ``check-deploy`` (which must report problems rather than refuse to run)."""
    from flask import Config
    from flask.helpers import get_debug_flag

    settings = Config(instance_path)
    settings.from_mapping(
        defaults(instance_path, environ.get("QUIZ_ENV", "production"))
    )
    settings["DEBUG"] = get_debug_flag()  # FLASK_DEBUG, as the app itself would see it
    for key, raw in environ.items():
        if key.startswith("QUIZ_"):
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            settings[key[len("QUIZ_") :]] = value
    return dict(settings)


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _json_dumps(value) -> str:
    # Keep non-ASCII text as is, so searches in JSON columns (tags) match it.
    return json.dumps(value, ensure_ascii=False)


def flag(value: object) -> bool:
    """A yes/no setting from the environment: true/false, on/off, yes/no or 1/0."""
    if isinstance(value, bool | int):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"1", "true", "on", "yes"}:
        return True
    if text in {"0", "false", "off", "no", ""}:
        return False
    raise ConfigError(f"{value!r} is not on or off (use true/false, on/off, 1/0)")


def engine_options(url: str) -> dict:
    """Connection options per database: SQLite waits for locks instead of failing.

    PostgreSQL's pool hands out the connection used last: under steady load the same
    few stay busy and need no check before use (see ``quiz.pool``), while the others
    rest and are checked when next used.
    """
    if url.startswith("sqlite"):
        return {"json_serializer": _json_dumps, "connect_args": {"timeout": 15}}
    return {"json_serializer": _json_dumps, "pool_use_lifo": True}


def seconds(name: str, value: object) -> float:
    """A duration setting in seconds: a number, zero or more."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number >= 0:  # also refuses NaN
        raise ConfigError(f"QUIZ_{name} must be a number of seconds, not {value!r}")
    return number
