"""The auth blueprint: register, sign in, sign out, account, password."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")

from . import views  # noqa: F401  (registers the routes on bp)
