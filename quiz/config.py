"""Settings: defaults, then ``QUIZ_*`` environment variables, then test overrides."""

from __future__ import annotations

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


def defaults(instance_path: str) -> dict:
    """Settings for local use: SQLite in the instance folder, debug off."""
    return {
        "ENV": "development",
        "DATABASE_URL": f"sqlite:///{Path(instance_path) / 'quiz.sqlite'}",
        "SECRET_KEY": None,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "LEADERBOARD_PAGE_SIZE": 20,
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
    key = config.get("SECRET_KEY") or ""
    if len(key) < MIN_SECRET_LENGTH:
        problems.append(
            f"QUIZ_SECRET_KEY must be set to a random value of at least "
            f"{MIN_SECRET_LENGTH} characters"
        )
    if config.get("DEBUG"):
        problems.append("QUIZ_DEBUG must be off in production")
    return problems


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_options(url: str) -> dict:
    """Connection options per database: SQLite waits for locks instead of failing."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {"pool_pre_ping": True}
