"""SQLite: play pages fetched with GET read without a transaction; forms lock up front."""

import sqlite3
import threading
import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from quiz import sqlite
from quiz.extensions import db


def _statements(app, do) -> list[str]:
    seen = []

    def note(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()[:2]))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        do()
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    return seen


def test_play_pages_begin_no_transaction_and_forms_begin_immediate(
    sqlite_app, monkeypatch
):
    app, _ = sqlite_app
    client = app.test_client()
    client.post("/guest", data={"display_name": "Reader"})
    for page in ("/", "/quizzes/alpha", "/quizzes/alpha/leaderboard", "/leaderboard"):
        statements = _statements(app, lambda p=page: client.get(p))
        assert statements, page
        assert not any(s.startswith("BEGIN") for s in statements), (page, statements)
    begun = []
    monkeypatch.setattr(sqlite, "_begin_immediate", begun.append)
    statements = _statements(app, lambda: client.post("/quizzes/alpha/start"))
    assert begun and not any(s.startswith("BEGIN") for s in statements)


def test_other_pages_fetched_with_get_keep_their_transaction(sqlite_app):
    app, _ = sqlite_app
    client = app.test_client()
    client.post("/guest", data={"display_name": "Reader"})
    statements = _statements(app, lambda: client.get("/login"))
    assert statements[0] == "BEGIN"  # loading the guest, in a deferred transaction


def test_a_writer_waits_for_the_lock_in_short_steps(sqlite_app, monkeypatch):
    """A writer that finds the write lock taken tries again after 50 microseconds,
    then twice as long each time up to 1 ms, instead of SQLite's 1 ms and more; it
    gets the lock once it is freed, and SQLite's own wait is set back."""
    app, path = sqlite_app
    pauses = []

    def pause(seconds):
        pauses.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(
        sqlite, "time", SimpleNamespace(monotonic=time.monotonic, sleep=pause)
    )
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.05, blocker.rollback).start()
    with app.app_context(), db.engine.connect() as conn:
        with sqlite.write_intent():
            conn.begin()
        assert conn.connection.dbapi_connection.in_transaction
        timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.rollback()
    blocker.close()
    assert timeout == sqlite.BUSY_TIMEOUT_MS
    assert pauses[:3] == [0.00005, 0.0001, 0.0002]
    assert max(pauses) <= sqlite.LONGEST_PAUSE


def test_a_lock_held_past_the_busy_timeout_is_reported_and_the_wait_restored(
    sqlite_app, monkeypatch
):
    app, path = sqlite_app
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 50)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with app.app_context(), db.engine.connect() as conn:
            with (
                sqlite.write_intent(),
                pytest.raises(sa.exc.OperationalError, match="database is locked"),
            ):
                conn.begin()
            conn.rollback()
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 50
    finally:
        blocker.rollback()
        blocker.close()
