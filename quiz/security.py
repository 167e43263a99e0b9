"""Security plumbing: who the current player is, safe redirects, response headers."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Flask,
    abort,
    flash,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import make_transient_to_detached

from . import changes, events, reads
from .extensions import db, login_manager
from .models import User, utcnow
from .reads import HotRead

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


HSTS = "max-age=31536000; includeSubDomains"

NO_STORE_BLUEPRINTS = frozenset({"auth", "admin", "trainer"})


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to log records (``-`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id() if has_request_context() else "-"
        return True


def init_app(app: Flask) -> None:
    _configure_logging(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in, or play as a guest, to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    app.after_request(_set_security_headers)
    app.after_request(_refresh_session_daily)


def _configure_logging(app: Flask) -> None:
    """Request ids on app and security log records. Security events propagate to the
    app's logger ("quiz"), so they go wherever the deployment sends its logs."""
    request_ids = RequestIdFilter()
    app.logger.addFilter(request_ids)
    security = logging.getLogger("quiz.security")
    security.addFilter(request_ids)
    security.setLevel(logging.INFO)
    app.logger.setLevel(min(app.logger.getEffectiveLevel(), logging.INFO))


def request_id() -> str:
    """This request's id (made on first use), for logs, error pages and a header."""
    if "request_id" not in g:
        g.request_id = secrets.token_hex(8)
    return g.request_id


# Built once: every signed-in request runs one of them (``Session.get`` builds its
# query anew). Pages that only read take the player as a row, without the ORM.
_USER_BY_ID = sa.select(User).where(User.id == sa.bindparam("id"))
_USER_ROW = HotRead(
    sa.select(*User.__table__.columns).where(User.id == sa.bindparam("id"))
)


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user for a session or remember-me id ``"<user id>:<session token>"``.

    A token that no longer matches (signed out everywhere, password changed, account
    disabled) loads nobody, so old cookies stop working.
    """
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = _load(int(user_id))
    if user is None or user.is_disabled:
        return None
    if not hmac.compare_digest(user.session_token.encode(), token.encode()):
        return None
    return user


# Detached copies of players as their rows stand, shared by the read-only pages
# that find the same row: building an ORM object costs more than reading the row.
# A copy refuses to change or to join a session (see below): it is shared.
_DETACHED: dict[tuple, User] = {}
MAX_DETACHED = 4096
SHARED = "quiz_shared_copy"


class SharedPlayerChanged(RuntimeError):
    """Code tried to change, or to save, the shared copy of a player that a page
    which only reads was given."""


def leaves_player_unchanged(view):
    """Mark a form's view that never changes its player (answering a question, say):
    like a page that only reads, it is given the shared copy of the player's row,
    read without the ORM (or kept, ``quiz.changes``). Put it above
    ``login_required``, which loads the player."""

    @functools.wraps(view)
    def marked(*args, **kwargs):
        g.player_unchanged = True
        return view(*args, **kwargs)

    return marked


def _load(user_id: int) -> User | None:
    """The player, in the ORM session; on a page that only reads or a view that leaves
    the player unchanged, a detached copy made from their row as last committed
    (kept in this process until it changes: ``quiz.changes``)."""
    if not (g.get("read_only_page") or g.get("player_unchanged")):
        return db.session.scalar(_USER_BY_ID, {"id": user_id})
    with reads.apart():  # not in the ORM session's transaction, which it would begin
        row = changes.kept(
            ("player", user_id), ("user",), lambda: _USER_ROW.first(id=user_id)
        )
    if row is None:
        return None
    user = _DETACHED.get(row)
    if user is None:
        user = User(**row._asdict())
        make_transient_to_detached(user)
        sa.inspect(user).info[SHARED] = True
        if len(_DETACHED) >= MAX_DETACHED:
            _DETACHED.clear()
        _DETACHED[row] = user
    return user


def _refuse_shared(target, *_args) -> None:
    if sa.inspect(target).info.get(SHARED):
        raise SharedPlayerChanged(f"{target!r} is a shared copy: it cannot change")


for _column in User.__table__.columns:
    sa.event.listen(getattr(User, _column.key), "set", _refuse_shared)


@sa.event.listens_for(db.session, "before_attach")
def _refuse_attaching_shared(_session, instance) -> None:
    if isinstance(instance, User):
        _refuse_shared(instance)


@login_manager.unauthorized_handler
def _sign_in_first():
    """Send visitors to sign in, then back to a page they can GET.

    A refused POST (starting a quiz, say) returns to the page the form was on.
    """
    flash(login_manager.login_message, "info")
    if request.method == "GET":
        target = request.full_path.rstrip("?")
    else:
        referrer = urlsplit(request.referrer or "")
        same_site = referrer.netloc == request.host
        target = referrer.path if same_site else None
    return redirect(url_for(login_manager.login_view, next=safe_next_url(target)))


def require_role(role: str):
    """A ``before_request`` guard: sign-in for visitors and guests, 403 below ``role``."""

    def guard():
        if not current_user.is_authenticated or current_user.is_guest:
            return login_manager.unauthorized()
        if not current_user.has_role(role):
            events.log(
                "access-denied",
                user=current_user.id,
                role=current_user.role,
                needs=role,
                path=request.path,
            )
            abort(403)
        return None

    return guard


def _set_security_headers(response):
    """Add the security headers a view did not set itself (one pass over the
    response's headers: werkzeug's ``setdefault`` scans them and raises an exception
    for every header that is missing)."""
    headers = response.headers
    present = {name.lower() for name, _ in headers}
    wanted = list(SECURITY_HEADERS.items())
    if request.is_secure:
        wanted.append(("Strict-Transport-Security", HSTS))
    headers.extend(
        (name, value) for name, value in wanted if name.lower() not in present
    )
    headers["X-Request-ID"] = request_id()
    if request.blueprint in NO_STORE_BLUEPRINTS:
        # Personal and administrative pages (and exports) must not linger in caches.
        headers["Cache-Control"] = "no-store"
    return response


def _refresh_session_daily(response):
    """Re-sign a permanent session (a guest's) on the first visit of each day.

    Cookies are not re-sent on every page view (``SESSION_REFRESH_EACH_REQUEST`` is
    off); this keeps the lifetime sliding all the same: a session lasts
    ``PERMANENT_SESSION_LIFETIME`` after the last day its player came back.
    """
    if session.permanent:
        today = utcnow().date().isoformat()
        if session.get("seen") != today:
            session["seen"] = today
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
