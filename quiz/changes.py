"""Rows kept between requests, dropped as soon as the database says they changed.

On PostgreSQL every warm view of the busiest pages still asked the database two
things: the player's row (the session check) and the page's own row (a quiz and its
standings' version; the content version and the player's best scores). Each round
trip cost the app server and PostgreSQL more than the rest of the page. So those
rows are kept in each process, and PostgreSQL says when they change:

- Triggers on the tables they come from (``WATCHED``), one per statement, send
  ``NOTIFY quiz_changes, '<table>'``; PostgreSQL delivers it when the transaction
  commits, to every listener on every app server.
- Each app process listens on a connection of its own, in a thread, and counts the
  notifications per table (``ChangeFeed``).
- A kept row carries the counts of its tables, taken *before* it was read: it is
  served again only while they stand. A change that commits during the read moves a
  count, so what the read saw is never served again.
- While the listener is not connected (starting up, reconnecting, or the feed
  switched off with ``QUIZ_CHANGE_FEED=0``) nothing is kept: every view reads,
  as it would without this module. Every connection starts a new epoch, so rows kept
  before a lost connection are never served after it. Every second the listener
  also has a heartbeat sent to it from a pooled connection, as changes are: after
  three seconds without one back (a connection cut without a word, a pooler that
  takes LISTEN and delivers nothing), nothing is kept either.
- This process's own commits count at once, so the page a form redirects to shows
  its change. Other servers see it when the notification arrives, within
  milliseconds.
- Only committed rows are kept: a read is not kept once the request's transaction
  has changed one of its tables, nor, on SQLite, inside a transaction that began
  without the write lock (its snapshot may be older than the stamp).
- Kept rows also expire after ``MAX_AGE`` seconds, whatever happens.

Each app process holds one more PostgreSQL connection, the listener's.

SQLite has no notifications. Triggers there count each watched table's changed rows
in ``table_change``, in the writing transaction (``TableCounts``). A stamp first
asks ``PRAGMA data_version`` on a connection of each process's own that never
writes: it moves with every commit of any other connection, in any process, and
costs a statement that reads no table. Only when it moved are the counts read
again. So an answer, which writes no watched table, drops nothing that was kept;
a finished attempt drops what shows attempts and best scores, and no player's row.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, g, has_app_context, has_request_context

from . import reads
from .cache import VersionedCache
from .config import flag
from .extensions import db
from .models import User  # noqa: F401 - the watched tables, in the metadata
from .sqlite import wants_write_lock

T = TypeVar("T")
log = logging.getLogger("quiz.changes")

CHANNEL = "quiz_changes"
# The tables of the rows kept: players, quizzes (with their standings' version),
# attempts (open ones show in the catalogue), best scores and the content version.
WATCHED = ("user", "quiz", "attempt", "best_score", "content_version")
EVERYTHING = "*"  # a change this process cannot name: forget every kept row

EXTENSION = "quiz.changes"
ROWS = "quiz.kept_rows"
MAX_AGE = 10.0
CHECK_EVERY = 1.0  # seconds between the listener's checks of its connection
SILENT = 3  # checks without an answer before nothing is kept
WRITTEN = "quiz_written_tables"


class ChangeFeed:
    """This process's count of the changes PostgreSQL announced, per table.

    ``stamp`` is taken before a read; the read's result may be served again while
    ``stamp`` returns the same value. The listener starts on the first ``stamp`` in
    each process (so after a server forks its workers). Every ``check_every``
    seconds ``notify`` sends it a heartbeat on a channel of its own, from another
    session (as changes come): while none has come back for ``SILENT`` times that
    (a connection cut without a word, or a pooler that takes LISTEN and delivers
    nothing), nothing is kept.
    """

    def __init__(
        self,
        connect: Callable,
        notify: Callable[[str, str], None],
        *,
        check_every: float = CHECK_EVERY,
    ):
        self._connect = connect
        self._notify = notify
        self.check_every = check_every
        self._counts: dict[str, int] = {}
        self._epoch = 0
        self._listening = False
        self._heard = -math.inf  # when the last notification it heard back was sent
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        """Whether what is read now may be kept: connected, and heard lately."""
        return self._listening and (
            time.monotonic() - self._heard < self.check_every * SILENT
        )

    def stamp(self, tables: Iterable[str]) -> tuple | None:
        """The counts of ``tables`` now, or None while nothing may be kept (and
        the listener is started, if it is not running)."""
        if not self.listening:
            self._start()
            return None
        counts = self._counts
        return (self._epoch, *(counts.get(table, 0) for table in tables))

    def heard_since(self, moment: float) -> bool:
        """Whether the listener heard back a notification it sent after ``moment``
        (``time.monotonic()``): then it also heard every change committed before."""
        return self._heard > moment

    def changed(self, tables: Iterable[str]) -> None:
        """Count a change to each of ``tables`` (``EVERYTHING``: to all)."""
        with self._lock:
            for table in tables:
                if table == EVERYTHING:
                    self._epoch += 1
                else:
                    self._counts[table] = self._counts.get(table, 0) + 1

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening (and keeping); for tests and shutdown."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def forked(self) -> None:
        """In a new child process: the parent's thread and connection are not ours."""
        self._thread = None
        self._listening = False
        self._heard = -math.inf
        self._epoch += 1
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _start(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="quiz-change-feed", daemon=True
                )
                self._thread.start()

    def _listen(self) -> None:
        wait = 0.5
        while not self._stop.is_set():
            try:
                with self._connect() as connection:
                    me = connection.info.backend_pid
                    alive = f"{CHANNEL}_alive_{me}"
                    connection.execute(f"LISTEN {CHANNEL}")
                    connection.execute(f"LISTEN {alive}")
                    self._heard = -math.inf
                    self.changed([EVERYTHING])  # what was kept before is unknown
                    self._listening = True
                    log.info("listening for changes on %s", CHANNEL)
                    wait = 0.5
                    while not self._stop.is_set():
                        # Sent by another session, as every change is: it comes
                        # back only if their notifications reach this connection.
                        self._notify(alive, repr(time.monotonic()))
                        for note in connection.notifies(timeout=self.check_every):
                            if note.channel == CHANNEL:
                                self.changed([note.payload])
                            elif note.pid != me:
                                self._heard = max(self._heard, float(note.payload))
            except Exception as error:  # noqa: BLE001 - any failure: read afresh
                if self._listening or wait == 0.5:
                    log.error("change feed lost (%s): reading every view", error)
            finally:
                self._listening = False
                self.changed([EVERYTHING])
            self._stop.wait(wait)
            wait = min(wait * 2, 10.0)


