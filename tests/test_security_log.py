"""Security events reach the ``quiz.security`` log, with user input neutralised."""

import logging

import pytest

from quiz.events import neutralise
from tests.factories import PASSWORD, make_account


@pytest.fixture
def events(caplog):
    caplog.set_level(logging.INFO, logger="quiz.security")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "quiz.security"]


def test_sign_in_success_and_failure_are_logged(app, client, events):
    with app.app_context():
        make_account()
    client.post(
        "/auth/login", data={"email": "admin@example.org", "password": "nope nope"}
    )
    client.post(
        "/auth/login", data={"email": "admin@example.org", "password": PASSWORD}
    )
    lines = [line for line in events() if line.startswith("sign-in ")]
    failure = next(line for line in lines if "result=failure" in line)
    assert "email=admin@example.org" in failure
    assert any("result=success user=" in line for line in lines)
    assert all(" request=" in line for line in lines)  # the id shown on pages


def test_control_characters_cannot_forge_log_lines(app, client, events):
    forged = "x@example.org\nsign-in result=success user=1"
    client.post("/auth/login", data={"email": forged, "password": "whatever!"})
    failure = next(line for line in events() if "result=failure" in line)
    assert "\n" not in failure and "\\n" in failure


def test_denied_access_and_role_changes_are_logged(app, client, events):
    with app.app_context():
        make_account("p@example.org", role="player")
        make_account("a@example.org", role="admin")
    client.post("/auth/login", data={"email": "p@example.org", "password": PASSWORD})
    client.get("/admin/users")
    assert any(
        line.startswith("access-denied") and "needs=admin" in line for line in events()
    )
    client.post("/auth/logout")
    client.post("/auth/login", data={"email": "a@example.org", "password": PASSWORD})
    client.post("/admin/users/1/role", data={"role": "trainer"})
    assert any(line.startswith("user.role") for line in events())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("a\nb", "a\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("back\\slash", "back\\\\slash"),
        ("x" * 250, "x" * 200 + "…"),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected
