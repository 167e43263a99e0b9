"""Each session's CSRF token is signed once and verified once per app, and nothing
else changes: another session's token, a forged one and a wrong referrer still fail."""

import re

import pytest

from quiz import csrf_tokens as csrf_module
from tests.factories import make_quiz

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


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


@pytest.fixture
def gus(app, full_checks):
    """A quiz, and a guest who joined it (their client and signed token)."""
    with app.app_context():
        make_quiz("alpha")
    return guest(app, "Gus")


def start(client, token: str):
    return client.post("/quizzes/alpha/start", data={"csrf_token": token})


def test_a_verified_token_is_checked_in_full_once(app, full_checks, gus):
    client, token = gus
    assert full_checks == [token]
    for _ in range(3):
        assert start(client, token).status_code == 302
    assert full_checks == [token]  # remembered: no second signature check


def test_a_token_remembered_for_one_session_fails_in_another(app, full_checks):
    with app.app_context():
        make_quiz("alpha")
    _gus, gus_token = guest(app, "Gus")
    eve, _eve_token = guest(app, "Eve")
    remembered = len(app.extensions[csrf_module.VERIFIED])
    refused = start(eve, gus_token)
    assert refused.status_code == 400
    assert "Form expired" in refused.get_data(as_text=True)
    assert full_checks[-1] == gus_token  # checked in full against Eve's session
    assert len(app.extensions[csrf_module.VERIFIED]) == remembered
    assert start(eve, gus_token).status_code == 400  # and again


def test_forged_and_missing_tokens_fail_and_are_not_remembered(app, full_checks, gus):
    client, token = gus
    middle = len(token) - 10  # inside the signature: a changed bit, not padding
    flipped = (
        token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    )
    for forged in (flipped, "", "x"):
        assert start(client, forged).status_code == 400
        assert start(client, forged).status_code == 400  # again in full
    assert full_checks.count("x") == 2
    assert len(app.extensions[csrf_module.VERIFIED]) == 1  # Gus's, from joining


def test_a_remembered_token_still_needs_the_right_referrer_over_https(
    app, full_checks, gus
):
    client, token = gus
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


def test_remembered_pairs_are_bounded(app):
    verified = app.extensions[csrf_module.VERIFIED]
    for n in range(csrf_module.REMEMBERED + 1):
        verified.put((f"signed {n}", f"token {n}"), True)
    assert len(verified) == csrf_module.REMEMBERED
    assert verified.find(("signed 0", "token 0")) is None  # the least recent left
    assert verified.find(("signed 1", "token 1"))


def _token_on(client, path: str) -> str:
    return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


def test_every_page_of_a_session_carries_the_same_signed_token(app, monkeypatch):
    """Flask-WTF signs afresh every second; the app signs a session's token once."""
    import itsdangerous.timed

    with app.app_context():
        make_quiz("alpha")
    client, token = guest(app, "Gus")
    now = itsdangerous.timed.time.time()
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: now + 5)
    assert _token_on(client, "/quizzes/alpha") == token
    attempt = start(client, token).headers["Location"]
    assert _token_on(client, f"{attempt}/questions/1") == token
    _other, other_token = guest(app, "Eve")
    assert other_token != token


def test_answering_question_after_question_checks_the_token_once(app, full_checks, gus):
    """As a browser does: each answer posts the token of the question's page."""
    client, token = gus
    attempt = start(client, token).headers["Location"]
    for position in (1, 2, 3):
        page = client.get(f"{attempt}/questions/{position}").get_data(as_text=True)
        choice = re.search(r'name="choice" value="(\d+)"', page)
        answered = client.post(
            f"{attempt}/questions/{position}",
            data={"choice": choice.group(1), "csrf_token": TOKEN.search(page).group(1)},
        )
        assert answered.status_code == 302
    assert full_checks == [token]


def test_a_token_sent_as_a_header_is_remembered_too(app, full_checks, gus):
    client, token = gus
    for _ in range(2):
        started = client.post("/quizzes/alpha/start", headers={"X-CSRFToken": token})
        assert started.status_code == 302
    assert full_checks == [token]


def test_with_a_time_limit_pages_are_signed_afresh_and_checked_in_full(
    app, full_checks, monkeypatch
):
    import itsdangerous.timed

    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    with app.app_context():
        make_quiz("alpha")
    client, token = guest(app, "Gus")
    assert start(client, token).status_code == 302
    assert start(client, token).status_code == 302
    assert full_checks == [token, token, token]
    assert len(app.extensions[csrf_module.VERIFIED]) == 0
    now = itsdangerous.timed.time.time()
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: now + 5)
    assert _token_on(client, "/quizzes/alpha") != token
