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
    if request.method in READ_ONLY_METHODS:
        g.read_only_page = True  # read by SQLite's BEGIN hook and by hot reads too


@sa.event.listens_for(db.session, "do_orm_execute")
def _orm_reads_in_autocommit(state) -> None:
    """On PostgreSQL, the ORM session of a read-only page takes its connection in
    autocommit, at its first query: a page served by hot reads alone never takes
    one."""
    session = state.session
    if (
        has_request_context()
        and g.get("read_only_page")
        and not session.in_transaction()
        and session.get_bind().dialect.name == "postgresql"
    ):
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


@sa.event.listens_for(db.session, "before_flush")
def _refuse_writes_from_read_only_pages(session, _flush_context, _instances) -> None:
    # In autocommit a write would be committed at once: it must never happen.
    writes = session.new or session.deleted or session.dirty
    if writes and has_request_context() and g.get("read_only_page"):
        raise ReadOnlyPageWrote(f"GET {request.path} tried to change the database")


from . import membership, views  # noqa: F401  (registers the routes on bp)