_FEEDS: dict[tuple, ChangeFeed] = {}


def feed_for(engine: sa.Engine, connect_args: dict | None = None) -> ChangeFeed:
    """The process's feed for the database of ``engine`` (one listener each)."""
    connect_args = connect_args or {}
    args, params = engine.dialect.create_connect_args(engine.url)
    # The listener connects as the pool does (the URL's settings, then the engine's
    # ``connect_args``, TLS files included), with what is its own: autocommit, a
    # name, timeouts and keepalives. What the dialect makes for each engine
    # (psycopg's adapters, say) is left out, so every engine on the database
    # shares one listener.
    settings = {
        "application_name": "quiz change feed",
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,  # ms: unanswered data ends the connection
        **{name: value for name, value in params.items() if _plain(value)},
        **{
            name: os.fspath(value) if isinstance(value, os.PathLike) else value
            for name, value in connect_args.items()
        },
        "autocommit": True,
    }
    key = (tuple(args), tuple(sorted((n, repr(v)) for n, v in settings.items())))
    feed = _FEEDS.get(key)
    if feed is None:
        connect = engine.dialect.loaded_dbapi.connect
        feed = _FEEDS[key] = ChangeFeed(
            lambda: connect(*args, **settings), _notifier(engine)
        )
    return feed


def _plain(value) -> bool:
    return isinstance(value, str | int | float | bool | None)


def _notifier(engine: sa.Engine) -> Callable[[str, str], None]:
    """Send a notification from one of the pool's connections, as changes are."""

    def notify(channel: str, payload: str) -> None:
        with engine.connect() as connection:
            connection.execute(_NOTIFY, {"channel": channel, "payload": payload})
            connection.commit()

    return notify


