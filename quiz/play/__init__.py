"""The play blueprint: what visitors see."""

from flask import Blueprint

bp = Blueprint("play", __name__)

from . import membership, views  # noqa: F401  (registers the routes on bp)
