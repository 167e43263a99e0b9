"""Hot reads: the same rows as SQLAlchemy, on the right connection, errors reported."""

import gc
import sqlite3
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import g, request
from flask_login import current_user, login_required
from sqlalchemy.orm import object_session

from quiz import changes
from quiz.extensions import db
from quiz.models import Attempt, AttemptItem, BestScore, Response, User
from quiz.reads import (
    BEGIN_PENDING,
    CONNECTION,
    SENT_WITH_COMMIT,
    TRANSACTION_CONNECTION,
    HotRead,
    HotWrite,
    SessionInCoreTransaction,
    apart,
    core_transaction,
    execute_core,
    read_together,
    session_connection,
    transaction_connection,
)
from quiz.security import SharedPlayerChanged, leaves_player_unchanged
from tests.conftest import requires_postgres
from tests.factories import make_account, make_quiz

USER = sa.select(*User.__table__.columns).where(User.id == sa.bindparam("id"))
# Floats, NULLs and a timestamp compared with a parameter: what the catalogue reads.
PART = sa.union_all(
    sa.select(BestScore.quiz_id, BestScore.score, BestScore.max_score, sa.null()).where(
        BestScore.user_id == sa.bindparam("user_id")
    ),
    sa.select(Attempt.quiz_id, sa.null(), sa.null(), Attempt.id).where(
        Attempt.user_id == sa.bindparam("user_id"),
        Attempt.finished_at.is_(None),
        sa.or_(Attempt.deadline.is_(None), Attempt.deadline > sa.bindparam("now")),
    ),
)


@pytest.fixture
def player(app):
    with app.app_context():
        quiz = make_quiz("alpha")
        user = make_account("reader@example.org", name="Reader")
        user.last_login_at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
        finished = Attempt(
            quiz_id=quiz.id,
            user_id=user.id,
            score=2.5,
            max_score=3.0,
            pass_mark=50,
            duration_ms=61_000,
            finished_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        )
        db.session.add(finished)
        db.session.flush()
        db.session.add(
            BestScore(
                quiz_id=quiz.id,
                user_id=user.id,
                attempt_id=finished.id,
                score=2.5,
                max_score=3.0,
                duration_ms=61_000,
                finished_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
            )
        )
        db.session.add(
            Attempt(quiz_id=quiz.id, user_id=user.id, max_score=3.0, pass_mark=50)
        )
        db.session.commit()
        return user.id


@pytest.fixture
def players_seen(app) -> list:
    """The player each request to ``/probe-player`` was given, and whether it was in
    the ORM session then: a read-only page for GET, a form for POST (a route added
    to the app for the test)."""
    seen = []

    @app.route("/probe-player", methods=["GET", "POST"])
    def _probe():
        if request.method == "GET":
            g.read_only_page = True
        user = current_user._get_current_object()
        seen.append((user, object_session(user) is not None))
        return user.display_name

    @app.post("/probe-player-unchanged")
    @leaves_player_unchanged
    @login_required
    def _probe_unchanged():
        return _probe()

    with app.app_context():
        make_quiz("alpha")
    return seen


def test_rows_match_what_sqlalchemy_returns(app, player):
    now = datetime.now(UTC)
    with app.app_context():
        core_user = db.session.execute(USER, {"id": player}).one()
        core_part = db.session.execute(PART, {"user_id": player, "now": now}).all()
        db.session.rollback()
        hot_user = HotRead(USER).first(id=player)
        hot_part = HotRead(PART).all(user_id=player, now=now)
    assert tuple(hot_user) == tuple(core_user)
    assert hot_user.last_login_at == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert hot_user.is_guest is False and hot_user.display_name == "Reader"
    assert sorted(map(tuple, hot_part), key=str) == sorted(
        map(tuple, core_part), key=str
    )
    assert {type(row[1]) for row in hot_part} == {float, type(None)}


def test_no_row_and_scalars(app, player):
    read = HotRead(sa.select(User.display_name).where(User.id == sa.bindparam("id")))
    with app.app_context():
        assert read.first(id=player + 1000) is None
        assert read.scalar(id=player + 1000) is None
        assert read.scalar(id=player) == "Reader"
        assert read.all(id=player + 1000) == []


def test_a_form_request_reads_inside_its_own_transaction(app, player):
    """Off the read-only pages, a hot read sees what the request wrote and has not
    committed yet: it runs on the ORM session's connection."""
    read = HotRead(sa.select(User.display_name).where(User.id == sa.bindparam("id")))
    with app.test_request_context("/", method="POST"):
        db.session.get(User, player).display_name = "Renamed"
        db.session.flush()
        assert read.scalar(id=player) == "Renamed"
        db.session.rollback()
        assert read.scalar(id=player) == "Reader"


def test_a_read_only_page_reads_on_its_own_connection_and_returns_it(app, player):
    read = HotRead(sa.select(User.display_name).where(User.id == sa.bindparam("id")))
    with app.app_context():
        pool = db.engine.pool
    with app.test_request_context("/"):
        g.read_only_page = True
        assert read.scalar(id=player) == "Reader"
        assert read.scalar(id=player) == "Reader"
        assert g.get(CONNECTION) is not None
        assert not db.session().in_transaction()  # the ORM session was not touched
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0


