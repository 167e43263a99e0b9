"""Hot reads: the few SELECTs behind every view of the busiest pages, run lean.

For a one-row look-up SQLAlchemy spends about 30 µs building the statement's cache
key, its execution context and its result, several times what SQLite takes to run
it, and an ORM session costs about 40 µs a request to set up and tear down. A
``HotRead`` is compiled once per dialect by SQLAlchemy (the SQL it would send
itself), then run with the driver's cursor; parameters and values pass through the
column types' own processors, so rows hold what SQLAlchemy would have returned.

Where they run:

- On a play page fetched with GET (``g.read_only_page``), on a pooled connection of
  their own, in autocommit like the rest of such a page, without an ORM session
  (or on the session's, if it already took one). A page that reads both ways holds
  two pooled connections: count two per worker thread when sizing the pool and
  PostgreSQL's ``max_connections``.
- Inside ``apart()`` the same way, on any request: the signed-in player's row on
  a form that leaves the player unchanged, read before the form's transaction (the
  connection goes back to the pool as the block ends).
- Anywhere else on the ORM session's connection, inside its transaction: a hot read
  on a form's request sees what that request flushed (hot reads do not flush) and
  takes part in its locks.

A form whose work is all hot statements and Core (answering a question) can run it
in ``core_transaction``: on a pooled connection of its own, without the ORM session,
whose transaction costs more to begin, commit and close than the answer's SQL.

Reads that must follow one another, such as an attempt's row lock and then the
sheet it guards, can go together (``read_together``): on PostgreSQL in one round
trip (psycopg's pipeline mode; the BEGIN of a ``core_transaction`` goes with them,
an ORM session's BEGIN is a round trip of its own), each still run after the one
before with a snapshot of its own; elsewhere one after another.

A ``HotWrite`` runs the INSERT of every answer (and the UPDATE that finishes an
attempt) the same way, always inside the request's transaction; it sets only the
columns it names and computes no Python-side defaults. A write that is its
transaction's last statement can be sent with the COMMIT (``HotWrite.send``): on
PostgreSQL both go in one round trip (pipeline mode again, the COMMIT sent as a
statement). A ``core_transaction`` on PostgreSQL sends its BEGIN the same way, with
its first statement, so an answer waits for the database twice: the BEGIN with the
lock and the sheet, the answer with the COMMIT.

Statements stay simple: no expanding ``IN``, literal or escaped parameters. Being
run by the driver, hot reads pass by SQLAlchemy's engine events, so its statement
logging (``echo``) does not show them, nor the BEGIN a ``core_transaction`` sends
with its first statement.
"""

from __future__ import annotations

import functools
import gc
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask, g, has_request_context, request

from . import changes
from .extensions import db
from .sqlite import write_intent

CONNECTION = "quiz_hot_reads_connection"


@dataclass
class _Compiled:
    sql: str
    # Bind names in the order the driver takes them (positional drivers), or None.
    order: tuple[str, ...] | None
    binds: dict[str, Callable | None]
    compiled: sa.sql.compiler.Compiled
    # The result columns that need converting, as (position, processor): known once
    # a cursor has described the columns.
    results: tuple[tuple[int, Callable], ...] | None = None


