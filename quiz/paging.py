"""Pages of long lists (accounts, questions, audit log) from the ``page`` argument."""

from __future__ import annotations

import sqlalchemy as sa
from flask import request

from .extensions import db

MAX_PAGE = 100_000


def requested_page() -> int:
    """The ``page`` query argument, kept between 1 and ``MAX_PAGE``."""
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)


def paginate(statement: sa.Select, per_page: int):
    """One page of ``statement`` (an out-of-range page is empty, never an error)."""
    return db.paginate(
        statement,
        page=requested_page(),
        per_page=per_page,
        max_per_page=per_page,
        error_out=False,
        count=True,
    )
