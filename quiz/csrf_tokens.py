"""CSRF protection: Flask-WTF's, remembering the tokens each process has verified.

Every POST carries its session's CSRF token, signed, and Flask-WTF checks the
signature (base64, HMAC, JSON) each time: about 65 µs of a form's POST in one
process, a tenth of answering a question. A player sends the same signed token with
every form of their session, so each app remembers the pairs (signed token, the
session's own token) it verified in full, and a later POST with the same pair skips
the signature check. A pair is remembered only once it passed every check, so
nothing else changes: exempt views, the methods checked, the strict referrer check
over HTTPS, and every error (a missing, invalid or mismatched token still fails).

Tokens never expire here (``WTF_CSRF_TIME_LIMIT`` is None: a token lives as long as
its session). Where a deployment sets a time limit, every check is made in full, as
a token's age is part of it.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request, session
from flask_wtf.csrf import CSRFProtect, validate_csrf
from wtforms import ValidationError

log = logging.getLogger(__name__)

VERIFIED = "quiz.csrf_verified"
# Pairs remembered per app (about 200 bytes each); the oldest go first.
REMEMBERED = 4096


class RememberingCSRFProtect(CSRFProtect):
    """``CSRFProtect`` whose check skips the signature of a pair it verified."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        app.extensions[VERIFIED] = VerifiedTokens(REMEMBERED)

    def protect(self, apply_exemptions: bool = False) -> None:
        """Flask-WTF's check of the current request, with ``_validate``'s memory."""
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        config = current_app.config
        if request.method not in config["WTF_CSRF_METHODS"]:
            return
        try:
            self._validate(self._get_csrf_token())
        except ValidationError as error:
            log.info(error.args[0])
            self._error_response(error.args[0])
        if request.is_secure and config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not _same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True

    @staticmethod
    def _validate(token: str | None) -> None:
        config = current_app.config
        pair = (token, session.get(config["WTF_CSRF_FIELD_NAME"]))
        verified = current_app.extensions[VERIFIED]
        if token and pair[1] and pair in verified:
            return
        validate_csrf(token)  # raises ValidationError, saying what is wrong
        if config["WTF_CSRF_TIME_LIMIT"] is None:
            verified.add(pair)


class VerifiedTokens:
    """A bounded set, safe across threads: the oldest entry leaves first."""

    def __init__(self, size: int):
        self.size = size
        self._pairs: dict[tuple, None] = {}
        self._lock = threading.Lock()

    def __contains__(self, pair: tuple) -> bool:
        return pair in self._pairs

    def __len__(self) -> int:
        return len(self._pairs)

    def add(self, pair: tuple) -> None:
        with self._lock:
            if len(self._pairs) >= self.size:
                del self._pairs[next(iter(self._pairs))]
            self._pairs[pair] = None


def _same_origin(url: str, other: str) -> bool:
    one, two = urlsplit(url), urlsplit(other)
    return (one.scheme, one.hostname, one.port) == (two.scheme, two.hostname, two.port)
