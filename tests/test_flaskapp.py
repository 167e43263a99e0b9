"""The app's Flask class: remembered URLs, one session serializer per key, and
session cookies checked once."""

import gc
import time
from types import SimpleNamespace

import pytest
from flask import Flask, url_for

from quiz import create_app, flaskapp, settle_memory

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


def test_a_url_is_built_once_then_remembered(app, monkeypatch):
    built = []
    build = Flask.url_for

    def counted(self, endpoint, **values):
        built.append(endpoint)
        return build(self, endpoint, **values)

    monkeypatch.setattr(Flask, "url_for", counted)
    with app.test_request_context("/"):
        for _ in range(3):
            url_for("play.quiz", slug="alpha")
            url_for("play.overall_leaderboard", page=2)
    assert built == ["play.quiz", "play.overall_leaderboard"]


def test_lookalike_values_and_long_texts_are_built_every_time(app):
    with app.test_request_context("/"):
        assert url_for("play.overall_leaderboard", page=1).endswith("page=1")
        assert url_for("play.overall_leaderboard", page=True).endswith("page=True")
        assert url_for("play.overall_leaderboard", page=1.0).endswith("page=1.0")
        long_path = "/quizzes/" + "x" * 500
        assert long_path in url_for("auth.login", next=long_path).replace("%2F", "/")
    assert all(
        type(value) in (int, str) and len(str(value)) <= 100
        for key in app._built_urls
        for _, value in key[3:]
    )


def test_the_request_method_picks_among_rules_of_one_endpoint():
    app = flaskapp.QuizFlask(__name__)

    def view() -> str:
        return ""

    app.add_url_rule("/read", "thing", view, methods=["GET"])
    app.add_url_rule("/write", "thing", view, methods=["POST"])
    for _ in range(2):
        with app.test_request_context("/", method="GET"):
            assert url_for("thing") == "/read"
        with app.test_request_context("/", method="POST"):
            assert url_for("thing") == "/write"


def test_fragments_link_to_the_application_root_they_are_shown_under(app):
    from quiz.extensions import db
    from tests.factories import make_quiz

    with app.app_context():
        make_quiz("alpha")
        db.session.commit()
    client = app.test_client()
    for root in ("/a", "/b", "/a"):
        page = client.get("/", base_url=f"http://localhost{root}").get_data(
            as_text=True
        )
        assert f'href="{root}/quizzes/alpha"' in page
        other = "/b" if root == "/a" else "/a"
        assert f'href="{other}/quizzes/alpha"' not in page


def _counting_loads(app, monkeypatch) -> list:
    serializer = app.session_interface.get_signing_serializer(app)
    loads = serializer.loads
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return loads(*args, **kwargs)

    monkeypatch.setattr(serializer, "loads", counted)
    return calls


def _signed_in_as(client) -> str:
    with client.session_transaction() as session:
        return session.get("_user_id", "")


def test_a_session_cookie_is_checked_once_then_remembered(app, client, monkeypatch):
    client.post("/guest", data={"display_name": "Once"})
    client.get("/")  # shows the welcome: the cookie without it comes back
    calls = _counting_loads(app, monkeypatch)
    for _ in range(3):
        assert b"Once" in client.get("/").data
    assert calls == [1]
    assert _signed_in_as(client)


def test_a_remembered_cookie_still_expires(app, client, monkeypatch):
    client.post("/guest", data={"display_name": "Later"})
    client.get("/")  # shows the welcome: the cookie without it comes back
    calls = _counting_loads(app, monkeypatch)
    assert b"Later" in client.get("/").data  # checked and remembered
    assert calls == [1]
    later = time.time() + app.permanent_session_lifetime.total_seconds() + 60
    monkeypatch.setattr(flaskapp, "time", SimpleNamespace(time=lambda: later))
    assert b"Later" not in client.get("/").data
    assert calls == [1]  # refused by the remembered age, not checked again


def test_a_cookie_holding_flashed_messages_is_read_afresh(app, client, monkeypatch):
    client.post("/guest", data={"display_name": "Flashy"})  # flashes a welcome
    calls = _counting_loads(app, monkeypatch)
    client.get("/probe-none")  # a 404: the flash stays in the cookie, unread
    client.get("/probe-none")
    assert calls == [1, 1]


def test_a_tampered_cookie_is_refused_even_next_to_a_remembered_one(app, client):
    client.post("/guest", data={"display_name": "Genuine"})
    assert b"Genuine" in client.get("/").data
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name).value
    client.set_cookie(name, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    assert b"Genuine" not in client.get("/").data


def test_hooks_are_asked_once_whether_they_are_coroutines(app, client, monkeypatch):
    import flask.app

    asked = []
    real = flask.app.iscoroutinefunction
    monkeypatch.setattr(
        flask.app, "iscoroutinefunction", lambda f: asked.append(f) or real(f)
    )
    client.get("/")
    first = len(asked)
    client.get("/")
    client.get("/")
    assert first > 0 and len(asked) == first
    assert app.ensure_sync(len) is len  # not weakly referable: asked, not kept


def test_a_function_made_for_one_request_is_not_kept(app):
    def for_one_request():
        return None

    sync = app.ensure_sync(for_one_request)
    assert sync is for_one_request
    kept = len(app._plain_functions)
    del for_one_request, sync
    gc.collect()
    assert len(app._plain_functions) == kept - 1  # gone with the function


def test_a_served_app_freezes_what_it_was_built_from(monkeypatch):
    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    settle_memory()
    assert frozen == [True]
    create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})
    assert frozen == [True]  # not in tests: they build an app each


def _routes_refusing_some_values():
    """GET takes 1 to 10 only, PUT any number, DELETE 1 to 10 with a slash."""
    app = flaskapp.QuizFlask(__name__)
    app.add_url_rule("/n/<int(max=10):x>", "small", lambda x: "get", methods=["GET"])
    app.add_url_rule("/n/<int:x>", "any", lambda x: "put", methods=["PUT"])
    app.add_url_rule("/d/<int(max=10):x>/", "slash", lambda x: "d", methods=["DELETE"])
    return app.test_client()


@pytest.mark.parametrize(
    ("method", "path", "status", "allowed"),
    [
        ("GET", "/n/5", 200, None),
        ("POST", "/n/5", 405, {"GET", "HEAD", "OPTIONS", "PUT"}),
        # GET refuses 50: only PUT is offered
        ("POST", "/n/50", 405, {"PUT"}),
        ("DELETE", "/n/50", 405, {"PUT"}),
        # nothing takes the address: 404, whatever the method
        ("GET", "/d/50/", 404, None),
        ("GET", "/d/5/", 405, {"DELETE"}),
        # a doubled slash redirects to the address it names, which decides
        ("POST", "/n//5", 405, {"GET", "HEAD", "OPTIONS", "PUT"}),
        ("POST", "/n//50", 405, {"PUT"}),
        ("GET", "/d//5/", 405, {"DELETE"}),
        ("GET", "/d//50/", 404, None),
    ],
)
def test_a_405_offers_only_the_methods_that_take_the_address(
    method, path, status, allowed
):
    response = _routes_refusing_some_values().open(path, method=method)
    assert response.status_code == status
    if allowed is None:
        assert "Allow" not in response.headers
    else:
        assert set(response.headers["Allow"].split(", ")) - {"OPTIONS"} == (
            allowed - {"OPTIONS"}
        )
