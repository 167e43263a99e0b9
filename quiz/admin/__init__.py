"""The admin blueprint: authoring quizzes and questions, bank files, users, audit log."""

from flask import Blueprint

from ..security import require_role

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_role("admin"))

from . import views  # noqa: F401  (registers the routes on bp)
