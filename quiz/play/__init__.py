"""The play blueprint: what visitors see."""

import sqlalchemy as sa
from flask import Blueprint, g, has_request_context, request

from ..extensions import db
from ..sqlite import READ_ONLY_METHODS

bp = Blueprint("play", __name__)


class ReadOnlyPageWrote(RuntimeError):
    """A play page fetched with GET tried to change the database."""


@bp.before_request
def _read_only_pages() -> None:
    """Play pages fetched with GET only read. Each of their queries runs on its own
    (autocommit), without a transaction's BEGIN and ROLLBACK (round trips, on
    PostgreSQL); a write from such a page is refused."""
    if request.method not in READ_ONLY_METHODS:
        return
    g.read_only_page = True  # SQLite's BEGIN hook reads it too
    if db.engine.dialect.name == "postgresql" and not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


@sa.event.listens_for(db.session, "before_flush")
def _refuse_writes_from_read_only_pages(session, _flush_context, _instances) -> None:
    # In autocommit a write would be committed at once: it must never happen.
    writes = session.new or session.deleted or session.dirty
    if writes and has_request_context() and g.get("read_only_page"):
        raise ReadOnlyPageWrote(f"GET {request.path} tried to change the database")


from . import membership, views  # noqa: F401  (registers the routes on bp)