def test_expanding_parameters_are_refused(app):
    read = HotRead(sa.select(User.id).where(User.id.in_(sa.bindparam("ids"))))
    with app.app_context(), pytest.raises(ValueError, match="expanding"):
        read.all(ids=[1, 2])


def test_driver_errors_are_reported_as_sqlalchemy_errors(app):
    missing = sa.table("no_such_table", sa.column("id"))
    read = HotRead(sa.select(missing.c.id).where(missing.c.id == sa.bindparam("id")))
    with app.test_request_context("/"):
        g.read_only_page = True
        with pytest.raises(sa.exc.DBAPIError) as raised:
            read.first(id=1)
        assert "no_such_table" in str(raised.value)


NAME = HotRead(sa.select(User.display_name).where(User.id == sa.bindparam("id")))
LOCK_USER = HotRead(
    sa.select(User.id).where(User.id == sa.bindparam("id")).with_for_update()
)


def test_reads_together_return_what_each_read_returns(app, player):
    """Read together (in one round trip on PostgreSQL), inside the request's
    transaction: each read's rows, as ``HotRead.all`` gives them, uncommitted
    changes included."""
    now = datetime.now(UTC)
    part = HotRead(PART)
    with app.test_request_context("/", method="POST"):
        alone = (HotRead(USER).all(id=player), part.all(user_id=player, now=now))
        db.session.rollback()
        db.session.get(User, player).display_name = "Renamed"
        db.session.flush()
        users, parts, names = read_together(
            (HotRead(USER), {"id": player}),
            (part, {"user_id": player, "now": now}),
            (NAME, {"id": player + 1000}),
        )
        db.session.rollback()
    assert [user._replace(display_name="Reader") for user in users] == alone[0]
    assert users[0].display_name == "Renamed"
    assert sorted(parts, key=str) == sorted(alone[1], key=str)
    assert names == []


def test_a_failed_read_together_is_reported_and_the_session_recovers(app, player):
    missing = sa.table("no_such_table", sa.column("id"))
    broken = HotRead(sa.select(missing.c.id).where(missing.c.id == sa.bindparam("id")))
    with app.test_request_context("/", method="POST"):
        with pytest.raises(sa.exc.DBAPIError) as raised:
            read_together((NAME, {"id": player}), (broken, {"id": 1}))
        assert "no_such_table" in str(raised.value.orig)  # the driver's own error
        assert not raised.value.connection_invalidated
        db.session.rollback()
        assert read_together((NAME, {"id": player}))[0][0].display_name == "Reader"
        db.session.rollback()
        assert db.engine.pool.checkedout() == 0


@requires_postgres
def test_a_read_after_a_lock_sees_what_was_committed_while_it_waited(app, player):
    """Reads sent together still run one after another, each with a snapshot of its
    own: the read after a row lock sees the change that the lock's holder committed
    while the lock was waited for (answering reads an attempt's sheet so)."""
    with app.app_context():
        other = make_account("other@example.org", name="Before").id
        db.session.commit()
        engine = db.engine
    got, failed = [], []

    def read():
        try:
            with app.test_request_context("/", method="POST"):
                got.append(
                    read_together((LOCK_USER, {"id": player}), (NAME, {"id": other}))
                )
                db.session.rollback()
        except Exception as error:  # noqa: BLE001 - reported below, not as a warning
            failed.append(error)

    with engine.connect() as holder:
        holder.execute(sa.select(User.id).where(User.id == player).with_for_update())
        holder.execute(
            sa.update(User).where(User.id == other).values(display_name="After")
        )
        reader = threading.Thread(target=read)
        reader.start()
        _wait_for_a_lock_wait(engine, reader)
        holder.commit()
    reader.join(timeout=60)
    assert not failed and not reader.is_alive()
    assert got == [[[(player,)], [("After",)]]]


@requires_postgres
def test_on_postgresql_reads_together_take_one_pipeline(app, player, monkeypatch):
    import psycopg

    entered = []
    pipeline = psycopg.Connection.pipeline

    def counted(connection):
        entered.append(connection)
        return pipeline(connection)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    with app.test_request_context("/", method="POST"):
        names = read_together((NAME, {"id": player}), (NAME, {"id": player + 1000}))
        db.session.rollback()
    assert names == [[("Reader",)], []]
    assert len(entered) == 1


