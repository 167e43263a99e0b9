"""Security-relevant events, written to the ``quiz.security`` log.

Sign-ins (success and failure), denied access, role and account changes, bank imports
and exports. Values from users are neutralised: control characters (a newline could
forge a second log line) are written as escapes, and long values are cut.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("quiz.security")

MAX_VALUE = 200


def neutralise(value: object) -> str:
    """A value safe to put on one log line."""
    text = str(value)
    cleaned = "".join(
        ch if ch.isprintable() and ch != "\\" else ch.encode("unicode_escape").decode()
        for ch in text
    )
    return cleaned[:MAX_VALUE] + ("…" if len(cleaned) > MAX_VALUE else "")


def log(event: str, **fields: object) -> None:
    """Log ``event`` with ``key=value`` fields, each neutralised (and the request id,
    which the app's log filter adds to every record)."""
    from flask import has_request_context

    if has_request_context():
        from .security import request_id

        fields = {"request": request_id(), **fields}
    details = " ".join(f"{key}={neutralise(value)!s}" for key, value in fields.items())
    logger.info("%s %s", event, details)
