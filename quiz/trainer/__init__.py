"""The trainer blueprint: cohorts, results, exports and question statistics."""

from flask import Blueprint

from ..security import require_role

bp = Blueprint("trainer", __name__, url_prefix="/trainer")
bp.before_request(require_role("trainer"))

from . import views  # noqa: F401  (registers the routes on bp)