_NOTIFY = sa.select(sa.func.pg_notify(sa.bindparam("channel"), sa.bindparam("payload")))


def _forget_parents_feeds() -> None:
    for feed in _FEEDS.values():
        feed.forked()


os.register_at_fork(after_in_child=_forget_parents_feeds)


def kept(key: Hashable, tables: tuple[str, ...], read: Callable[[], T]) -> T:
    """``read()``, kept under ``key`` in this process until one of ``tables``
    changes (or ``MAX_AGE``). A None (nothing found) is not kept, so requests for
    what does not exist cannot fill the cache.

    Only committed rows are kept: outside pages that only read, the read is not
    kept once this request's transaction has changed one of ``tables``."""
    feed = current_app.extensions.get(EXTENSION)
    stamp = None if feed is None else feed.stamp(tables)
    if stamp is None or _changed_here(tables):
        return read()
    return current_app.extensions[ROWS].get((key, stamp), read, keep_none=False)


def _changed_here(tables: tuple[str, ...]) -> bool:
    """Whether this request's transaction changed one of ``tables``."""
    if has_request_context() and g.get("read_only_page"):
        return False  # autocommit, and writes are refused
    connection = reads.transaction_connection()
    written = None if connection is None else connection.info.get(WRITTEN)
    return bool(written) and (EVERYTHING in written or not written.isdisjoint(tables))


# --- this process's own changes -------------------------------------------------------


def _count_own_commits(engine: sa.Engine, feed: ChangeFeed | TableCounts) -> None:
    """Count the watched tables a transaction wrote when it commits, so the next
    request in this process sees the change without waiting for the notification.

    Counted twice: as the commit starts (the engine's ``commit`` event), and again
    once it is done (``committed``), so that a read made by another thread between
    the two is not kept under the new counts.
    """

    @sa.event.listens_for(engine, "before_execute")
    def _note(connection, statement, *_args) -> None:
        table = _written_table(statement)
        if table is not None:
            connection.info.setdefault(WRITTEN, set()).add(table)

    @sa.event.listens_for(engine, "commit")
    def _committing(connection) -> None:
        written = connection.info.pop(WRITTEN, None)
        if written:
            feed.changed(written)
            _just_committed.written = (feed, written)

    @sa.event.listens_for(engine, "rollback")
    def _rolled_back(connection) -> None:
        if connection.invalidated:  # lost: its info went with it, and asking fails
            return
        connection.info.pop(WRITTEN, None)


_just_committed = threading.local()


@sa.event.listens_for(db.session, "after_commit")
def _committed(_session) -> None:
    committed()


def committed() -> None:
    """Count again, once the commit is done, what it wrote (see
    ``_count_own_commits``): after the ORM session's commit, and after
    ``reads.core_transaction``'s."""
    done = getattr(_just_committed, "written", None)
    if done is not None:
        _just_committed.written = None
        feed, written = done
        feed.changed(written)


def noted(connection: sa.Connection, table: str) -> None:
    """Note a write to ``table`` made past SQLAlchemy's events (a ``HotWrite``)."""
    if table in WATCHED:
        connection.info.setdefault(WRITTEN, set()).add(table)


_SAVEPOINTS = (
    sa.sql.elements.SavepointClause
    | sa.sql.elements.ReleaseSavepointClause
    | sa.sql.elements.RollbackToSavepointClause
)


def _written_table(statement) -> str | None:
    """The watched table a statement writes, ``EVERYTHING`` if it cannot be told
    (DDL, SQL text other than a SELECT), or None."""
    if isinstance(statement, sa.sql.dml.UpdateBase):
        name = getattr(statement.table, "name", None)
        return name if name in WATCHED else None
    if isinstance(statement, sa.sql.selectable.SelectBase | _SAVEPOINTS):
        return None  # incl. UNION and textual selects; savepoints change nothing
    text = str(statement) if isinstance(statement, sa.TextClause | str) else None
    if text is not None and text.lstrip()[:6].upper() == "SELECT":
        return None
    return EVERYTHING  # DDL, or SQL text that may write anything


# --- the triggers -------------------------------------------------------------------

