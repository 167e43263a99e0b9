"""SQLite tuning: WAL, a busy timeout, and write transactions that lock up front.

A deferred SQLite transaction that first reads and then writes can fail at once with
"database is locked" when another writer got there first; waiting does not help it.
Requests that change state (anything but GET, HEAD, OPTIONS) and CLI writers inside
``write_intent()`` therefore begin with ``BEGIN IMMEDIATE``, which waits for the
write lock (busy timeout) before reading. Pages that only read (play pages fetched
with GET) begin no transaction at all: each query is its own. A connection goes back
to the pool with no transaction open, even after a COMMIT that failed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Inside ``write_intent()``: how long a transaction begun there waits for the write
# lock, in milliseconds (None outside).
_write_intent: ContextVar[int | None] = ContextVar(
    "quiz_sqlite_write_intent", default=None
)

BUSY_TIMEOUT_MS = 15_000
# Pauses between tries for the write lock (seconds): see _begin_immediate.
FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.001


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def wants_write_lock() -> bool:
    """Whether a transaction begun now takes the write lock first (BEGIN
    IMMEDIATE): in requests that change state and inside ``write_intent()``."""
    if _write_intent.get() is not None:
        return True
    return has_request_context() and request.method not in READ_ONLY_METHODS


def _read_only_page() -> bool:
    """A page that only reads (``g.read_only_page``, set by the play blueprint)."""
    return has_request_context() and g.get("read_only_page", False)


@contextmanager
def write_intent(wait_ms: int = BUSY_TIMEOUT_MS) -> Iterator[None]:
    """Begin transactions inside the block with ``BEGIN IMMEDIATE``, waiting up to
    ``wait_ms`` for the write lock (then "database is locked")."""
    token = _write_intent.set(wait_ms)
    try:
        yield
    finally:
        _write_intent.reset(token)


def configure(engine: Engine) -> None:
    """Install the pragmas and the transaction-begin hook on a SQLite engine."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event emit BEGIN itself, so it can choose the kind.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not _is_memory(engine):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        if _read_only_page():
            return  # each statement is its own transaction
        if wants_write_lock():
            _begin_immediate(connection)
        else:
            connection.exec_driver_sql("BEGIN")

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection, _record, _state):
        # A COMMIT that fails with "database is locked" leaves SQLite's transaction
        # open, with its rows and its write lock, while SQLAlchemy counts it as ended.
        # A session closed without an explicit rollback (Flask-SQLAlchemy's teardown
        # after the error) then hands the connection back as "already reset" and the
        # pool skips its own rollback: the connection would sit in the pool holding
        # the write lock, and the next request on it would fail to BEGIN. Whatever is
        # still open is rolled back here, before the pool takes the connection back
        # (a ROLLBACK that fails makes the pool discard the connection instead).
        if dbapi_connection.in_transaction:
            dbapi_connection.rollback()


def _begin_immediate(connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock in short steps.

    SQLite's own wait (the busy timeout) sleeps 1 ms, then 2, 5, 10 ms and up to
    100 ms between tries, while a request here holds the write lock for well under
    a millisecond: a writer that found the lock taken would mostly sleep, and two
    workers would write little faster than one. So the lock is tried with SQLite's
    wait off, sleeping 50 microseconds and doubling up to ``LONGEST_PAUSE``, for the
    busy timeout in all (or what ``write_intent`` says); then the last try's
    "database is locked" is the error.
    """
    wait_ms = _write_intent.get()
    raw = connection.connection.dbapi_connection
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = (
            time.monotonic() + (BUSY_TIMEOUT_MS if wait_ms is None else wait_ms) / 1000
        )
        pause = FIRST_PAUSE
        while time.monotonic() < deadline:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    break  # not a lock: the try below reports it
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
        # Once more through SQLAlchemy, which reports a failure as its own error.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def is_busy(error: BaseException | None) -> bool:
    """Whether a driver error is SQLite's "database is locked" (``SQLITE_BUSY``)."""
    return (
        isinstance(error, sqlite3.Error)
        and getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
    )


def _is_memory(engine: Engine) -> bool:
    database = engine.url.database
    return not database or database == ":memory:"
