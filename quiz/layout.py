"""The site's header, rendered once for each viewer state it shows and kept.

Every page carries the header: the navigation with the current page marked, who is
playing, and for accounts a sign-out form with the session's CSRF token. What it
shows depends only on the endpoint, the viewer (name; for accounts id and role), for
accounts the session's CSRF token, and otherwise the path the "Sign in" link returns
to; those make the key. A path longer than ``MAX_KEPT_PATH`` is rendered afresh
each time, so visitors cannot fill the cache with request text, and so is an
account's header before its session holds a CSRF token.
"""

from __future__ import annotations

from flask import Flask, request, session
from flask_login import current_user
from markupsafe import Markup

from .fragments import fragment, piece

TEMPLATE = "_site_header.html"
MAX_KEPT_PATH = 100
CSRF_FIELD = "csrf_token"  # Flask-WTF's key for the session's token


def site_header() -> Markup:
    user = current_user._get_current_object()
    if not user.is_authenticated:
        viewer, token, path = None, None, request.path
    elif user.is_guest:
        viewer, token, path = (user.display_name,), None, request.path
    else:
        viewer = (user.id, user.display_name, user.role)
        token, path = session.get(CSRF_FIELD), None
        if token is None:  # made while rendering: keep the header from next time
            return piece(TEMPLATE)
    if path is not None and len(path) > MAX_KEPT_PATH:
        return piece(TEMPLATE)
    key = ("header", request.endpoint, request.blueprint, viewer, token, path)
    return fragment(key, TEMPLATE)


def init_app(app: Flask) -> None:
    app.add_template_global(site_header)