FUNCTION = f"""\
CREATE OR REPLACE FUNCTION quiz_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$"""


def triggers(table: str) -> list[str]:
    """The statements that make ``table`` announce its changes (again, if it
    already did)."""
    return [
        f'DROP TRIGGER IF EXISTS quiz_notify_change ON "{table}"',
        (
            f"CREATE TRIGGER quiz_notify_change AFTER INSERT OR UPDATE OR DELETE OR "
            f'TRUNCATE ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION '
            f"quiz_notify_change()"
        ),
    ]


def _create_triggers(metadata: sa.MetaData) -> None:
    """Watched tables made by ``create_all`` (the tests do) get the triggers that
    the migrations give a migrated database, when each table is made."""
    for table in WATCHED:
        for statement in [FUNCTION, *triggers(table)]:
            sa.event.listen(
                metadata.tables[table],
                "after_create",
                sa.DDL(statement).execute_if(dialect="postgresql"),
            )


_create_triggers(db.metadata)


# --- SQLite ------------------------------------------------------------------------


# Rows changed per watched table, counted by SQLite's triggers. The table is made on
# PostgreSQL too, so both databases have one schema; there it stays as made.
TABLE_CHANGES = sa.Table(
    "table_change",
    db.metadata,
    sa.Column("table_name", sa.String(40), primary_key=True),
    sa.Column("changes", sa.Integer, nullable=False),
)
_COUNTED = ("INSERT", "UPDATE", "DELETE")


def _counter_name(table: str, event: str) -> str:
    return f"quiz_count_{table}_{event.lower()}"


COUNTERS = frozenset(
    _counter_name(table, event) for table in WATCHED for event in _COUNTED
)


# A trigger per kind of change counts a watched table's changed rows (names and
# tables are this module's own, filled in by the DDL construct).
_COUNTER = (
    'CREATE TRIGGER quiz_count_%(watched)s_%(kind)s AFTER %(event)s ON "%(watched)s" '
    "BEGIN UPDATE table_change SET changes = changes + 1 "
    "WHERE table_name = '%(watched)s'; END"
)


@sa.event.listens_for(TABLE_CHANGES, "after_create")
def _one_count_per_table(target, connection, **_kw) -> None:
    """``table_change`` starts with a row per watched table."""
    connection.execute(
        target.insert(), [{"table_name": table, "changes": 0} for table in WATCHED]
    )


def _count_changes(metadata: sa.MetaData) -> None:
    """SQLite's watched tables made by ``create_all`` (the tests do) get the
    counters that the migrations give a migrated database."""
    for table in WATCHED:
        for event in _COUNTED:
            counter = sa.DDL(
                _COUNTER,
                context={"watched": table, "kind": event.lower(), "event": event},
            )
            sa.event.listen(
                metadata.tables[table],
                "after_create",
                counter.execute_if(dialect="sqlite"),
            )


_count_changes(db.metadata)

# Each count with the schema's version, read in one statement.
_READ_COUNTS = (
    "SELECT table_name, changes, (SELECT schema_version FROM pragma_schema_version) "
    "FROM table_change"
)
_FIND_COUNTERS = (
    "SELECT name FROM sqlite_master WHERE (type = 'table' AND name = 'table_change') "
    "OR (type = 'trigger' AND name LIKE 'quiz!_count!_%' ESCAPE '!')"
)


