"""Security plumbing: who the current player is, safe redirects, response headers."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, request

from . import sqlite
from .extensions import db, login_manager
from .models import User

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; "
    "script-src 'self'; "
    "style-src 'self'; "
    "img-src 'self' data:; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "frame-ancestors 'none'; "
    "form-action 'self'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def init_app(app: Flask) -> None:
    login_manager.login_view = "play.guest"
    login_manager.login_message = "Choose a display name to play."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    app.before_request(_declare_write_intent)
    app.after_request(_set_security_headers)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    return db.session.get(User, int(user_id))


def _declare_write_intent() -> None:
    # State changes are POSTs: begin their transaction holding SQLite's write lock.
    sqlite.set_write_intent(request.method not in ("GET", "HEAD", "OPTIONS"))


def _set_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    return response


def safe_next_url(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site, else None.

    Refuses absolute and scheme-relative URLs and the browser quirks that turn a
    path into one: backslashes, control characters and leading whitespace.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
