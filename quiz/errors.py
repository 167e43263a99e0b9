"""Error pages: the app's own page for every error, never a stack trace."""

from __future__ import annotations

import math
import time
from http import HTTPStatus

from flask import Flask, current_app, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from . import events
from .extensions import db, limiter
from .security import request_id

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have permission to open this page.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The upload is too large.",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
}


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    app.register_error_handler(HTTPException, _http_error)
    # Unhandled exceptions reach this as a 500 (and propagate in tests and debug).
    app.register_error_handler(InternalServerError, _server_error)


def render_error(code: int, message: str | None = None, title: str | None = None):
    """The error page for ``code`` with a message meant for the person who saw it."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    body = render_template(
        "errors/error.html",
        code=code,
        title=title or phrase,
        message=message or MESSAGES.get(code, ""),
        request_id=request_id(),
    )
    return body, code


def _log_error(status) -> None:
    """One line per error response, with the request id its page shows."""
    current_app.logger.info(
        "HTTP %s [request %s] on %s %s",
        status,
        request_id(),
        request.method,
        events.neutralise(request.path),
    )


def _csrf_error(error: CSRFError):
    _log_error("400 CSRF")
    return render_error(
        400,
        "The form had expired or did not come from this site. "
        "Go back, reload the page and try again.",
        title="Form expired",
    )


def _rate_limited(error: RateLimitExceeded):
    limit = limiter.current_limit
    return rate_limited_page(math.ceil(limit.reset_at - time.time()) if limit else 60)


def rate_limited_page(wait: int):
    """The 429 page: how long to wait, also as a Retry-After header."""
    _log_error("429")
    wait = max(1, wait)
    minutes = math.ceil(wait / 60)
    when = (
        f"{minutes} minute{'s' if minutes != 1 else ''}"
        if wait > 60
        else f"{wait} seconds"
    )
    body, code = render_error(
        429,
        f"Too many attempts. For your account's safety, wait {when} and try again.",
        title="Please wait",
    )
    return body, code, {"Retry-After": str(wait)}


def _http_error(error: HTTPException):
    if error.code == 500:
        return _server_error(error)
    if error.code is None or error.code < 400:
        return error
    _log_error(error.code)
    body, code = render_error(error.code)
    headers = {}
    if error.code == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    return body, code, headers


def _server_error(error: InternalServerError):
    db.session.rollback()
    original = getattr(error, "original_exception", None) or error
    current_app.logger.error(
        "Unhandled error [request %s] on %s %s",
        request_id(),
        request.method,
        events.neutralise(request.path),
        exc_info=original,
    )
    return render_error(500)
