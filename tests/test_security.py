"""Security basics of issue-one scope: headers, safe redirects, CSRF, errors."""

import pytest

from quiz.security import safe_next_url


def test_security_headers_on_every_response(client):
    for url in ("/", "/leaderboard", "/nope", "/static/css/app.css"):
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "Referrer-Policy" in response.headers


def test_pages_have_no_inline_scripts_or_styles(client):
    html = client.get("/guest").get_data(as_text=True)
    assert "<script>" not in html and "<style" not in html and "style=" not in html
    assert 'src="/static/js/quiz.js"' in html


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http:///evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\tevil",
        " /path",
        "",
        None,
    ],
)
def test_unsafe_next_urls_are_refused(target):
    assert safe_next_url(target) is None


@pytest.mark.parametrize("target", ["/", "/quizzes/alpha", "/leaderboard?period=week"])
def test_local_paths_are_allowed(target):
    assert safe_next_url(target) == target


@pytest.fixture
def app_config(app_config):
    app_config["WTF_CSRF_ENABLED"] = True
    return app_config


def test_post_without_csrf_token_is_refused(client):
    response = client.post("/guest", data={"display_name": "Mallory"})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)


def test_post_with_csrf_token_is_accepted(client):
    import re

    html = client.get("/guest").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(
        "/guest", data={"display_name": "Alice", "csrf_token": token}
    )
    assert response.status_code == 302


def test_error_pages_are_the_apps_own(client):
    response = client.get("/attempts/not-a-number")
    assert response.status_code == 404
    assert "There is nothing at this address" in response.get_data(as_text=True)
    response = client.delete("/")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_unexpected_errors_show_no_traceback(app, client, monkeypatch):
    from quiz import catalogue

    def broken(player):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(catalogue, "cards", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in html and "Traceback" not in html
    assert "Something went wrong on our side" in html
