"""The trainer blueprint: cohorts, results, exports and question statistics."""

from flask import Blueprint, request

from .. import attempts
from ..security import require_role

# A page finishes at most this many attempts whose time is up (the scheduled
# ``attempts finish-expired`` takes a backlog), and waits at most this long for a
# lock (SQLite's write lock, a leaderboard's rows on PostgreSQL) before it stops
# and shows what is committed.
PAGE_SWEEP = 50
PAGE_SWEEP_WAIT_MS = 250

bp = Blueprint("trainer", __name__, url_prefix="/trainer")
bp.before_request(require_role("trainer"))


@bp.before_request
def _finish_attempts_whose_time_is_up() -> None:
    """Reports count an attempt whose time ran out as finished, with the answers
    given in time, even if its player never came back. Best effort: if the sweep
    cannot run, the page shows what is committed."""
    if request.method != "GET" or not attempts.any_expired():
        return
    attempts.close_expired(limit=PAGE_SWEEP, wait_ms=PAGE_SWEEP_WAIT_MS)  # logs


from . import views  # noqa: F401  (registers the routes on bp)