def _wait_for_a_lock_wait(engine, waiter: threading.Thread, tries: int = 600) -> None:
    """Until a session of this database waits for a row lock (pg_stat_activity),
    while ``waiter`` runs."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as watcher:
        for _ in range(tries):
            if watcher.execute(waiting).scalar() or not waiter.is_alive():
                return
            watcher.rollback()
            time.sleep(0.05)
    raise AssertionError("nobody waited for the lock")


def test_read_only_pages_take_the_player_detached_from_their_row(client, players_seen):
    """A page that only reads gets the signed-in player from a hot read, as a
    detached copy; a form gets the player in the ORM session."""
    client.post("/guest", data={"display_name": "Guesty"})
    assert client.get("/probe-player").text == "Guesty"
    assert client.post("/probe-player").text == "Guesty"
    (on_page, page_in_session), (on_form, form_in_session) = players_seen
    assert type(on_page) is User and not page_in_session
    assert on_form is not on_page and form_in_session


def test_a_form_that_leaves_its_player_unchanged_shares_the_copy(client, players_seen):
    """Answering, say: the player is read as on pages that only read, and shared."""
    client.post("/guest", data={"display_name": "Guesty"})
    assert client.get("/probe-player").text == "Guesty"
    assert client.post("/probe-player-unchanged").text == "Guesty"
    (on_page, _), (on_form, form_in_session) = players_seen
    assert on_form is on_page and not form_in_session


def test_a_changed_session_token_refuses_an_answer(app, client):
    """Forms that take the shared copy check the session against the row too."""
    with app.app_context():
        make_quiz("alpha")
    client.post("/guest", data={"display_name": "Guesty"})
    started = client.post("/quizzes/alpha/start")
    attempt_path = started.headers["Location"]
    with app.app_context():
        player = db.session.scalar(sa.select(User).where(User.is_guest))
        player.session_token = "0" * 32
        db.session.commit()
        attempt = db.session.scalar(sa.select(Attempt))
        choice = attempt.items[0].choice_order[0]
    answered = client.post(f"{attempt_path}/questions/1", data={"choice": choice})
    assert answered.status_code == 302
    assert answered.headers["Location"].startswith("/auth/login")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Response.id))) == 0


def test_a_changed_session_token_signs_out_of_read_only_pages(app, client):
    """The hot read checks the session against the player's row on every page."""
    with app.app_context():
        make_quiz("alpha")
    client.post("/guest", data={"display_name": "Guesty"})
    assert b"Guesty" in client.get("/").data
    with app.app_context():
        player = db.session.scalar(sa.select(User).where(User.is_guest))
        player.session_token = "0" * 32
        db.session.commit()
    page = client.get("/").data
    assert b"Guesty" not in page


def test_an_open_attempt_past_its_deadline_is_not_offered(app, player):
    """The catalogue's player part compares the deadline with a bound timestamp."""
    from quiz import catalogue

    with app.test_request_context("/"):
        g.read_only_page = True
        user = db.session.get(User, player)
        assert catalogue.cards(user)[0].open_attempt_id is not None
    with app.app_context():
        attempt = db.session.scalar(
            sa.select(Attempt).where(Attempt.finished_at.is_(None))
        )
        attempt.deadline = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
    with app.test_request_context("/"):
        g.read_only_page = True
        user = db.session.get(User, player)
        assert catalogue.cards(user)[0].open_attempt_id is None


def test_read_only_pages_share_a_copy_of_the_player_while_their_row_stands(
    app, client, players_seen
):
    client.post("/guest", data={"display_name": "Shared"})
    assert client.get("/probe-player").text == "Shared"
    assert client.get("/probe-player").text == "Shared"
    assert players_seen[0][0] is players_seen[1][0]
    with app.app_context():
        db.session.scalar(sa.select(User).where(User.is_guest)).display_name = "Moved"
        db.session.commit()
    assert client.get("/probe-player").text == "Moved"
    assert players_seen[2][0] is not players_seen[1][0]


def test_a_disabled_account_is_signed_out_of_read_only_pages(app, auth, client):
    with app.app_context():
        make_quiz("alpha")
        user_id = make_account("dee@example.org", role="player", name="Dee").id
    auth.login("dee@example.org")
    assert "Dee" in client.get("/").text
    with app.app_context():
        db.session.get(User, user_id).is_disabled = True
        db.session.commit()
    assert "Dee" not in client.get("/").text
    assert client.get("/quizzes/alpha/leaderboard").status_code == 200


def test_the_connection_goes_back_to_the_pool_after_a_driver_error(app):
    missing = sa.table("no_such_table", sa.column("id"))
    read = HotRead(sa.select(missing.c.id).where(missing.c.id == sa.bindparam("id")))

    @app.get("/probe-broken")
    def _probe():
        g.read_only_page = True
        return str(read.first(id=1))

    app.config["PROPAGATE_EXCEPTIONS"] = False
    with app.app_context():
        pool = db.engine.pool
    response = app.test_client().get("/probe-broken")
    assert response.status_code == 500 and "Traceback" not in response.text
    assert pool.checkedout() == 0


def test_hot_reads_share_the_orm_sessions_connection_once_it_has_one(app, player):
    read = HotRead(sa.select(User.display_name).where(User.id == sa.bindparam("id")))
    with app.test_request_context("/"):
        g.read_only_page = True
        db.session.get(User, player)  # the ORM takes a connection first
        assert read.scalar(id=player) == "Reader"
        assert g.get(CONNECTION) is None
        assert db.engine.pool.checkedout() == 1


@requires_postgres
def test_on_postgresql_hot_reads_of_read_only_pages_autocommit(app, player):
    read = HotRead(sa.select(User.display_name).where(User.id == sa.bindparam("id")))
    with app.test_request_context("/"):
        g.read_only_page = True
        assert read.scalar(id=player) == "Reader"
        assert g.get(CONNECTION).connection.driver_connection.autocommit
    with app.test_request_context("/", method="POST"):
        assert read.scalar(id=player) == "Reader"
        assert not db.session.connection().connection.driver_connection.autocommit


