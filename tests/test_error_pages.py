"""With debug off, every error is the app's own page: no traceback, a reference id."""

import io
import logging

import pytest

from tests.factories import make_quiz


@pytest.fixture
def app_config(app_config):
    app_config["WTF_CSRF_ENABLED"] = True
    return app_config


def check_page(response, code, text):
    html = response.get_data(as_text=True)
    assert response.status_code == code
    assert text in html and 'class="panel error-page"' in html
    assert "Traceback" not in html and "werkzeug" not in html.lower()
    assert response.headers["X-Request-ID"] in html


def test_400_csrf(client):
    check_page(client.post("/guest", data={"display_name": "x"}), 400, "Form expired")


def test_403(app, client):
    from tests.factories import PASSWORD, make_account

    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        make_account("p@example.org", role="player")
    client.post("/auth/login", data={"email": "p@example.org", "password": PASSWORD})
    check_page(client.get("/admin/"), 403, "You do not have permission")


def test_404_is_logged_with_its_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="quiz"):
        response = client.get("/no/such/page")
    check_page(response, 404, "There is nothing at this address")
    assert any(
        response.headers["X-Request-ID"] in r.getMessage() and "404" in r.getMessage()
        for r in caplog.records
    )


def test_405(client):
    response = client.put("/")
    check_page(response, 405, "does not accept that kind of request")
    assert "GET" in response.headers["Allow"]


def test_413(app, client):
    app.config["WTF_CSRF_ENABLED"] = False
    body = {
        "bank": (io.BytesIO(b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10)), "b.yaml")
    }
    check_page(
        client.post("/guest", data=body, content_type="multipart/form-data"),
        413,
        "The upload is too large",
    )


def test_429(app, client):
    app.config["WTF_CSRF_ENABLED"] = False
    app.config["RATELIMIT_GUESTS"] = "1 per hour"
    client.post("/guest", data={"display_name": "First"})
    other = app.test_client()
    response = other.post("/guest", data={"display_name": "Second"})
    check_page(response, 429, "wait")
    assert int(response.headers["Retry-After"]) > 0


def test_500_logs_the_error_with_the_request_id(app, client, monkeypatch, caplog):
    from quiz import catalogue

    def broken(player):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(catalogue, "cards", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with app.app_context():
        make_quiz()
    with caplog.at_level(logging.ERROR):
        response = client.get("/")
    check_page(response, 500, "Something went wrong on our side")
    assert "internal detail" not in response.get_data(as_text=True)
    request_id = response.headers["X-Request-ID"]
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_newline_in_the_path_cannot_forge_a_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="quiz"):
        client.get("/nope%0aHTTP 200 [request deadbeef] on GET /forged")
    lines = [r.getMessage() for r in caplog.records if "HTTP 404" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines)
    assert "\\n" in lines[0]
