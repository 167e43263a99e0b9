"""The site's header, rendered once for each viewer state it shows and kept; and
the busiest pages, kept whole for each such header and each content they show.

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

import secrets
from collections.abc import Hashable

from flask import Flask, current_app, g, render_template, request, session, url_for
from flask_login import current_user
from markupsafe import Markup

from .cache import PAGES
from .fragments import fragment, kept, piece

TEMPLATE = "_site_header.html"
# The placeholder in kept headers and pages, unguessable so that no text on a page
# (a player's name, say) can stand for it.
SIGN_IN_URL = f"/__sign-in-{secrets.token_hex(16)}__"
# The sign-in and registration pages send the "Sign in" link nowhere afterwards.
NO_RETURN = frozenset({"auth.login", "auth.register"})


def site_header() -> Markup:
    viewer = _viewer()
    if viewer is None:  # the session's CSRF token is made while rendering
        return piece(TEMPLATE, sign_in_url=None)
    key = ("header", request.endpoint, request.blueprint, viewer)
    if viewer[0] == "account":
        return fragment(key, TEMPLATE, sign_in_url=None)
    header = fragment(key, TEMPLATE, sign_in_url=SIGN_IN_URL)
    return header if g.get(KEEPING_PAGE) else _with_sign_in_url(header)


def _viewer() -> tuple | None:
    """What the header shows of the viewer: its key. None for an account whose
    session has no CSRF token yet (its header is then rendered, not kept)."""
    user = current_user._get_current_object()
    if not user.is_authenticated:
        return ("visitor",)
    if user.is_guest:
        return ("guest", user.display_name)
    token = session.get(current_app.config["WTF_CSRF_FIELD_NAME"])
    if token is None:
        return None
    return ("account", user.id, user.display_name, user.role, token)


def _with_sign_in_url(html: str) -> str:
    """Fill in the "Sign in" link of a kept header: back to this page."""
    back = None if request.endpoint in NO_RETURN else request.path
    return html.replace(SIGN_IN_URL, url_for("auth.login", next=back))


KEEPING_PAGE = "quiz_keeping_page"


def kept_page(template: str, content: Hashable | None, **context) -> str:
    """A whole page of the busiest kind, rendered once for each viewer its header
    shows (see above) and each ``content``, then kept (in a cache of pages).

    ``content`` must stand for everything else the page shows, as the keys of its
    kept pieces do (the catalogue's cards, a leaderboard's section); None renders
    the page afresh. So do messages waiting to be shown (they show once), and an
    account's session without a CSRF token yet.
    """
    viewer = _viewer()
    if content is None or viewer is None or session.get("_flashes"):
        return render_template(template, **context)
    key = ("page", request.endpoint, request.blueprint, viewer, content)

    def render() -> str:
        setattr(g, KEEPING_PAGE, True)  # its header keeps the "Sign in" placeholder
        try:
            return render_template(template, **context)
        finally:
            g.pop(KEEPING_PAGE, None)

    page = kept(template, key, render, store=PAGES)
    return page if viewer[0] == "account" else _with_sign_in_url(page)


def init_app(app: Flask) -> None:
    app.add_template_global(site_header)
