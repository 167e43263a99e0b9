"""Production refuses unsafe settings; check-deploy reports them without starting."""

import re

import pytest
from click.testing import CliRunner

from quiz import create_app
from quiz.cli import check_deploy_command
from quiz.config import ConfigError

SAFE = {"QUIZ_ENV": "production", "QUIZ_SECRET_KEY": "s" * 40}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"QUIZ_SECRET_KEY": ""}, "QUIZ_SECRET_KEY must be set"),
        ({"QUIZ_SECRET_KEY": "short"}, "QUIZ_SECRET_KEY must be set"),
        ({"QUIZ_DEBUG": "true"}, "QUIZ_DEBUG (and FLASK_DEBUG) must be off"),
        ({"FLASK_DEBUG": "1"}, "QUIZ_DEBUG (and FLASK_DEBUG) must be off"),
        ({"QUIZ_SECRET_KEY": "123456"}, "QUIZ_SECRET_KEY must be set"),
        ({"QUIZ_WORKERS": "4"}, "QUIZ_RATELIMIT_STORAGE_URI must be shared"),
        ({"WEB_CONCURRENCY": "3"}, "with 3 workers"),
        ({"QUIZ_SESSION_COOKIE_SECURE": "false"}, "must be on"),
    ],
)
def test_unsafe_settings_stop_production_and_are_reported(
    monkeypatch, tmp_path, environ, message
):
    for key, value in {**SAFE, **environ}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("QUIZ_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app()
    result = CliRunner().invoke(check_deploy_command)
    assert result.exit_code == 1
    assert message in result.output


def test_safe_settings_pass(monkeypatch, tmp_path):
    for key, value in SAFE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("QUIZ_WORKERS", "4")
    monkeypatch.setenv("QUIZ_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("QUIZ_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert create_app().config["ENV"] == "production"
    result = CliRunner().invoke(check_deploy_command)
    assert result.exit_code == 0 and "OK" in result.output
