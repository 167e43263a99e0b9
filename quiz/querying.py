"""Query pieces shared by the search boxes of the admin pages (users, audit log)."""

from __future__ import annotations

import sqlalchemy as sa

from .models import User

LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """A lower-cased LIKE pattern matching ``text`` anywhere, wildcards escaped.

    Use with ``column.like(pattern, escape=LIKE_ESCAPE)`` on a lower-cased column.
    """
    escaped = (
        text.lower()
        .replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def user_matches(text: str) -> sa.ColumnElement[bool]:
    """A user whose e-mail or display name contains ``text``, ignoring case."""
    pattern = contains_pattern(text)
    return sa.or_(
        sa.func.lower(User.email).like(pattern, escape=LIKE_ESCAPE),
        sa.func.lower(User.display_name).like(pattern, escape=LIKE_ESCAPE),
    )
