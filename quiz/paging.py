"""Pages of long lists (accounts, questions, audit log, results) and their date filters,
read from the query string."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

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


def parse_day(value: str, *, next_day: bool = False) -> datetime:
    """``YYYY-MM-DD`` as the start of that day (or of the next one) in UTC.

    Raises ``ValueError`` for anything else.
    """
    start = datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
    if not next_day:
        return start
    try:
        return start + timedelta(days=1)
    except OverflowError:  # 9999-12-31: there is no next day
        raise ValueError(f"{value} is too far in the future") from None


def day_arg(name: str, *, next_day: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` query argument as ``parse_day`` reads it; None when absent or
    not a date."""
    try:
        return parse_day(request.args.get(name, ""), next_day=next_day)
    except ValueError:
        return None