class _HotStatement:
    """A statement compiled once per dialect and driver, run with the driver's
    cursor, its parameters passed through the column types' bind processors."""

    def __init__(self, statement):
        self.statement = statement
        self._by_dialect: dict[tuple[str, str], _Compiled] = {}

    def _execute(self, connection: sa.Connection, params: dict[str, Any], fetch):
        """Run the statement on ``connection``; ``fetch`` reads the cursor."""
        _send_pending(connection)  # writes sent before it go first
        dialect = connection.dialect
        compiled = self._compiled(dialect)
        values = _bind(compiled, params)
        dbapi_connection = connection.connection.dbapi_connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, values)
            return fetch(compiled, dialect, cursor), compiled
        except dialect.loaded_dbapi.Error as error:
            raise _database_error(
                connection, cursor, compiled.sql, values, error
            ) from error
        finally:
            _close(cursor, dialect)

    def _compiled(self, dialect) -> _Compiled:
        found = self._by_dialect.get((dialect.name, dialect.driver))
        if found is None:
            compiled = self._compile(dialect)
            if compiled.escaped_bind_names or any(
                bind.expanding or bind.literal_execute
                for bind in compiled.binds.values()
            ):
                raise ValueError(
                    f"a {type(self).__name__} takes no expanding IN, literal or "
                    "escaped parameters"
                )
            binds = {
                name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                for name, bind in compiled.binds.items()
            }
            order = tuple(compiled.positiontup) if dialect.positional else None
            found = _Compiled(compiled.string, order, binds, compiled)
            self._by_dialect[(dialect.name, dialect.driver)] = found
        return found

    def _compile(self, dialect) -> sa.sql.compiler.Compiled:
        return self.statement.compile(dialect=dialect)


class HotRead(_HotStatement):
    """A SELECT compiled once per dialect and run with the driver's cursor."""

    def __init__(self, statement: sa.Select | sa.CompoundSelect):
        super().__init__(statement)
        self.Row = namedtuple(  # unnamed columns become _0, _1...
            "Row",
            [str(column.key) for column in statement.selected_columns],
            rename=True,
        )
        self._types = [column.type for column in statement.selected_columns]

    def all(self, **params: Any) -> list:
        return self._run(params, fetch_one=False)

    def first(self, **params: Any):
        return self._run(params, fetch_one=True)

    def scalar(self, **params: Any):
        row = self.first(**params)
        return None if row is None else row[0]

    def _run(self, params: dict[str, Any], *, fetch_one: bool):
        rows, compiled = self._execute(
            _connection(), params, functools.partial(self._fetch, fetch_one=fetch_one)
        )
        return self._made(rows, compiled, fetch_one=fetch_one)

    def _fetch(self, compiled: _Compiled, dialect, cursor, *, fetch_one: bool):
        rows = [cursor.fetchone()] if fetch_one else cursor.fetchall()
        if compiled.results is None:
            compiled.results = self._result_processors(dialect, cursor)
        return rows

    def _made(self, rows: list, compiled: _Compiled, *, fetch_one: bool):
        if fetch_one and rows[0] is None:
            return None
        made = [self._row(row, compiled.results) for row in rows]
        return made[0] if fetch_one else made

    def _row(self, row: Sequence, converted: tuple[tuple[int, Callable], ...]):
        if not converted:  # values as the driver gave them
            return self.Row._make(row)
        values = list(row)
        for position, process in converted:
            values[position] = process(values[position])
        return self.Row._make(values)

    def _result_processors(self, dialect, cursor) -> tuple[tuple[int, Callable], ...]:
        processors = (
            kind.dialect_impl(dialect).result_processor(dialect, described[1])
            for kind, described in zip(self._types, cursor.description, strict=True)
        )
        return tuple(
            (position, process)
            for position, process in enumerate(processors)
            if process is not None
        )


class HotWrite(_HotStatement):
    """An INSERT, UPDATE or DELETE run as hot reads are, always inside the
    request's transaction: for the writes of answering (the answer, and the attempt
    it finishes).

    ``columns`` are those it sets, each from the parameter of the same name; columns
    whose values Python computes (a ``default`` or ``onupdate`` function) must be
    among them. Nothing is returned but the count of rows changed (an INSERT fetches
    no generated key).
    """

    def __init__(self, statement: sa.Insert | sa.Update | sa.Delete, columns=()):
        if isinstance(statement, sa.Insert):
            statement = statement.inline()  # no RETURNING of the new key
        super().__init__(statement)
        self.columns = tuple(columns)

    def run(self, **params: Any) -> int:
        """Run it; return the number of rows it changed."""
        connection = self._connection()
        count, _ = self._execute(
            connection, params, lambda _c, _d, cursor: cursor.rowcount
        )
        changes.noted(connection, self.statement.table.name)
        return count

    def send(self, **params: Any) -> None:
        """Run it with its transaction's COMMIT, when that commits: on PostgreSQL
        in the same round trip. For a write whose count of rows does not
        matter, as the last statement of its transaction: any statement run on the
        transaction before the commit sends it first, and a rollback drops it."""
        connection = self._connection()
        connection.info.setdefault(SENT_WITH_COMMIT, []).append((self, params))
        changes.noted(connection, self.statement.table.name)

    @staticmethod
    def _connection() -> sa.Connection:
        if has_request_context() and g.get("read_only_page"):
            raise RuntimeError(f"GET {request.path} tried to change the database")
        return session_connection()

    def _compile(self, dialect) -> sa.sql.compiler.Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError(
                "a HotWrite computes no defaults: give "
                + ", ".join(
                    c.key for c in compiled.insert_prefetch + compiled.update_prefetch
                )
            )
        return compiled


