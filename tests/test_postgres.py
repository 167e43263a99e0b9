"""PostgreSQL-only checks (skipped on SQLite with the reason shown by ``pytest -ra``)."""

import time

import pytest
import sqlalchemy as sa

from quiz import leaderboard, pool
from quiz.extensions import db
from tests.conftest import requires_postgres
from tests.factories import make_player, make_quiz

pytestmark = requires_postgres


def test_top_of_a_board_and_a_rank_are_index_lookups(ctx):
    quiz = make_quiz()
    player = make_player()
    source = leaderboard._quiz_source(quiz.id, "all")
    top = (
        sa.select(source)
        .order_by(*leaderboard._order(source))
        .limit(20)
        .compile(db.engine, compile_kwargs={"literal_binds": True})
    )
    with db.engine.connect() as conn:
        # Penalise every other plan: a Sort node remains only if the index cannot
        # deliver the board's order by itself.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(sa.text(f"SET {setting} = off"))
        plan = "\n".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN {top}")))
    assert "ix_best_score_rank" in plan
    assert "Sort" not in plan  # the index already gives the board's order
    assert leaderboard.quiz_board(quiz.id, me_id=player.id).me is None


def test_database_is_postgresql(ctx):
    assert db.engine.dialect.name == "postgresql"
    assert (
        db.session.scalar(sa.text("SELECT current_setting('server_version_num')::int"))
        > 0
    )


def test_times_read_back_in_utc_whatever_the_session_time_zone(app):
    from datetime import UTC, datetime

    from quiz.models import Attempt

    with app.app_context():
        quiz, player = make_quiz(), make_player()
        noon = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        db.session.add(
            Attempt(user_id=player.id, quiz_id=quiz.id, pass_mark=50, started_at=noon)
        )
        db.session.commit()
        db.session.execute(sa.text("SET TIME ZONE 'America/New_York'"))
        started = db.session.scalar(sa.select(Attempt.started_at))
        assert started == noon and started.tzinfo == UTC
        assert started.strftime("%H:%M") == "12:00"


def _end_the_apps_connections() -> int:
    """Terminate the app's server connections, as a database restart would."""
    with db.engine.connect() as conn:
        database = conn.scalar(sa.text("SELECT current_database()"))
    other = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with other.begin() as conn:
        ended = conn.scalar(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        )
    other.dispose()
    return ended


def test_without_pre_ping_a_database_restart_fails_one_request(
    app_config, reading_every_view, request
):
    """With QUIZ_DATABASE_PRE_PING off a dead pooled connection fails one request
    with the error page; the pool is then replaced and the next request works."""
    app_config["DATABASE_PRE_PING"] = "off"
    app = request.getfixturevalue("app")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    assert client.get("/").status_code == 200  # a pooled connection now exists
    with app.app_context():
        assert _end_the_apps_connections() >= 1
    failed = client.get("/")
    assert failed.status_code == 500
    assert b"Traceback" not in failed.data
    assert client.get("/").status_code == 200


class Clock:
    """The pool's clock, moved by hand: the tests wait for nothing."""

    def __init__(self) -> None:
        self.now = time.monotonic()  # after every rest the app's set-up began

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(pool, "time", clock)
    return clock


@pytest.fixture
def reading_every_view(app_config) -> None:
    """Pages read the database on every view (no rows kept between requests), so
    each view uses a pooled connection. Ask for it before ``app``."""
    app_config["CHANGE_FEED"] = False


@pytest.fixture
def pings(app, monkeypatch) -> list:
    """Every connection check the pool makes."""
    with app.app_context():
        dialect = db.engine.dialect
    made = []
    ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda conn: made.append(1) or ping(conn))
    return made


def test_a_rested_connection_is_checked_so_a_restart_fails_no_request(
    reading_every_view, app, clock, pings
):
    """A connection that rested in the pool longer than QUIZ_DATABASE_PING_AFTER (1 s)
    is checked before use, and a dead one replaced unnoticed."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    assert client.get("/").status_code == 200
    with app.app_context():
        assert _end_the_apps_connections() >= 1
    clock.now += 1.5
    assert client.get("/").status_code == 200
    assert pings


def test_a_connection_in_steady_use_is_not_checked(
    reading_every_view, app, clock, pings
):
    """Under load no request pays the check's round trip; after a rest one does."""
    client = app.test_client()
    assert client.get("/").status_code == 200
    pings.clear()
    for _ in range(5):
        clock.now += 0.5
        assert client.get("/").status_code == 200
    assert pings == []
    clock.now += 1.5
    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 200
    assert pings == [1]


def test_with_ping_after_zero_every_use_is_checked(
    app_config, reading_every_view, request, clock
):
    app_config["DATABASE_PING_AFTER"] = 0
    app = request.getfixturevalue("app")
    pings = request.getfixturevalue("pings")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    assert client.get("/").status_code == 200
    pings.clear()
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert pings == [1, 1, 1]
    with app.app_context():
        assert _end_the_apps_connections() >= 1
    assert client.get("/").status_code == 200


def _autocommit() -> bool:
    """Whether the ORM session's connection, taken at its first query, autocommits."""
    db.session.execute(sa.select(1))
    return db.session.connection().connection.driver_connection.autocommit


def test_play_pages_read_without_a_transaction_and_forms_write_in_one(app):
    """Play GET pages only read: their queries run in autocommit, sparing the BEGIN
    and ROLLBACK round trips; anything else keeps its transaction."""
    with app.test_request_context("/"):
        app.preprocess_request()
        assert _autocommit()
    with app.test_request_context("/guest", method="POST"):
        app.preprocess_request()
        assert not _autocommit()
    with app.test_request_context("/admin/"):
        app.preprocess_request()
        assert not _autocommit()
