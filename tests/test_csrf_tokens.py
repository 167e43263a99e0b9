"""CSRF tokens verified once are remembered per app, and nothing else changes:
another session's token, a forged one and a wrong referrer still fail."""

import re

import pytest

from quiz import csrf_tokens as csrf_module
from tests.factories import make_quiz

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def app_config(app_config):
    app_config["WTF_CSRF_ENABLED"] = True
    return app_config


@pytest.fixture
def full_checks(monkeypatch) -> list:
    """The tokens checked in full (signature and session), in order."""
    checked = []
    check = csrf_module.validate_csrf

    def counted(token, *args, **kwargs):
        checked.append(token)
        return check(token, *args, **kwargs)

    monkeypatch.setattr(csrf_module, "validate_csrf", counted)
    return checked


def guest(app, name: str):
    """A client signed in as a new guest, and its session's signed token."""
    client = app.test_client()
    token = TOKEN.search(client.get("/guest").get_data(as_text=True)).group(1)
    joined = client.post("/guest", data={"display_name": name, "csrf_token": token})
    assert joined.status_code == 302
    return client, token


def start(client, token: str):
    return client.post("/quizzes/alpha/start", data={"csrf_token": token})


def test_a_verified_token_is_checked_in_full_once(app, full_checks):
    with app.app_context():
        make_quiz("alpha")
    client, token = guest(app, "Gus")
    assert full_checks == [token]
    for _ in range(3):
        assert start(client, token).status_code == 302
    assert full_checks == [token]  # remembered: no second signature check


def test_a_token_remembered_for_one_session_fails_in_another(app, full_checks):
    with app.app_context():
        make_quiz("alpha")
    _gus, gus_token = guest(app, "Gus")
    eve, _eve_token = guest(app, "Eve")
    refused = start(eve, gus_token)
    assert refused.status_code == 400
    assert "Form expired" in refused.get_data(as_text=True)
    assert full_checks[-1] == gus_token  # checked in full against Eve's session
    assert (gus_token, None) not in app.extensions[csrf_module.VERIFIED]


def test_forged_and_missing_tokens_fail_and_are_not_remembered(app, full_checks):
    with app.app_context():
        make_quiz("alpha")
    client, token = guest(app, "Gus")
    for forged in (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "", "x"):
        assert start(client, forged).status_code == 400
        assert start(client, forged).status_code == 400  # again in full
    assert full_checks.count("x") == 2
    assert len(app.extensions[csrf_module.VERIFIED]) == 1  # Gus's, from joining


def test_a_remembered_token_still_needs_the_right_referrer_over_https(app, full_checks):
    with app.app_context():
        make_quiz("alpha")
    client, token = guest(app, "Gus")
    https = {"base_url": "https://localhost"}
    elsewhere = client.post(
        "/quizzes/alpha/start",
        data={"csrf_token": token},
        headers={"Referer": "https://evil.example.net/"},
        **https,
    )
    assert elsewhere.status_code == 400
    missing = client.post("/quizzes/alpha/start", data={"csrf_token": token}, **https)
    assert missing.status_code == 400
    same = client.post(
        "/quizzes/alpha/start",
        data={"csrf_token": token},
        headers={"Referer": "https://localhost/quizzes/alpha"},
        **https,
    )
    assert same.status_code == 302
    assert full_checks == [token]


def test_with_a_time_limit_every_check_is_in_full(app, full_checks):
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    with app.app_context():
        make_quiz("alpha")
    client, token = guest(app, "Gus")
    assert start(client, token).status_code == 302
    assert start(client, token).status_code == 302
    assert full_checks == [token, token, token]
    assert len(app.extensions[csrf_module.VERIFIED]) == 0


def test_the_oldest_verified_pair_leaves_first():
    verified = csrf_module.VerifiedTokens(2)
    for pair in (("a", "1"), ("b", "2"), ("c", "3")):
        verified.add(pair)
    assert ("a", "1") not in verified
    assert ("b", "2") in verified and ("c", "3") in verified
    assert len(verified) == 2
