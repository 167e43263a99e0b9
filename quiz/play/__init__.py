"""The play blueprint: what visitors see."""

from flask import Blueprint, request

from ..extensions import db
from ..sqlite import READ_ONLY_METHODS

bp = Blueprint("play", __name__)


@bp.before_request
def _read_in_autocommit() -> None:
    """Play pages that only read run each query on its own on PostgreSQL, without
    the BEGIN and ROLLBACK round trips of a transaction (they change nothing)."""
    if (
        request.method in READ_ONLY_METHODS
        and db.engine.dialect.name == "postgresql"
        and not db.session().in_transaction()
    ):
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


from . import membership, views  # noqa: F401  (registers the routes on bp)