class TableCounts:
    """SQLite's stand-in for the feed: each watched table's count of changed rows
    (``table_change``, kept by triggers), read on a connection of this process's
    own (one per thread) that never writes.

    The counts are read again only when the connection's ``data_version`` moved
    (another connection committed, in any process). Nothing is kept while a table
    has no count or a counter trigger is missing (a database restored without
    them, a migration that rebuilt a table): its changes would go unseen.

    A stamp names its connection too: stamps of two threads never match, so a
    thread never serves what another kept under a watcher it cannot vouch for.
    """

    def __init__(self, connect: Callable):
        self._connect = connect
        self._mine = threading.local()
        self._inherited: list = []  # a forked parent's connections: never touched
        self._made = itertools.count()

    def stamp(self, tables: Iterable[str]) -> tuple | None:
        """The counts of ``tables`` now, or None (nothing kept) where the read that
        follows may see an older snapshot of the database, a table's changes go
        uncounted, or the watcher failed."""
        if not _snapshot_is_current():
            return None
        mine = self._mine
        try:
            if getattr(mine, "pid", None) != os.getpid():  # new thread or worker
                if getattr(mine, "connection", None) is not None:
                    self._inherited.append(mine.connection)
                mine.connection = self._connect()
                mine.pid = os.getpid()
                mine.name = (os.getpid(), next(self._made))
                mine.version = mine.schema = None
                mine.counts, mine.counted = {}, False
            connection = mine.connection
            version = connection.execute("PRAGMA data_version").fetchone()[0]
            if version != mine.version:
                schema = connection.execute("PRAGMA schema_version").fetchone()[0]
                if schema != mine.schema:  # tables or triggers changed: look again
                    mine.counted = _counters_found(connection)
                    mine.schema = schema
                # Read after the version: counts at least as new as it says.
                rows = (
                    connection.execute(_READ_COUNTS).fetchall() if mine.counted else []
                )
                if rows and rows[0][2] != schema:  # changed since: look again next time
                    rows, version = [], None
                mine.counts = {table: count for table, count, _schema in rows}
                mine.version = version
        except sqlite3.Error as error:
            log.error("SQLite change counts unreadable (%s): reading every view", error)
            broken, mine.connection, mine.pid = mine.connection, None, None
            if broken is not None:
                broken.close()  # the next stamp opens another
            return None
        # The schema's version too: counts made afresh (the table dropped and made
        # again) never match counts kept before.
        try:
            return (mine.name, mine.schema, *map(mine.counts.__getitem__, tables))
        except KeyError:  # a table without its count
            return None

    def changed(self, _tables: Iterable[str]) -> None:
        """The triggers count commits' changes themselves."""


def _counters_found(connection: sqlite3.Connection) -> bool:
    """Whether ``table_change`` and every counter trigger are there; if not (a
    database not yet upgraded, or a table rebuilt without its triggers), says so
    once per schema change: nothing is kept meanwhile."""
    found = {name for (name,) in connection.execute(_FIND_COUNTERS)}
    if found >= {"table_change", *COUNTERS}:
        return True
    log.warning(
        "SQLite change counters missing (run 'flask --app quiz db upgrade'): "
        "reading every view"
    )
    return False


def _snapshot_is_current() -> bool:
    """Whether a read now sees every commit made before it: not so inside a
    SQLite transaction that began without the write lock (its snapshot may be
    older). Pages that only read run without one, forms take the lock first."""
    if has_request_context() and g.get("read_only_page"):
        return True
    if reads.in_core_transaction():
        return True  # begun with the write lock
    if not has_app_context() or not db.session.registry.has():
        return True
    return not db.session().in_transaction() or wants_write_lock()


def _table_counts(engine: sa.Engine, connect_args: dict) -> TableCounts | None:
    """The watcher of a SQLite database in a file (None in memory: a connection of
    its own would see another database)."""
    url = engine.url
    database = url.database or ""
    if (
        not database
        or ":memory:" in database
        or url.query.get("mode") == "memory"
        or "mode=memory" in database
    ):
        return None
    args, params = engine.dialect.create_connect_args(url)
    # Autocommit: a watcher inside a transaction would see one version for good.
    params = {**params, **connect_args, "isolation_level": None}
    if sys.version_info >= (3, 12):
        params["autocommit"] = True
    connect = engine.dialect.loaded_dbapi.connect
    return TableCounts(lambda: connect(*args, **params))


def init_app(app: Flask) -> None:
    app.extensions[ROWS] = VersionedCache(size=8192, max_age=MAX_AGE)
    with app.app_context():
        engine = db.engine
    options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    connect_args = options.get("connect_args") or {}
    feed = None
    if flag(app.config["CHANGE_FEED"]):
        if engine.dialect.name == "postgresql":
            feed = feed_for(engine, connect_args)
        elif engine.dialect.name == "sqlite":
            feed = _table_counts(engine, connect_args)
    app.extensions[EXTENSION] = feed
    if feed is not None:
        _count_own_commits(engine, feed)
