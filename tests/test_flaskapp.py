"""The app's Flask class: remembered URLs and one session serializer per key."""

import pytest
from flask import Flask, url_for

from quiz import flaskapp

CASES = [
    ("play.index", {}),
    ("play.quiz", {"slug": "a quiz/with spaces"}),
    ("play.quiz_leaderboard", {"slug": "q", "page": 2, "period": "week"}),
    ("play.question", {"attempt_id": 7, "position": 3}),
    ("static", {"filename": "css/app.css"}),
    ("auth.login", {"next": "/quizzes/q?page=2&x=<y>"}),
    ("play.index", {"tag": ["a", "b"]}),  # unhashable: built every time
]


@pytest.mark.parametrize("root", ["", "/quiz"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_remembered_urls_are_the_urls_flask_builds(app, root, method):
    base = f"http://localhost{root}"
    with app.test_request_context("/", base_url=base, method=method):
        for endpoint, values in CASES:
            expected = Flask.url_for(app, endpoint, **values)
            assert expected.startswith(f"{root}/")
            assert url_for(endpoint, **values) == expected  # built
            assert url_for(endpoint, **values) == expected  # remembered
        assert url_for("play.index", _external=True) == f"{base}/"
        assert url_for("play.index", _anchor="main") == f"{root}/#main"


def test_another_application_root_gets_its_own_urls(app):
    with app.test_request_context("/", base_url="http://localhost/a"):
        assert url_for("play.index") == "/a/"
    with app.test_request_context("/", base_url="http://localhost/b"):
        assert url_for("play.index") == "/b/"


def test_remembered_urls_are_bounded(app, monkeypatch):
    monkeypatch.setattr(flaskapp, "MAX_URLS", 10)
    with app.test_request_context("/"):
        for page in range(1, 50):
            assert url_for("play.overall_leaderboard", page=page).endswith(f"={page}")
    assert len(app._built_urls) <= 10


def test_url_defaults_are_honoured(app):
    app.url_default_functions.setdefault(None, []).append(
        lambda endpoint, values: (
            values.setdefault("period", "week")
            if endpoint == "play.overall_leaderboard"
            else None
        )
    )
    with app.test_request_context("/"):
        assert url_for("play.overall_leaderboard") == "/leaderboard?period=week"


def test_one_session_serializer_per_secret_key(app, client):
    sessions = app.session_interface
    first = sessions.get_signing_serializer(app)
    assert sessions.get_signing_serializer(app) is first
    client.post("/guest", data={"display_name": "Key Rotation"})
    assert "Key Rotation" in client.get("/").get_data(as_text=True)
    app.secret_key = "another-secret-key-" + "x" * 40
    assert sessions.get_signing_serializer(app) is not first
    # The cookie signed with the old key no longer signs anyone in.
    assert "Key Rotation" not in client.get("/").get_data(as_text=True)
