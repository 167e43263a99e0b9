"""Settings: a generated local secret, production refusing unsafe settings."""

import os
import stat

import pytest

from quiz import config, create_app
from quiz.config import (
    ConfigError,
    check_production,
    load_secret_key,
    normalise_database_url,
)


def test_secret_key_is_generated_once_with_mode_0600(tmp_path):
    first = load_secret_key(str(tmp_path))
    assert len(first) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600
    assert load_secret_key(str(tmp_path)) == first


def test_development_app_uses_the_instance_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("QUIZ_SECRET_KEY", raising=False)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert len(app.config["SECRET_KEY"]) >= 32


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "QUIZ_SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "QUIZ_SECRET_KEY must be set"),
        ({"SECRET_KEY": "k" * 40, "DEBUG": True}, "must be off in production"),
    ],
)
def test_production_refuses_unsafe_settings(tmp_path, settings, message):
    config = {"ENV": "production", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"}
    with pytest.raises(ConfigError, match=message):
        create_app({**config, **settings})


def test_production_starts_with_safe_settings(tmp_path):
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "k" * 40,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}",
        }
    )
    assert check_production(app.config) == []


def test_settings_come_from_quiz_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("QUIZ_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    monkeypatch.setenv("QUIZ_SECRET_KEY", "e" * 40)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("env.sqlite")
    assert app.config["SECRET_KEY"] == "e" * 40


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.sqlite", "sqlite:///x.sqlite"),
    ],
)
def test_database_urls_use_psycopg3(url, expected):
    assert normalise_database_url(url) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", True),
        ("off", False),
        ("true", True),
        ("0", False),
        (1, True),
        (False, False),
    ],
)
def test_on_off_settings_read_the_usual_spellings(value, expected):
    assert config.flag(value) is expected


def test_an_unclear_on_off_setting_is_refused_by_name():
    with pytest.raises(config.ConfigError, match="maybe"):
        config.flag("maybe")


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), ("0.5", 0.5), (0, 0.0)])
def test_durations_read_as_seconds(value, expected):
    assert config.seconds("DATABASE_PING_AFTER", value) == expected


@pytest.mark.parametrize("value", ["soon", -1, "nan", None])
def test_a_duration_that_is_not_seconds_is_refused_by_name(value):
    with pytest.raises(config.ConfigError, match="QUIZ_DATABASE_PING_AFTER"):
        config.seconds("DATABASE_PING_AFTER", value)
