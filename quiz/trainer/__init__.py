"""The trainer blueprint: cohorts, results, exports and question statistics."""

from flask import Blueprint, request

from .. import attempts
from ..security import require_role

bp = Blueprint("trainer", __name__, url_prefix="/trainer")
bp.before_request(require_role("trainer"))


@bp.before_request
def _finish_attempts_whose_time_is_up() -> None:
    """Reports count an attempt whose time ran out as finished, with the answers
    given in time, even if its player never came back."""
    if request.method == "GET" and attempts.any_expired():
        attempts.close_expired()


from . import views  # noqa: F401  (registers the routes on bp)
