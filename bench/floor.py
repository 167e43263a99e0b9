"""The floor of any write: a bare Flask view that takes a POSTed form, writes one row
with the database driver alone, and redirects; and a second view that does the same
without the write.

Served by gunicorn with the same settings as the app (``bench.layers`` runs it), the
two show what a form's POST costs a Flask endpoint on this machine, and what one
INSERT and its COMMIT add to it, before any of the app's layers: no session, CSRF
check, ORM or pool. The row goes into ``bench_probe_write`` (made by
``bench.layers``) of the database in ``QUIZ_DATABASE_URL``; on SQLite in a ``BEGIN
IMMEDIATE`` transaction whose write lock is waited for as the app waits for it
(``quiz.sqlite``: short pauses, not SQLite's busy handler, which sleeps a millisecond
and more), on PostgreSQL as one statement in autocommit (one round trip).
"""

from __future__ import annotations

import os
import sqlite3
import time

from flask import Flask, redirect, request
from sqlalchemy.engine import make_url

from quiz.sqlite import BUSY_TIMEOUT_MS, FIRST_PAUSE, LONGEST_PAUSE, is_busy

app = Flask(__name__)
_connection = None

INSERT = "INSERT INTO bench_probe_write (attempt_id, position) VALUES "


def _connect():
    url = make_url(os.environ["QUIZ_DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 0")  # waited for below
        connection.execute("PRAGMA synchronous = NORMAL")  # as the app's (WAL)
        return connection, INSERT + "(?, ?)"
    import psycopg

    options = url.translate_connect_args(username="user", database="dbname")
    options.update(url.query)  # host=/run/postgresql, sslmode=... and the like
    return psycopg.connect(autocommit=True, **options), INSERT + "(%s, %s)"


def _write(attempt_id: int, position: int) -> None:
    global _connection
    if _connection is None:  # one per worker process, opened by its first request
        _connection = _connect()
    connection, statement = _connection
    if isinstance(connection, sqlite3.Connection):
        _begin_immediate(connection)
        connection.execute(statement, (attempt_id, position))
        connection.execute("COMMIT")
    else:
        connection.execute(statement, (attempt_id, position))


def _begin_immediate(connection: sqlite3.Connection) -> None:
    """As the app begins a write (``quiz.sqlite._begin_immediate``)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = FIRST_PAUSE
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if not is_busy(error) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


def _answered(attempt_id: int, position: int):
    return redirect(f"/attempts/{attempt_id}/questions/{position}")


@app.post("/floor/post/<int:attempt_id>/<int:position>")
def posted(attempt_id: int, position: int):
    request.form.get("choice")  # the form is read, as a view that answers reads it
    return _answered(attempt_id, position)


@app.post("/floor/write/<int:attempt_id>/<int:position>")
def written(attempt_id: int, position: int):
    request.form.get("choice")
    _write(attempt_id, position)
    return _answered(attempt_id, position)


@app.get("/")
def ready() -> str:
    """What the bench asks to know that the server is up."""
    return "ok"
