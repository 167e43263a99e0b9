"""Response headers and cookie flags."""

import pytest

from quiz import create_app
from tests.factories import PASSWORD, make_account


@pytest.mark.parametrize("url", ["/", "/leaderboard", "/auth/login", "/nope"])
def test_every_response_carries_the_security_headers(client, url):
    headers = client.get(url).headers
    csp = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert len(headers["X-Request-ID"]) == 16


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
    secure = client.get("/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize(
    ("url", "no_store"),
    [
        ("/", False),
        ("/leaderboard", False),
        ("/auth/login", True),
        ("/auth/account", True),
        ("/admin/", True),
        ("/trainer/", True),
    ],
)
def test_personal_and_admin_pages_are_not_stored(app, client, url, no_store):
    with app.app_context():
        make_account()
    client.post(
        "/auth/login", data={"email": "admin@example.org", "password": PASSWORD}
    )
    response = client.get(url)
    assert (response.headers.get("Cache-Control") == "no-store") is no_store


def test_development_cookies_are_httponly_and_lax(app, client):
    with app.app_context():
        make_account()
    response = client.post(
        "/auth/login",
        data={"email": "admin@example.org", "password": PASSWORD, "remember": "y"},
    )
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    remember = next(c for c in cookies if c.startswith("remember_token="))
    for cookie in (session, remember):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_cookies_are_secure_and_host_prefixed(app_config, tmp_path):
    production = create_app({**app_config, "ENV": "production", "TESTING": True})
    with production.app_context():
        from quiz.extensions import db

        db.create_all()
        make_account()
    client = production.test_client()
    response = client.post(
        "/auth/login",
        base_url="https://localhost",
        data={"email": "admin@example.org", "password": PASSWORD, "remember": "y"},
    )
    cookies = response.headers.getlist("Set-Cookie")
    names = {c.split("=", 1)[0] for c in cookies}
    assert {"__Host-session", "__Host-remember_token"} <= names
    for cookie in cookies:
        if cookie.startswith("__Host-"):
            assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
            assert "Domain=" not in cookie


def test_exports_are_not_stored(app, client):
    with app.app_context():
        make_account()
    client.post(
        "/auth/login", data={"email": "admin@example.org", "password": PASSWORD}
    )
    for url in (
        "/trainer/export/attempts.csv",
        "/trainer/export/attempts.xlsx",
        "/trainer/statistics",
        "/static/css/app.css",
    ):
        response = client.get(url)
        response.close()
        assert "Content-Security-Policy" in response.headers, url
        if not url.startswith("/static"):
            assert response.headers["Cache-Control"] == "no-store", url


def test_a_guest_session_is_re_signed_once_a_day_not_on_every_view(client):
    """The cookie's lifetime slides with the player's visits (PERMANENT_SESSION_LIFETIME
    after the last day seen) without re-sending it on every page view."""
    client.post("/guest", data={"display_name": "Daily"})
    client.get("/")
    assert client.get("/").headers.get("Set-Cookie") is None  # seen today already
    with client.session_transaction() as session:
        session["seen"] = "2026-01-01"
    refreshed = client.get("/leaderboard")
    assert "session=" in refreshed.headers.get("Set-Cookie", "")
    assert "Expires=" in refreshed.headers["Set-Cookie"]
    assert client.get("/").headers.get("Set-Cookie") is None
