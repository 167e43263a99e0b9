"""The site's header, rendered once for each viewer state it shows and kept.

Every page carries the header: the navigation with the current page marked, who is
playing, and for accounts a sign-out form with the session's CSRF token. What it
shows depends only on the endpoint, the viewer (name; for accounts id and role) and,
for accounts, the session's CSRF token; those make the key. The one part that
depends on the request's path, the "Sign in" link back to the page, is kept as a
placeholder and filled in on each view, so visitors cannot grow the cache with paths
of their choosing. An account's header is rendered afresh until its session holds a
CSRF token.
"""

from __future__ import annotations

from flask import Flask, current_app, request, session, url_for
from flask_login import current_user
from markupsafe import Markup

from .fragments import fragment, piece

TEMPLATE = "_site_header.html"
SIGN_IN_URL = "/__sign-in-url__"  # the placeholder, in a kept header
# The sign-in and registration pages send the "Sign in" link nowhere afterwards.
NO_RETURN = frozenset({"auth.login", "auth.register"})


def site_header() -> Markup:
    user = current_user._get_current_object()
    if user.is_authenticated and not user.is_guest:
        token = session.get(current_app.config["WTF_CSRF_FIELD_NAME"])
        if token is None:  # made while rendering: keep the header from next time
            return piece(TEMPLATE, sign_in_url=None)
        viewer = (user.id, user.display_name, user.role, token)
        key = ("header", request.endpoint, request.blueprint, viewer)
        return fragment(key, TEMPLATE, sign_in_url=None)
    viewer = (user.display_name,) if user.is_authenticated else None
    key = ("header", request.endpoint, request.blueprint, viewer)
    kept = fragment(key, TEMPLATE, sign_in_url=SIGN_IN_URL)
    back = None if request.endpoint in NO_RETURN else request.path
    return kept.replace(SIGN_IN_URL, url_for("auth.login", next=back))


def init_app(app: Flask) -> None:
    app.add_template_global(site_header)
