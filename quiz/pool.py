"""Pooled PostgreSQL connections, checked with a round trip only after a rest.

A pooled connection can die while it waits in the pool (the database restarted, a
firewall dropped an idle connection). Checking it with a round trip before every
use (SQLAlchemy's ``pool_pre_ping``) costs one round trip per request. A connection
that was in use a moment ago is alive, so the check runs only on a connection that
has rested in the pool longer than ``ping_after`` seconds: never under steady load,
where it would cost the most, and always on the first use after a quiet spell. A
connection that fails the check is replaced before the request sees it. (A restart
in the middle of busy traffic fails the requests in flight, and SQLAlchemy then
replaces the whole pool.)
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

RESTED_SINCE = "quiz_rested_since"


def ping_after_rest(engine: Engine, ping_after: float) -> None:
    """Check a connection on checkout when it has rested ``ping_after`` seconds (0:
    on every checkout)."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection, record):
        record.info[RESTED_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _resting(_dbapi_connection, record):
        if record is not None:
            record.info[RESTED_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_connection, record, _proxy):
        since = record.info.get(RESTED_SINCE)
        if since is not None and time.monotonic() - since < ping_after:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool drops this connection and checks out another.
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error