def read_together(*reads: tuple[HotRead, dict[str, Any]]) -> list[list]:
    """Run hot reads, each with its parameters, in one round trip where the driver
    can (psycopg's pipeline mode), else one after another; return each one's rows,
    as ``HotRead.all`` does.

    Each statement still runs after the one before it, with a snapshot of its own:
    a read that follows a row lock (``FOR UPDATE``) sees what was committed while
    the lock was waited for.
    """
    connection = _connection()
    dialect = connection.dialect
    if not _pipelines(dialect):
        return [read.all(**params) for read, params in reads]
    if SENT_WITH_COMMIT in connection.info:
        _send_pending(connection)  # writes sent before them go first
    begin = BEGIN_PENDING in connection.info  # goes with them
    compiled = [(read, read._compiled(dialect), params) for read, params in reads]
    dbapi_connection = connection.connection.dbapi_connection
    cursors = [dbapi_connection.cursor() for _ in compiled]
    opening = dbapi_connection.cursor() if begin else None
    try:
        with dbapi_connection.pipeline():
            if opening is not None:
                del connection.info[BEGIN_PENDING]
                opening.execute(BEGIN)
            for cursor, (_read, statement, params) in zip(
                cursors, compiled, strict=True
            ):
                cursor.execute(statement.sql, _bind(statement, params))
        fetched = [
            read._fetch(statement, dialect, cursor, fetch_one=False)
            for cursor, (read, statement, _params) in zip(
                cursors, compiled, strict=True
            )
        ]
    except dialect.loaded_dbapi.Error as error:
        sql = ";\n".join(
            [*([BEGIN] if begin else []), *(s.sql for _r, s, _p in compiled)]
        )
        raise _database_error(connection, None, sql, None, error) from error
    finally:
        for cursor in [*cursors, opening] if opening is not None else cursors:
            _close(cursor, dialect)
    return [
        read._made(rows, statement, fetch_one=False)
        for rows, (read, statement, _params) in zip(fetched, compiled, strict=True)
    ]


def _pipelines(dialect) -> bool:
    """Whether the driver sends several statements in one round trip: psycopg's
    pipeline mode (it needs libpq 14 or newer, which psycopg's binary wheels bring)."""
    return dialect.driver == "psycopg" and dialect.loaded_dbapi.Pipeline.is_supported()


# --- statements sent with others: the BEGIN, and writes sent with the COMMIT ----------
# Kept in the info of their transaction's connection until they are sent: the BEGIN
# of a ``core_transaction`` on PostgreSQL before its first statement, writes
# (``HotWrite.send``) before any statement that follows them or with the COMMIT (the
# engine's ``commit`` event: only the outermost transaction's, after the ORM's last
# flush). Dropped if the transaction rolls back, and when the connection goes back
# to the pool whatever happened.
BEGIN_PENDING = "quiz_begin_pending"
SENT_WITH_COMMIT = "quiz_sent_with_commit"
# The level answering relies on (each statement sees what committed before it
# began: the sheet read once the lock is held), PostgreSQL's default, stated so that
# a server or engine set otherwise does not change it.
BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"


