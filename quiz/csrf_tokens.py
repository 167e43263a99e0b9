"""CSRF protection: Flask-WTF's, with each session's signed token made and checked
once per process.

Flask-WTF signs the session's CSRF token afresh for every page (the signature holds
the second it was made), and checks the signature (base64, HMAC, JSON) of the token
every POST carries: about 25 µs alone, 0.06 to 0.12 ms of answering a question among
everything else the request does. Tokens never expire here (``WTF_CSRF_TIME_LIMIT``
is None: a token lives as long as its session), so the second a token was signed
in tells nothing, and each app:

- gives every page of a session the same signed token, the first it made for the
  session's own token (``signed_token``, behind ``csrf_token()`` in templates and
  every form's hidden field);
- remembers the pairs (signed token, the session's own token) it verified in full,
  so a later POST with the same pair skips the signature check.

A pair is remembered only once it passed every check, so nothing else changes:
exempt views, the methods checked, the strict referrer check over HTTPS, and every
error (a missing, invalid or mismatched token still fails; a token remembered for one
session fails in another). Where a deployment sets a time limit, tokens are signed
per page and checked in full, as Flask-WTF does: a token's age is then part of the
check.

``protect`` follows Flask-WTF 1.2 and 1.3's (``setup.cfg`` keeps to those).
"""

from __future__ import annotations

import logging
import math
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request, session
from flask_wtf.csrf import CSRFProtect, generate_csrf, validate_csrf
from wtforms import ValidationError
from wtforms.csrf.core import CSRF

from .cache import VersionedCache

log = logging.getLogger("flask_wtf.csrf")  # where Flask-WTF logs its refusals

VERIFIED = "quiz.csrf_verified"
SIGNED = "quiz.csrf_signed"
# Pairs and tokens kept per app (about 400 bytes each), for as long as their session:
# the least recently used go first.
REMEMBERED = 4096


class RememberingCSRFProtect(CSRFProtect):
    """``CSRFProtect`` that signs a session's token once and skips the signature of a
    pair it verified."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        app.extensions[VERIFIED] = VersionedCache(REMEMBERED, max_age=math.inf)
        app.extensions[SIGNED] = VersionedCache(REMEMBERED, max_age=math.inf)
        app.jinja_env.globals["csrf_token"] = signed_token
        app.context_processor(lambda: {"csrf_token": signed_token})

    def protect(self, apply_exemptions: bool = False) -> None:
        """Flask-WTF's check of the current request, with ``_validate``'s memory."""
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        config = current_app.config
        if request.method not in config["WTF_CSRF_METHODS"]:
            return
        try:
            _validate(self._get_csrf_token())
        except ValidationError as error:
            log.info(error.args[0])
            self._error_response(error.args[0])
        if request.is_secure and config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not _same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True


class FormCSRF(CSRF):
    """The CSRF field of the app's forms: Flask-WTF's, with the session's one signed
    token (``signed_token``) and checks remembered as ``protect``'s are."""

    def setup_form(self, form):
        self.meta = form.meta
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field) -> str:
        return signed_token()

    def validate_csrf_token(self, form, field) -> None:
        if g.get("csrf_valid", False):
            return  # checked by the app before the view ran
        try:
            _validate(field.data)
        except ValidationError as error:
            log.info(error.args[0])
            raise


def signed_token() -> str:
    """The current session's signed CSRF token: while tokens have no time limit, the
    first this app signed for the session's own token, on every page."""
    config = current_app.config
    field = config["WTF_CSRF_FIELD_NAME"]
    if config["WTF_CSRF_TIME_LIMIT"] is not None:
        return generate_csrf()
    if field in g:  # made earlier in this request
        return generate_csrf()
    signed = current_app.extensions[SIGNED]
    found = signed.find(session.get(field))
    if found is not None:
        setattr(g, field, found)  # where Flask-WTF looks first
        return found
    token = generate_csrf()  # signs the session's token (made if it has none)
    signed.put(session[field], token)
    return token


def _validate(token: str | None) -> None:
    config = current_app.config
    if config["WTF_CSRF_TIME_LIMIT"] is not None:
        validate_csrf(token)  # its age is part of the check
        return
    pair = (token, session.get(config["WTF_CSRF_FIELD_NAME"]))
    verified = current_app.extensions[VERIFIED]
    if token and pair[1] and verified.find(pair):
        return
    validate_csrf(token)  # raises ValidationError, saying what is wrong
    verified.put(pair, True)


def _same_origin(url: str, other: str) -> bool:
    one, two = urlsplit(url), urlsplit(other)
    return (one.scheme, one.hostname, one.port) == (two.scheme, two.hostname, two.port)