def test_the_shared_copy_of_a_player_refuses_changes(app, client, players_seen):
    client.post("/guest", data={"display_name": "Fixed"})
    client.get("/probe-player")
    shared, _ = players_seen[0]
    with pytest.raises(SharedPlayerChanged):
        shared.display_name = "Changed"
    with app.app_context():
        with pytest.raises(SharedPlayerChanged):
            db.session.add(shared)
        with pytest.raises(SharedPlayerChanged):
            db.session.add(Attempt(user=shared, quiz_id=1, pass_mark=50))
    assert shared.display_name == "Fixed"


def test_core_statements_run_in_the_sessions_transaction_of_the_moment(app):
    """``session_connection`` follows the ORM session: its transaction's connection
    through savepoints, a new one after a commit or a rollback."""
    with app.app_context():
        first = session_connection()
        assert first is db.session.connection()
        with db.session.begin_nested():
            assert session_connection() is first
        assert session_connection() is first
        db.session.commit()
        assert TRANSACTION_CONNECTION not in db.session().info
        assert session_connection() is db.session.connection()
        db.session.rollback()
        assert TRANSACTION_CONNECTION not in db.session().info


RESPONSE_COLUMNS = (
    "attempt_id",
    "position",
    "question_id",
    "revision_id",
    "chosen",
    "points",
    "is_correct",
    "answered_at",
    "seconds",
)


def open_attempt_item(user_id: int):
    attempt = db.session.scalar(
        sa.select(Attempt).where(
            Attempt.user_id == user_id, Attempt.finished_at.is_(None)
        )
    )
    question = attempt.quiz.questions[0]
    return attempt, question


def test_a_hot_write_stores_what_the_orm_reads_back(app, player):
    """Lists as JSON, a tz-aware timestamp, booleans and floats, inside the
    request's transaction; a duplicate is the driver's IntegrityError."""
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    answered_at = datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC)
    with app.test_request_context("/", method="POST"):
        attempt, question = open_attempt_item(player)
        values = {
            "attempt_id": attempt.id,
            "position": 1,
            "question_id": question.id,
            "revision_id": question.current.id,
            "chosen": [3, 1],
            "points": 0.5,
            "is_correct": False,
            "answered_at": answered_at,
            "seconds": 12.25,
        }
        assert record.run(**values) == 1
        stored = db.session.scalar(sa.select(Response))
        assert (stored.chosen, stored.points, stored.is_correct) == ([3, 1], 0.5, False)
        assert (stored.answered_at, stored.seconds) == (answered_at, 12.25)
        with pytest.raises(sa.exc.IntegrityError):
            record.run(**values)
        db.session.rollback()


def test_a_hot_write_refuses_to_compute_defaults(app, player):
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS[:-2])
    with (
        app.test_request_context("/", method="POST"),
        pytest.raises(ValueError, match="answered_at"),
    ):
        record.run(attempt_id=1)


def test_a_hot_write_refuses_to_run_on_a_page_that_only_reads(app, player):
    finish = HotWrite(
        sa.update(Attempt.__table__).where(Attempt.id == sa.bindparam("attempt")),
        columns=("score",),
    )
    with app.test_request_context("/"):
        g.read_only_page = True
        with pytest.raises(RuntimeError, match="tried to change the database"):
            finish.run(attempt=1, score=1.0)