def _begin_now(connection: sa.Connection) -> None:
    """Send the BEGIN that waited for the transaction's first statement, alone."""
    dialect = connection.dialect
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(BEGIN)
        del connection.info[BEGIN_PENDING]
    except dialect.loaded_dbapi.Error as error:
        raise _database_error(connection, cursor, BEGIN, None, error) from error
    finally:
        _close(cursor, dialect)


def _send_now(connection: sa.Connection) -> None:
    """Run the writes waiting for the COMMIT now, one by one: a statement follows."""
    for write, params in connection.info.pop(SENT_WITH_COMMIT):
        write._execute(connection, params, lambda *_args: None)


def _send_pending(connection: sa.Connection, *_args) -> None:
    """Before another statement on the transaction: the BEGIN and the writes
    waiting go first."""
    if BEGIN_PENDING in connection.info:
        _begin_now(connection)
    if SENT_WITH_COMMIT in connection.info:
        _send_now(connection)


def _send_with_commit(connection: sa.Connection) -> None:
    """As the transaction commits: send the writes waiting for it. On PostgreSQL
    they go with a COMMIT (and the BEGIN, if no statement ran before them), in one
    round trip (pipeline mode); the driver's own commit, which follows, finds the
    transaction ended and sends nothing. Elsewhere they run one by one, then the
    driver commits. A BEGIN still waiting with no write is dropped: nothing ran."""
    begin = connection.info.pop(BEGIN_PENDING, False)
    if SENT_WITH_COMMIT not in connection.info:
        return
    dialect = connection.dialect
    if not _pipelines(dialect):
        _send_now(connection)
        return
    sent = connection.info.pop(SENT_WITH_COMMIT)
    statements = [(write._compiled(dialect), params) for write, params in sent]
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        with dbapi_connection.pipeline():
            if begin:
                cursor.execute(BEGIN)
            for statement, params in statements:
                cursor.execute(statement.sql, _bind(statement, params))
            cursor.execute("COMMIT")  # skipped by the server if a write failed
    except dialect.loaded_dbapi.Error as error:
        sql = ";\n".join(
            [
                *([BEGIN] if begin else []),
                *(statement.sql for statement, _ in statements),
                "COMMIT",
            ]
        )
        failure = _database_error(connection, None, sql, None, error)
        if not failure.connection_invalidated:
            # Ended as a failed COMMIT ends it: SQLAlchemy sends no ROLLBACK after a
            # commit that failed, and the pool would take the connection back with
            # its failed transaction open.
            with suppress(dialect.loaded_dbapi.Error):
                dbapi_connection.rollback()
        raise failure from error
    finally:
        _close(cursor, dialect)


def _drop_unsent(connection: sa.Connection) -> None:
    if not connection.invalidated:  # lost: its info went with it
        connection.info.pop(BEGIN_PENDING, None)
        connection.info.pop(SENT_WITH_COMMIT, None)


def _drop_unsent_on_checkin(_dbapi_connection, record) -> None:
    record.info.pop(BEGIN_PENDING, None)
    record.info.pop(SENT_WITH_COMMIT, None)


def _send_with_commits(engine: sa.Engine) -> None:
    """Install the engine's listeners that send, and drop, the BEGIN and the writes
    waiting to go with other statements (once per engine)."""
    if sa.event.contains(engine, "commit", _send_with_commit):
        return
    # Before every statement SQLAlchemy sends, ``exec_driver_sql``'s included.
    sa.event.listen(engine, "before_cursor_execute", _send_pending)
    sa.event.listen(engine, "commit", _send_with_commit)
    sa.event.listen(engine, "rollback", _drop_unsent)
    sa.event.listen(engine, "checkin", _drop_unsent_on_checkin)