def test_after_a_failed_flush_core_statements_wait_for_the_rollback(app, player):
    """A failed flush ends the transaction: nothing runs on its connection until
    the session is rolled back, as with the ORM."""
    with app.app_context():
        db.session.add(User(display_name="Twin", email="reader@example.org"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.flush()
        with pytest.raises(sa.exc.PendingRollbackError):
            session_connection()
        db.session.rollback()
        assert session_connection() is db.session.connection()


def _response_values(attempt, position: int = 1) -> dict:
    """An answer to the question at ``position`` (1 to 3) of the attempt's quiz."""
    question = attempt.quiz.questions[position - 1]
    return {
        "attempt_id": attempt.id,
        "position": position,
        "question_id": question.id,
        "revision_id": question.current.id,
        "chosen": [1],
        "points": 1.0,
        "is_correct": True,
        "answered_at": datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC),
        "seconds": 3.5,
    }


def _stored_responses(engine) -> int:
    """Responses committed, as another connection sees them (one that takes no
    write lock, as a request's transaction on SQLite would)."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM response")
        return cursor.fetchone()[0]
    finally:
        connection.close()


def test_a_write_sent_with_the_commit_is_committed_with_it(app, player):
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        record.send(**_response_values(attempt))
        assert _stored_responses(db.engine) == 0
        db.session.commit()
        assert _stored_responses(db.engine) == 1
        # Nothing is left to send with the next transaction's commit.
        db.session.execute(sa.delete(Response))
        db.session.commit()
        assert _stored_responses(db.engine) == 0


def test_a_statement_after_a_sent_write_sees_it_and_a_rollback_drops_it(app, player):
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    count = HotRead(sa.select(sa.func.count()).select_from(Response))
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        record.send(**_response_values(attempt, 1))
        assert count.scalar() == 1  # a hot read sends it first
        record.send(**_response_values(attempt, 2))
        assert read_together((count, {}))[0][0][0] == 2  # reads together too
        record.send(**_response_values(attempt, 3))
        assert db.session.scalar(sa.select(sa.func.count(Response.id))) == 3  # ORM
        record.send(**_response_values(attempt, 3))
        db.session.rollback()
        db.session.commit()
        assert _stored_responses(db.engine) == 0


def test_orm_changes_and_a_sent_write_commit_together(app, player):
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        record.send(**_response_values(attempt))
        db.session.get(User, player).display_name = "Renamed"
        db.session.commit()
    with app.app_context():
        assert db.session.get(User, player).display_name == "Renamed"
        assert _stored_responses(db.engine) == 1


def test_a_commit_made_past_the_orm_session_sends_the_write_too(app, player):
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.app_context():
        attempt, _question = open_attempt_item(player)
        values = _response_values(attempt)
        db.session.rollback()
        with db.engine.connect() as connection:
            connection.begin()
            connection.info[SENT_WITH_COMMIT] = [(record, values)]
            connection.commit()
        assert _stored_responses(db.engine) == 1


def test_a_failed_sent_write_fails_the_commit_and_keeps_nothing(app, player):
    """The write's own error, from the commit; the transaction's other changes are
    not committed, and the session works again once rolled back."""
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        values = _response_values(attempt)
        record.run(**values)
        db.session.get(User, player).display_name = "Never"
        record.send(**values)  # the same question again: a duplicate
        with pytest.raises(sa.exc.IntegrityError) as raised:
            db.session.commit()
        assert "response" in str(raised.value).lower()
        db.session.rollback()
        assert db.session.get(User, player).display_name == "Reader"
        assert _stored_responses(db.engine) == 0
        record.send(**values)
        db.session.commit()
        assert _stored_responses(db.engine) == 1


@requires_postgres
def test_on_postgresql_a_sent_write_goes_with_the_commit(app, player, monkeypatch):
    """One pipeline holds the write and the COMMIT; the driver's own commit that
    follows finds the transaction ended and sends nothing."""
    import psycopg

    entered, committed = [], []
    pipeline, commit = psycopg.Connection.pipeline, psycopg.Connection.commit
    # Only this thread's: the change feed's heartbeat commits from a thread of its own.
    here = threading.get_ident()

    def counted(connection):
        if threading.get_ident() == here:
            entered.append(connection.pgconn.transaction_status)
        return pipeline(connection)

    def commit_counted(connection):
        if threading.get_ident() == here:
            committed.append(connection.pgconn.transaction_status)
        return commit(connection)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    monkeypatch.setattr(psycopg.Connection, "commit", commit_counted)
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        record.send(**_response_values(attempt))
        db.session.commit()
        stored = _stored_responses(db.engine)
    idle, in_transaction = (
        psycopg.pq.TransactionStatus.IDLE,
        psycopg.pq.TransactionStatus.INTRANS,
    )
    assert entered == [in_transaction]
    assert committed == [idle]
    assert stored == 1


def test_a_write_sent_inside_a_savepoint_stays_inside_the_transaction(app, player):
    """Leaving a savepoint sends the write there; the transaction still decides."""
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        db.session.get(User, player).display_name = "Outer"
        db.session.flush()
        with db.session.begin_nested():
            record.send(**_response_values(attempt, 1))
        db.session.rollback()
        assert _stored_responses(db.engine) == 0
        assert db.session.get(User, player).display_name == "Reader"
        with db.session.begin_nested():
            record.send(**_response_values(attempt, 2))
        db.session.commit()
        assert _stored_responses(db.engine) == 1


def test_a_sent_write_that_fails_with_the_commit_keeps_nothing(app, player):
    """Nothing but the write and the COMMIT (one round trip on PostgreSQL): the
    write's error comes from the commit, the COMMIT is not run, and the session
    works again once rolled back."""
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        values = _response_values(attempt)
        record.run(**values)
        db.session.execute(
            sa.update(User).where(User.id == player).values(display_name="Never")
        )
        record.send(**values)  # the same question again: a duplicate
        with pytest.raises(sa.exc.IntegrityError, match="response"):
            db.session.commit()
        db.session.rollback()
        assert db.session.get(User, player).display_name == "Reader"
        assert _stored_responses(db.engine) == 0


def test_writes_never_outlive_their_connections_checkout(app):
    """Whatever ended the transaction (a failed COMMIT, say), a connection goes back
    to the pool without writes waiting on it."""
    with app.app_context():
        pooled = db.engine.raw_connection()
        info = pooled.info
        info[SENT_WITH_COMMIT] = [(None, {})]
        info[BEGIN_PENDING] = True
        pooled.close()
        assert SENT_WITH_COMMIT not in info
        assert BEGIN_PENDING not in info


@requires_postgres
def test_a_failed_send_leaves_no_transaction_open_on_the_pooled_connection(app, player):
    """Even when the session is only closed (no rollback), the connection goes
    back to the pool ready for the next request."""
    record = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        values = _response_values(attempt)
        record.run(**values)
        record.send(**values)
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.close()
    with app.test_request_context("/", method="POST"):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) >= 1
        db.session.rollback()
    assert _stored_responses_of(app) == 0


def _stored_responses_of(app) -> int:
    with app.app_context():
        return _stored_responses(db.engine)


# --- core_transaction: a write transaction without the ORM session ----------------------


@contextmanager
def _session_transactions():
    """Each transaction the ORM session begins inside the block."""
    begun = []

    def note(_session, transaction):
        begun.append(transaction)

    sa.event.listen(db.session, "after_transaction_create", note)
    try:
        yield begun
    finally:
        sa.event.remove(db.session, "after_transaction_create", note)


RECORD = HotWrite(sa.insert(Response.__table__), columns=RESPONSE_COLUMNS)


@pytest.fixture
def answers(app, player):
    """Inside a form's request: answers to the player's open attempt (questions 1
    and 2), with the ORM session's transaction begun (``begun``) or not."""
    with app.test_request_context("/", method="POST"):
        attempt, _question = open_attempt_item(player)
        first, second = _response_values(attempt), _response_values(attempt, 2)
        db.session.rollback()  # the ORM's reads above are over
        yield SimpleNamespace(
            first=first, second=second, begun=lambda: open_attempt_item(player)
        )


def test_a_core_transaction_runs_hot_and_core_statements_and_commits(answers):
    count = HotRead(sa.select(sa.func.count()).select_from(Response))
    with core_transaction() as connection:
        assert session_connection() is connection
        assert transaction_connection() is connection
        assert not db.session().in_transaction()
        RECORD.run(**answers.first)
        assert count.scalar() == 1
        assert read_together((count, {}))[0][0][0] == 1
        assert execute_core(sa.select(sa.func.count(Response.id))).scalar() == 1
        RECORD.send(**answers.second)
        assert _stored_responses(db.engine) == 0  # not committed yet
    assert _stored_responses(db.engine) == 2
    assert transaction_connection() is None
    assert not db.session().in_transaction()


def test_a_core_transaction_that_raises_keeps_nothing(answers):
    with pytest.raises(LookupError), core_transaction():
        RECORD.run(**answers.first)
        RECORD.send(**answers.second)
        raise LookupError("no such question")
    assert _stored_responses(db.engine) == 0
    with core_transaction():  # the lock is free, and nothing is left to send
        pass
    assert _stored_responses(db.engine) == 0


def test_reads_apart_on_a_form_give_back_their_connection_and_join_a_core_one(
    answers,
):
    count = HotRead(sa.select(sa.func.count()).select_from(Response))
    with apart():
        assert count.scalar() == 0
        assert CONNECTION in g  # autocommit, the connection for such reads
    assert CONNECTION not in g  # back in the pool: the form's transaction takes one
    assert not db.session().in_transaction()
    with core_transaction():
        RECORD.run(**answers.first)
        with apart():  # inside the transaction: its reads see its writes
            assert count.scalar() == 1
        assert CONNECTION not in g


def test_no_garbage_collection_runs_inside_a_core_transaction(answers):
    assert gc.isenabled()
    with core_transaction():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(LookupError), core_transaction():
        raise LookupError("no such question")
    assert gc.isenabled()
    gc.disable()  # turned off by someone else: left off
    try:
        with core_transaction():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def _in_transaction(connection: sa.Connection) -> bool:
    """Whether the server holds a transaction open on ``connection``."""
    raw = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite":
        return raw.in_transaction
    import psycopg

    return raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS


FIRST_STATEMENTS = ["core", "driver sql", "savepoint", "hot write", "hot read"]


@pytest.mark.parametrize("first", FIRST_STATEMENTS)
def test_a_core_transactions_first_statement_of_any_kind_runs_inside_it(answers, first):
    """Whatever runs first (on PostgreSQL the BEGIN waits for it), it runs inside
    the transaction, and a rollback takes back what it wrote."""
    count = HotRead(sa.select(sa.func.count()).select_from(Response))
    with pytest.raises(LookupError), core_transaction() as connection:
        if first == "core":
            execute_core(sa.insert(Response.__table__), answers.first)
        elif first == "driver sql":
            connection.exec_driver_sql("SELECT 1")
        elif first == "savepoint":
            with connection.begin_nested():
                RECORD.run(**answers.first)
        elif first == "hot write":
            RECORD.run(**answers.first)
        else:
            assert count.scalar() == 0
        assert _in_transaction(connection)
        if first in ("driver sql", "hot read"):
            RECORD.run(**answers.first)
        assert count.scalar() == 1
        raise LookupError("no such question")
    assert _stored_responses(db.engine) == 0


@contextmanager
def _client_messages(connection: sa.Connection):
    """What the client sends on ``connection`` inside the block, as libpq's trace
    of the protocol shows it: a list of message names ("Sync" ends a round trip)."""
    pgconn = connection.connection.dbapi_connection.pgconn
    import psycopg

    sent: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(
            psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE
        )
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.seek(0)
            sent += [
                line.split("\t")[2].split(" ")[0]
                for line in trace.read().splitlines()
                if line.startswith("F\t")
            ]


def _locked_elsewhere(url, attempt_id: int) -> bool:
    """Whether another session finds the attempt's row locked."""
    other = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with other.connect() as connection:
            connection.execute(
                sa.select(Attempt.id)
                .where(Attempt.id == attempt_id)
                .with_for_update(nowait=True)
            )
        return False
    except sa.exc.OperationalError as error:
        assert "lock" in str(error).lower()
        return True
    finally:
        other.dispose()


@requires_postgres
def test_on_postgresql_a_core_transaction_begins_with_its_first_reads(answers):
    """The BEGIN waits for the transaction's first statement: with an answer's lock
    and sheet it takes one round trip, and the answer with the COMMIT a second. The
    lock is held from the first to the COMMIT."""
    import psycopg

    status = psycopg.pq.TransactionStatus
    lock = HotRead(
        sa.select(Attempt.id)
        .where(Attempt.id == sa.bindparam("id"))
        .with_for_update(of=Attempt)
    )
    attempt_id = answers.first["attempt_id"]
    count = HotRead(sa.select(sa.func.count()).select_from(Response))
    with ExitStack() as tracing, core_transaction() as connection:
        sent = tracing.enter_context(_client_messages(connection))  # to the COMMIT
        pgconn = connection.connection.dbapi_connection.pgconn
        assert pgconn.transaction_status == status.IDLE  # nothing sent yet
        locked, responses = read_together((lock, {"id": attempt_id}), (count, {}))
        assert pgconn.transaction_status == status.INTRANS
        assert _locked_elsewhere(db.engine.url, attempt_id)
        RECORD.send(**answers.first)
    assert (locked, responses) == ([(attempt_id,)], [(0,)])
    assert sent.count("Sync") == 2
    assert sent.count("Execute") == 5  # BEGIN, two reads; INSERT, COMMIT
    assert not _locked_elsewhere(db.engine.url, attempt_id)
    assert _stored_responses(db.engine) == 1


@requires_postgres
def test_on_postgresql_a_core_transaction_that_runs_nothing_sends_nothing(answers):
    """And the pool takes its connection back out of autocommit: an ORM session's
    transaction on it is still one."""
    with ExitStack() as tracing, core_transaction() as connection:
        sent = tracing.enter_context(_client_messages(connection))  # to its end
        raw = connection.connection.dbapi_connection
    assert sent == []
    assert raw.autocommit is False
    assert db.session.connection().connection.dbapi_connection is raw  # the latest
    db.session.add(Response(**answers.first))
    db.session.flush()
    db.session.rollback()
    assert _stored_responses(db.engine) == 0


@requires_postgres
def test_on_postgresql_a_begin_sent_alone_that_fails_is_the_databases_error(answers):
    """The connection lost before the transaction's first statement: its BEGIN
    fails as SQLAlchemy reports a lost connection, the pool starts afresh, and the
    next transaction runs."""
    with pytest.raises(sa.exc.DBAPIError) as raised, core_transaction() as connection:
        pid = connection.connection.dbapi_connection.info.backend_pid
        other = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
        with other.begin() as killer:
            killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.dispose()
        execute_core(sa.select(sa.literal(1)))
    assert raised.value.connection_invalidated
    assert "BEGIN" in str(raised.value)
    with core_transaction():
        RECORD.send(**answers.first)
    assert _stored_responses(db.engine) == 1


@requires_postgres
def test_on_postgresql_a_failed_write_sent_with_the_begin_and_commit_keeps_nothing(
    answers,
):
    """The transaction's only statement fails in the pipeline that holds the BEGIN
    and the COMMIT: nothing is kept, and the connection goes back usable."""
    with core_transaction():
        RECORD.send(**answers.first)
    with pytest.raises(sa.exc.IntegrityError, match="response"), core_transaction():
        RECORD.send(**answers.first)  # the same question again: a duplicate
    assert _stored_responses(db.engine) == 1
    with core_transaction() as connection:
        assert connection.connection.dbapi_connection.autocommit is True
        RECORD.send(**answers.second)
    assert _stored_responses(db.engine) == 2


@requires_postgres
def test_on_postgresql_failed_reads_sent_with_the_begin_leave_the_connection_usable(
    answers,
):
    """A lock that cannot be had (NOWAIT) fails the pipeline holding the BEGIN: the
    error is the database's, the transaction is rolled back, and the connection
    serves the next one."""
    attempt_id = answers.first["attempt_id"]
    nowait = HotRead(
        sa.select(Attempt.id)
        .where(Attempt.id == sa.bindparam("id"))
        .with_for_update(nowait=True)
    )
    other = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    try:
        with other.connect() as holder:
            holder.execute(
                sa.select(Attempt.id).where(Attempt.id == attempt_id).with_for_update()
            )
            refused = pytest.raises(sa.exc.OperationalError, match="lock")
            with refused, core_transaction() as connection:
                raw = connection.connection.dbapi_connection
                read_together((nowait, {"id": attempt_id}))
            holder.rollback()
    finally:
        other.dispose()
    assert raw.autocommit is False
    with core_transaction() as connection:
        assert connection.connection.dbapi_connection is raw
        assert read_together((nowait, {"id": attempt_id})) == [[(attempt_id,)]]
        RECORD.send(**answers.first)
    assert _stored_responses(db.engine) == 1


def test_a_failed_commit_of_a_core_transaction_keeps_nothing(answers):
    duplicate = pytest.raises(sa.exc.IntegrityError, match="response")
    with duplicate, core_transaction():
        RECORD.run(**answers.first)
        RECORD.send(**answers.first)  # the same question again: a duplicate
    assert _stored_responses(db.engine) == 0
    with core_transaction():  # the connection went back to the pool usable
        RECORD.send(**answers.first)
    assert _stored_responses(db.engine) == 1


def test_the_orm_session_may_not_begin_inside_a_core_transaction(answers, player):
    with pytest.raises(SessionInCoreTransaction), core_transaction():
        RECORD.run(**answers.first)
        db.session.get(User, player)  # would wait for the write lock on SQLite
    assert _stored_responses(db.engine) == 0
    assert db.session.get(User, player).display_name == "Reader"  # works after


def test_a_core_transaction_carries_on_in_a_session_transaction_begun_before(
    app, answers, player
):
    answers.begun()
    db.session.get(User, player).display_name = "Renamed"
    with core_transaction() as connection:
        assert connection is db.session.connection()
        RECORD.send(**answers.first)
    assert not db.session().in_transaction()  # committed
    assert _stored_responses(db.engine) == 1
    db.session.rollback()
    assert db.session.get(User, player).display_name == "Renamed"


def test_a_session_transaction_carried_on_is_rolled_back_if_the_block_raises(
    answers,
):
    answers.begun()
    with pytest.raises(LookupError), core_transaction():
        RECORD.run(**answers.first)
        raise LookupError("no such question")
    assert not db.session().in_transaction()
    assert _stored_responses(db.engine) == 0


def test_a_core_transaction_counts_the_watched_tables_it_changed(
    app, player, monkeypatch
):
    """A row kept from a table it changed is read again inside it (and what it
    reads there is not kept); after it, this process reads it again at once."""
    rename = HotWrite(
        sa.update(User.__table__).where(User.id == sa.bindparam("user")),
        columns=("display_name",),
    )
    name = HotRead(sa.select(User.display_name).where(User.id == sa.bindparam("id")))
    key = ("test", player)

    def kept_name() -> str:
        return changes.kept(key, ("user",), lambda: name.first(id=player)).display_name

    def on_a_page() -> str:
        with app.test_request_context("/", method="GET"):
            g.read_only_page = True
            return kept_name()

    _until_kept(app.extensions[changes.EXTENSION])
    assert on_a_page() == "Reader"  # now kept
    post = app.test_request_context("/", method="POST")
    with post, pytest.raises(LookupError), core_transaction():
        rename.run(user=player, display_name="Rolled back")
        assert kept_name() == "Rolled back"  # read again, inside
        raise LookupError("no such question")
    assert on_a_page() == "Reader"
    counted = []
    monkeypatch.setattr(changes, "committed", lambda: counted.append(True))
    with app.test_request_context("/", method="POST"):
        with core_transaction():
            rename.run(user=player, display_name="Renamed")
            assert kept_name() == "Renamed"
            assert counted == []
        assert counted == [True]  # counted again once committed
    assert on_a_page() == "Renamed"


def test_a_core_transaction_inside_another_runs_in_it(answers):
    with core_transaction() as outer:
        RECORD.run(**answers.first)
        with core_transaction() as inner:
            assert inner is outer
            RECORD.send(**answers.second)
        assert _stored_responses(db.engine) == 0  # the outer block commits
    assert _stored_responses(db.engine) == 2


def test_no_other_connection_begins_inside_a_core_transaction(answers, player):
    """Not the ORM session, even once its refusal was caught, nor another of the
    engine's connections: raised at once, where SQLite would wait for the lock."""
    with core_transaction():
        RECORD.run(**answers.first)
        with pytest.raises(SessionInCoreTransaction):
            db.session.get(User, player)
        with pytest.raises(SessionInCoreTransaction):
            db.session.get(User, player)  # the session thinks it has begun
        with pytest.raises(SessionInCoreTransaction), db.engine.connect() as other:
            other.execute(sa.select(1))
    assert _stored_responses(db.engine) == 1


def test_a_core_transaction_takes_the_write_lock_outside_requests_too(app, player):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's write lock")
        other = sqlite3.connect(db.engine.url.database, isolation_level=None)
        other.execute("PRAGMA busy_timeout = 0")
        try:
            locked = pytest.raises(sqlite3.OperationalError, match="locked")
            with core_transaction(), locked:
                other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # free once it ended
            other.execute("ROLLBACK")
        finally:
            other.close()


def _until_kept(feed, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while feed.stamp(["user"]) is None:
        assert time.monotonic() < deadline, "nothing is kept"
        time.sleep(0.02)


@pytest.mark.parametrize("player_kept", [True, False])
def test_answering_runs_without_the_orm_session(app, player_kept):
    """Whether the player's row is kept (answers in quick succession) or read
    afresh (a player who took their time), the ORM session never begins a
    transaction and the answer is committed."""
    with app.app_context():
        make_quiz("alpha")
    client = app.test_client()
    client.post("/guest", data={"display_name": "Gus"})
    started = client.post("/quizzes/alpha/start")
    attempt_id = int(started.headers["Location"].rsplit("/", 1)[-1])
    with app.app_context():
        orders = db.session.execute(
            sa.select(AttemptItem.position, AttemptItem.choice_order)
            .where(AttemptItem.attempt_id == attempt_id)
            .order_by(AttemptItem.position)
        ).all()
    _until_kept(app.extensions[changes.EXTENSION])
    first = client.post(
        f"/attempts/{attempt_id}/questions/1", data={"choice": orders[0][1][0]}
    )
    assert first.status_code == 302
    if not player_kept:
        app.extensions[changes.ROWS].clear()
    with _session_transactions() as begun:
        second = client.post(
            f"/attempts/{attempt_id}/questions/2", data={"choice": orders[1][1][0]}
        )
    assert second.status_code == 302
    assert begun == []
    with app.app_context():
        stored = db.session.scalars(
            sa.select(Response.position).where(Response.attempt_id == attempt_id)
        ).all()
    assert sorted(stored) == [1, 2]