def _database_error(connection: sa.Connection, cursor, sql: str, values, error):
    """The driver's ``error`` as SQLAlchemy reports it: the error pages see a
    database error, and a lost connection means the database went away, so the pool
    starts afresh (its other connections are lost too)."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
        connection.engine.dispose()
    return sa.exc.DBAPIError.instance(
        sql,
        values,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )


def _close(cursor, dialect) -> None:
    with suppress(dialect.loaded_dbapi.Error):  # never hides an error being raised
        cursor.close()


def _bind(compiled: _Compiled, params: dict[str, Any]):
    values = compiled.compiled.construct_params(params)
    for name, process in compiled.binds.items():
        if process is not None:
            values[name] = process(values[name])
    if compiled.order is None:
        return values
    return tuple(values[name] for name in compiled.order)


def _connection() -> sa.Connection:
    """The connection hot reads run on in this request (see the module's notes)."""
    if not has_request_context():
        return session_connection()
    if not (g.get("read_only_page") or _apart.get() and not in_core_transaction()):
        return session_connection()
    if db.session.registry.has() and db.session().in_transaction():
        return db.session.connection()  # the ORM took one first: share it
    connection = g.get(CONNECTION)
    if connection is None:
        connection = db.engine.connect()
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        setattr(g, CONNECTION, connection)
    return connection


_apart: ContextVar[bool] = ContextVar("quiz_reads_apart", default=False)


@contextmanager
def apart() -> Iterator[None]:
    """Run the hot reads inside the block as a page that only reads runs them: in
    autocommit, on the request's pooled connection for such reads, seeing what is
    committed (or on the ORM session's, if it already began a transaction).

    For the signed-in player's row on a form that leaves the player unchanged
    (answering), read before the form's transaction begins: on the session's
    connection it would begin the ORM session's transaction (on SQLite taking the
    write lock), and the answer's ``core_transaction`` would then run in it. A
    connection the block took goes back to the pool when it ends (on a form, the
    transaction that follows takes one of its own); inside a ``core_transaction``
    the reads stay in it.
    """
    opened = has_request_context() and CONNECTION not in g
    token = _apart.set(True)
    try:
        yield
    finally:
        _apart.reset(token)
        if opened and not g.get("read_only_page"):
            _close_connection()


# The connection of the ORM session's transaction, kept in the session's ``info``
# from its BEGIN to its end: asking the session for it costs more than a hot read.
TRANSACTION_CONNECTION = "quiz_transaction_connection"


def session_connection() -> sa.Connection:
    """The connection of the request's transaction: ``core_transaction``'s, else the
    ORM session's (its transaction begun if need be)."""
    core = _core_transaction.get()
    if core is not None:
        return core
    session = db.session()
    connection = session.info.get(TRANSACTION_CONNECTION)
    if connection is None or not connection.in_transaction():
        # After a failed flush the session's transaction must be rolled back
        # first: the session says so.
        connection = session.connection()
    return connection


def transaction_connection() -> sa.Connection | None:
    """The connection of the transaction in progress, if one is: ``core_transaction``'s
    or the ORM session's."""
    core = _core_transaction.get()
    if core is not None:
        return core
    if not db.session.registry.has():
        return None
    return db.session().info.get(TRANSACTION_CONNECTION)


# --- a write transaction without the ORM session ---------------------------------------
_core_transaction: ContextVar[sa.Connection | None] = ContextVar(
    "quiz_core_transaction", default=None
)


class SessionInCoreTransaction(RuntimeError):
    """A transaction began inside ``core_transaction`` on another connection: the
    ORM session's, or any other of the engine's."""


@contextmanager
def core_transaction() -> Iterator[sa.Connection]:
    """A write transaction for work done in hot statements and Core alone (answering
    a question), on a pooled connection, without the ORM session: committed when the
    block ends, rolled back if it raises.

    Beginning, committing and closing the ORM session's transaction cost about
    0.14 ms a request more than a Core connection's, in one process, for an
    answer that builds no ORM object. Everything SQLAlchemy's engine does still
    happens: on SQLite ``BEGIN IMMEDIATE`` (in a request or not), writes sent with
    the COMMIT, the changed tables counted, a failed COMMIT rolled back before the
    connection goes back to the pool. On PostgreSQL the BEGIN goes with the first
    statement (at READ COMMITTED, whatever the engine's isolation level), and a
    block that runs none sends nothing. ``HotRead``, ``HotWrite``, ``read_together``
    and ``execute_core`` run on this connection inside the block; a
    ``core_transaction`` inside it runs in it.

    No other connection may begin a transaction inside the block (on SQLite it
    would wait for this one's write lock): the ORM session beginning one, or any
    other connection's BEGIN, raises ``SessionInCoreTransaction``. If the session
    began one before (a form that read through the session first), the block runs
    in it and commits it instead.
    """
    outer = _core_transaction.get()
    if outer is not None:
        yield outer
        return
    if db.session.registry.has() and db.session().in_transaction():
        try:
            yield session_connection()
        except BaseException:
            db.session.rollback()
            raise
        db.session.commit()
        return
    connection = db.engine.connect()
    # On PostgreSQL the driver, left to itself, sends BEGIN in a round trip of its
    # own before the first statement. In autocommit it sends none, and the BEGIN
    # goes with the transaction's first statement instead (``_send_pending``,
    # ``read_together``, ``_send_with_commit``); the driver's commit and rollback
    # still end what the server began. The pool resets the connection's mode.
    dialect = connection.dialect
    # (An engine set to skip rollbacks in autocommit would leave a failed one open.)
    deferred_begin = _pipelines(dialect) and not dialect.skip_autocommit_rollback
    if deferred_begin:
        connection.execution_options(isolation_level="AUTOCOMMIT")
    token = _core_transaction.set(connection)
    # No garbage collection pause while the transaction holds its locks (on SQLite
    # the database's write lock, which every other writer waits for); it runs
    # after, if due. Only the block that turned collection off turns it back on.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with write_intent(), connection.begin():
            if deferred_begin:
                connection.info[BEGIN_PENDING] = True
            yield connection
    finally:
        _core_transaction.reset(token)
        connection.close()
        if collecting:
            gc.enable()
    changes.committed()


def in_core_transaction() -> bool:
    return _core_transaction.get() is not None


_ANOTHER_TRANSACTION = (
    "A transaction began inside core_transaction() on another connection (on SQLite "
    "it would wait for this one's write lock): use hot statements or execute_core "
    "there, or the ORM session throughout."
)


@sa.event.listens_for(db.session, "after_transaction_create")
def _refuse_session_in_core_transaction(_session, transaction) -> None:
    if transaction.parent is None and _core_transaction.get() is not None:
        raise SessionInCoreTransaction(_ANOTHER_TRANSACTION)


def guard_core_transactions(engine: sa.Engine) -> None:
    """Refuse any other connection's BEGIN inside a ``core_transaction``. Install it
    before SQLite's ``begin`` listener, which would first wait for the write lock."""
    if not sa.event.contains(engine, "begin", _refuse_another_begin):
        sa.event.listen(engine, "begin", _refuse_another_begin)


def _refuse_another_begin(connection: sa.Connection) -> None:
    core = _core_transaction.get()
    if core is not None and connection is not core:
        raise SessionInCoreTransaction(_ANOTHER_TRANSACTION)


def execute_core(statement, params: dict | list[dict] | None = None) -> sa.CursorResult:
    """Run a Core statement on the connection of the request's transaction
    (``session_connection``).

    For the leaderboard's bookkeeping when an attempt finishes, and statements a
    ``HotRead`` or ``HotWrite`` cannot take (executemany, dialect-specific
    upserts): it skips the ORM's statement and result handling (and autoflush, so
    flush pending objects first). Pages that only read use ``HotRead`` instead (this
    would open the session's connection outside autocommit on PostgreSQL).
    """
    return session_connection().execute(statement, params)


@sa.event.listens_for(db.session, "after_begin")
def _keep_transaction_connection(session, _transaction, connection) -> None:
    session.info[TRANSACTION_CONNECTION] = connection


@sa.event.listens_for(db.session, "after_transaction_end")
def _drop_transaction_connection(session, transaction) -> None:
    if transaction.parent is None:  # the outermost: savepoints keep the connection
        session.info.pop(TRANSACTION_CONNECTION, None)


def _close_connection(_error: BaseException | None = None) -> None:
    connection = g.pop(CONNECTION, None)
    if connection is not None:
        connection.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(_close_connection)
    with app.app_context():
        _send_with_commits(db.engine)
