"""Rows kept between requests (``quiz.changes``): kept while PostgreSQL says nothing
changed, dropped when it does, and never kept while nobody listens."""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from types import SimpleNamespace

import psycopg
import pytest
import sqlalchemy as sa

from quiz import changes, reads, security
from quiz.changes import EVERYTHING, ChangeFeed
from quiz.extensions import db
from quiz.models import BestScore, Quiz, Response, User
from quiz.sqlite import write_intent
from tests.conftest import POSTGRES_URL, requires_postgres
from tests.factories import make_account, make_quiz
from tests.test_play import answer_first_and_finish, choice_ids, start

WAIT = 10.0  # seconds to wait for the listener, which runs on its own


def _until(condition, what: str):
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {WAIT} s for {what}")
        time.sleep(0.01)


# --- the feed, against a stand-in connection ------------------------------------------


class StandInConnection:
    """Plays PostgreSQL's side of LISTEN: hands out the notifications put in its
    queue; a ``ConnectionError`` in the queue fails it as a lost connection does."""

    def __init__(self, notes: queue.Queue):
        self.notes = notes
        self.statements = []
        self.info = SimpleNamespace(backend_pid=4242)

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        return False

    def execute(self, sql):
        self.statements.append(sql)

    def notifies(self, timeout):
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                note = self.notes.get(timeout=left)
            except queue.Empty:
                return
            if note is ConnectionError:
                raise ConnectionError("connection lost")
            yield SimpleNamespace(channel=note[0], payload=note[1], pid=note[2])


@pytest.fixture
def stand_in():
    """A feed on stand-in connections. Its heartbeats come back (from another
    session, pid 99) unless ``deaf`` is set."""
    made = SimpleNamespace(notes=queue.Queue(), connections=[], deaf=False)

    def connect():
        connection = StandInConnection(made.notes)
        made.connections.append(connection)
        return connection

    def notify(channel, payload):
        if not made.deaf:
            made.notes.put((channel, payload, 99))

    feed = ChangeFeed(connect, notify, check_every=0.5)
    made.feed = feed
    yield made
    feed.stop()


def _listening(feed):
    feed.stamp([])
    _until(lambda: feed.listening, "the listener")


def test_nothing_is_kept_until_the_feed_listens(stand_in):
    feed = stand_in.feed
    assert feed.stamp(["quiz"]) is None  # and the listener starts
    _listening(feed)
    assert stand_in.connections[0].statements == [
        "LISTEN quiz_changes",
        "LISTEN quiz_changes_alive_4242",
    ]
    assert feed.stamp(["quiz"]) == feed.stamp(["quiz"])


def test_a_notification_moves_the_stamps_of_its_table_only(stand_in):
    feed = stand_in.feed
    _listening(feed)
    quiz, user = feed.stamp(["quiz"]), feed.stamp(["user"])
    stand_in.notes.put(("quiz_changes", "quiz", 99))
    _until(lambda: feed.stamp(["quiz"]) not in (quiz, None), "the notification")
    assert feed.stamp(["user"]) == user
    assert feed.stamp(["user", "quiz"]) != (*user, quiz[1])


def test_a_lost_connection_stops_keeping_and_a_new_one_starts_afresh(stand_in):
    feed = stand_in.feed
    _listening(feed)
    before = feed.stamp(["quiz"])
    stand_in.notes.put(ConnectionError)
    _until(lambda: len(stand_in.connections) == 2, "a new connection")
    _listening(feed)
    # Changes made while nobody listened were not heard: nothing kept survives.
    assert feed.stamp(["quiz"]) not in (before, None)


def test_a_listener_that_hears_nothing_back_keeps_nothing(stand_in):
    """A connection cut without a word, or a pooler that takes LISTEN and delivers
    nothing: the heartbeats sent from another session stop coming back. Nor does
    a notification the listener's own session sent count as heard."""
    feed = stand_in.feed
    _listening(feed)
    stand_in.deaf = True
    stand_in.notes.put(("quiz_changes_alive_4242", repr(time.monotonic() + 60), 4242))
    _until(lambda: feed.stamp(["quiz"]) is None, "the silence to be noticed")
    stand_in.deaf = False
    _until(lambda: feed.stamp(["quiz"]) is not None, "the listener to hear again")


def test_own_changes_count_at_once_and_everything_starts_a_new_epoch(stand_in):
    feed = stand_in.feed
    _listening(feed)
    quiz, user = feed.stamp(["quiz"]), feed.stamp(["user"])
    feed.changed(["quiz"])
    assert feed.stamp(["quiz"]) not in (quiz, None)
    assert feed.stamp(["user"]) == user
    feed.changed([EVERYTHING])
    assert feed.stamp(["user"]) not in (user, None)


def test_a_forked_worker_listens_on_a_connection_of_its_own(stand_in, monkeypatch):
    feed = stand_in.feed
    monkeypatch.setitem(changes._FEEDS, "stand-in", feed)
    _listening(feed)
    before = feed.stamp(["quiz"])
    child = os.fork()
    if child == 0:  # the worker: nothing of the parent's listener may serve it
        status = 1
        try:
            stand_in.notes = queue.Queue()  # the parent's is not the child's
            stand_in.connections.clear()
            if feed.stamp(["quiz"]) is None:
                _listening(feed)
                if stand_in.connections and feed.stamp(["quiz"]) != before:
                    status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert feed.stamp(["quiz"]) == before  # the parent listens on, unchanged


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        (sa.update(User).values(display_name="x"), "user"),
        (sa.insert(Quiz.__table__), "quiz"),
        (sa.delete(BestScore.__table__), "best_score"),
        (sa.insert(Response.__table__), None),  # answers: no kept row shows them
        (sa.select(User.id), None),
        (sa.text("SELECT 1"), None),
        ("  select 1", None),
        (sa.union_all(sa.select(User.id), sa.select(Quiz.id)), None),
        (sa.sql.elements.SavepointClause("sa_1"), None),
        (sa.sql.elements.ReleaseSavepointClause("sa_1"), None),
        (sa.text("SELECT id FROM quiz").columns(sa.column("id")), None),
        (sa.text("UPDATE \"user\" SET role = 'admin'"), EVERYTHING),
        ("TRUNCATE quiz CASCADE", EVERYTHING),
        (sa.DDL("DROP TABLE quiz"), EVERYTHING),
    ],
)
def test_the_tables_a_statement_writes(statement, table):
    assert changes._written_table(statement) == table


# --- on either database ----------------------------------------------------------------


def test_the_feed_can_be_switched_off(app_config, request, monkeypatch):
    app_config["CHANGE_FEED"] = "off"
    app = request.getfixturevalue("app")
    assert app.extensions[changes.EXTENSION] is None
    with app.app_context():
        make_quiz("alpha")
    client = app.test_client()
    hot = _count_hot_statements(monkeypatch)
    for _ in range(3):
        assert client.get("/quizzes/alpha/leaderboard").status_code == 200
    assert len(hot) == 3


def test_sqlite_in_memory_keeps_nothing(app_config, request):
    if POSTGRES_URL:
        pytest.skip("SQLite test")
    app_config["DATABASE_URL"] = "sqlite://"
    app = request.getfixturevalue("app")
    assert app.extensions[changes.EXTENSION] is None


def _count_hot_statements(monkeypatch) -> list:
    """Every statement hot reads and writes send one by one (reads sent together,
    ``read_together`` on PostgreSQL, are not counted: only forms use them)."""
    sent = []
    execute = reads._HotStatement._execute

    def counted(self, connection, params, fetch):
        sent.append(self.statement)
        return execute(self, connection, params, fetch)

    monkeypatch.setattr(reads._HotStatement, "_execute", counted)
    return sent


@pytest.fixture
def listening(app):
    """The app's feed, once it may keep rows."""
    feed = app.extensions[changes.EXTENSION]
    _until(lambda: feed.stamp([]) is not None, "the listener")
    return feed


def _settled(feed) -> None:
    """Wait until the notifications of what was committed so far are in."""
    if isinstance(feed, ChangeFeed):
        moment = time.monotonic()
        _until(lambda: feed.heard_since(moment), "the notifications so far")


class OtherServer:
    """A connection of another app server (or of psql, or sqlite3): its commits
    reach this process only as PostgreSQL's notifications or SQLite's data
    version."""

    def __init__(self, app):
        if POSTGRES_URL:
            self.connection = psycopg.connect(_libpq_url(), autocommit=True)
        else:
            url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
            self.connection = sqlite3.connect(url.database, isolation_level=None)

    def execute(self, sql: str, params=()):
        if not POSTGRES_URL:
            sql = sql.replace("%s", "?")
        self.connection.execute(sql, params)

    def close(self):
        self.connection.close()


@pytest.fixture
def other_server(app):
    server = OtherServer(app)
    yield server
    server.close()


@pytest.fixture
def player(app, client, auth):
    with app.app_context():
        make_quiz("alpha")
        user_id = make_account("pat@example.org", name="Pat").id
    auth.login("pat@example.org")
    return user_id


def test_warm_pages_ask_the_database_nothing(
    app, client, player, listening, monkeypatch
):
    pages = ["/", "/quizzes/alpha/leaderboard"]
    for page in pages:
        assert client.get(page).status_code == 200
    # Once the set-up's own notifications are in, the pages are kept as they stand.
    _settled(listening)
    for page in pages:
        assert client.get(page).status_code == 200
    hot = _count_hot_statements(monkeypatch)
    sql = []
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", lambda *a: sql.append(a))
    for page in pages * 3:
        assert client.get(page).status_code == 200
    assert hot == []
    if POSTGRES_URL:
        assert sql == []
    else:  # only SQLite's change counts, on a connection of its own
        assert not any(statement[2] != "PRAGMA data_version" for statement in sql)


@pytest.mark.parametrize(
    ("column", "value", "before", "after"),
    [
        ("display_name", "Patricia", b">Pat</a>", b">Patricia</a>"),
        # Signed out everywhere (or password changed) on the other server.
        ("session_token", "elsewhere", b"Sign out", b"Sign in"),
    ],
)
def test_another_servers_change_shows_once_it_commits(
    app, client, player, listening, other_server, column, value, before, after
):
    assert before in client.get("/").data
    stamp = listening.stamp(["user"])
    other_server.execute(
        f'UPDATE "user" SET {column} = %s WHERE id = %s', [value, player]
    )
    _until(lambda: listening.stamp(["user"]) != stamp, "the change to be heard")
    page = client.get("/").data
    assert after in page and before not in page


def test_this_servers_own_change_shows_on_the_next_request(
    app, client, player, listening, monkeypatch
):
    """No waiting for the notification: the commit counts its tables itself (on
    SQLite the data version moves with it)."""
    assert b"Pat" in client.get("/").data
    # The notification never arrives here: only the commit's own count can help.
    monkeypatch.setattr(listening, "changed", _counting_own_commits_only(listening))
    with app.app_context():
        db.session.get(User, player).display_name = "Patricia"
        db.session.commit()
    assert b"Patricia" in client.get("/").data
    with app.app_context():
        db.session.get(User, player).is_disabled = True
        db.session.commit()
    assert b"Sign out" not in client.get("/").data


def _counting_own_commits_only(feed):
    changed = feed.changed

    def own_only(tables):
        if threading.current_thread().name != "quiz-change-feed":
            changed(tables)

    return own_only


def test_what_a_transaction_changed_is_not_kept_before_it_commits(
    app, player, listening
):
    reads_made = []

    def read():
        reads_made.append(True)
        return security._USER_ROW.first(id=player)

    def kept_player():
        return changes.kept(("player", player), ("user",), read)

    # A writer's transaction (SQLite: one that took the write lock first).
    with app.app_context(), write_intent():
        assert kept_player().display_name == "Pat"
        assert kept_player().display_name == "Pat" and len(reads_made) == 1
        db.session.get(User, player).display_name = "Never"
        db.session.flush()
        # Read afresh inside the transaction that changed the row, and not kept.
        assert kept_player().display_name == "Never" and len(reads_made) == 2
        db.session.rollback()
        assert kept_player().display_name == "Pat" and len(reads_made) == 2


def test_a_finished_attempt_shows_on_the_leaderboard_and_catalogue_at_once(
    app, client, player, listening
):
    assert b"No one has finished" in client.get("/quizzes/alpha/leaderboard").data
    assert b"Your best" not in client.get("/").data
    answer_first_and_finish(client, app, start(client))
    board = client.get("/quizzes/alpha/leaderboard").get_data(as_text=True)
    assert '<span class="tag">you</span>' in board
    html = client.get("/").get_data(as_text=True)
    assert "Your best" in html and "1 / 6" in html


@requires_postgres
def test_the_triggers_announce_each_table(app, other_server):
    with app.app_context():
        make_quiz("alpha")
    with psycopg.connect(_libpq_url(), autocommit=True) as listener:
        listener.execute("LISTEN quiz_changes")
        for table in changes.WATCHED:  # changes no row: still announced
            other_server.execute(f'DELETE FROM "{table}" WHERE false')
        other_server.execute("TRUNCATE content_version")
        heard = [
            note.payload
            for note in listener.notifies(
                timeout=WAIT, stop_after=len(changes.WATCHED) + 1
            )
        ]
    assert heard == [*changes.WATCHED, "content_version"]


def _libpq_url() -> str:
    return POSTGRES_URL.replace("+psycopg", "")


@requires_postgres
def test_create_all_again_keeps_the_triggers(app):
    with app.app_context():
        db.create_all()  # the tables exist: nothing is made, nothing fails
        with db.engine.connect() as conn:
            count = conn.scalar(
                sa.text("SELECT count(*) FROM pg_trigger WHERE tgname = :name"),
                {"name": "quiz_notify_change"},
            )
    assert count == len(changes.WATCHED)


@requires_postgres
def test_the_listener_connects_with_the_urls_and_the_engines_settings(app):
    """Settings in the URL and the engine's ``connect_args`` (TLS, say) win over the
    listener's own defaults, as they do for the pool."""
    url = sa.make_url(POSTGRES_URL).update_query_dict(
        {"application_name": "quiz listener test", "connect_timeout": "3"}
    )
    engine = sa.create_engine(url)
    feed = changes.feed_for(engine, {"options": "-c statement_timeout=4321"})
    try:
        _until(lambda: feed.stamp([]) is not None, "the listener")
        with engine.connect() as conn:
            names = conn.scalars(
                sa.text("SELECT application_name FROM pg_stat_activity")
            ).all()
        assert "quiz listener test" in names
        with feed._connect() as listener:  # connects as the listener does
            timeout = listener.execute("SHOW statement_timeout").fetchone()[0]
        assert timeout == "4321ms"
    finally:
        feed.stop()
        engine.dispose()


def test_sqlite_counts_are_read_per_thread_and_move_with_their_table(app, other_server):
    """Each thread reads the counts on a connection of its own, and its stamps name
    it: stamps of two threads never match, so neither is served what the other
    kept. Another connection's commit moves the stamps of the tables it changed
    only."""
    if POSTGRES_URL:
        pytest.skip("SQLite test")
    feed = app.extensions[changes.EXTENSION]
    assert isinstance(feed, changes.TableCounts)
    here = feed.stamp(["user", "content_version"])
    assert here is not None and feed.stamp(["user", "content_version"]) == here
    elsewhere = []
    for _ in range(2):
        thread = threading.Thread(target=lambda: elsewhere.append(feed.stamp([])))
        thread.start()
        thread.join()
    assert None not in elsewhere and len({here[:1], *elsewhere}) == 3
    user = feed.stamp(["user"])
    other_server.execute("UPDATE content_version SET version = version + 1")
    moved = feed.stamp(["user", "content_version"])
    assert moved[:3] == here[:3] and moved[3] == here[3] + 1
    # A commit to a table nobody keeps rows of moves no stamp.
    other_server.execute("DELETE FROM response")
    assert feed.stamp(["user"]) == user


@pytest.mark.parametrize(
    "damage",
    [
        ["DROP TRIGGER quiz_count_user_update"],
        ["DELETE FROM table_change WHERE table_name = 'user'"],
        # A database not upgraded yet.
        [
            *(f"DROP TRIGGER {name}" for name in changes.COUNTERS),
            "DROP TABLE table_change",
        ],
    ],
    ids=["a trigger", "a count", "all"],
)
def test_sqlite_keeps_nothing_while_a_tables_changes_go_uncounted(
    app, other_server, damage, caplog
):
    """A database whose counters are missing (not upgraded yet, restored without
    them, or a table rebuilt by a migration) would hide changes: nothing is kept,
    nothing fails, and the log says why once."""
    if POSTGRES_URL:
        pytest.skip("SQLite test")
    feed = app.extensions[changes.EXTENSION]
    assert feed.stamp(["user"]) is not None
    for statement in damage:
        other_server.execute(statement)
    for _ in range(3):
        assert feed.stamp(["user"]) is None
        other_server.execute("UPDATE content_version SET version = version + 1")
    counted = damage[0].startswith("DELETE")  # the other tables still are
    assert (feed.stamp(["quiz"]) is not None) == counted
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    warned = [r for r in caplog.records if "counters missing" in r.getMessage()]
    assert len(warned) == (0 if counted else 1)


def test_sqlite_counts_made_afresh_never_match_earlier_stamps(app, other_server):
    """The table dropped and made again counts from 0 once more: the schema's
    version in the stamp keeps what was kept under the old counts from being
    served."""
    if POSTGRES_URL:
        pytest.skip("SQLite test")
    feed = app.extensions[changes.EXTENSION]
    before = feed.stamp(["user"])
    assert before is not None
    for name in changes.COUNTERS:
        other_server.execute(f"DROP TRIGGER {name}")
    other_server.execute("DROP TABLE table_change")
    with app.app_context():
        changes.TABLE_CHANGES.create(db.engine)  # its rows, at 0
        for table in changes.WATCHED:  # and the counters create_all would add
            for event in ("INSERT", "UPDATE", "DELETE"):
                other_server.execute(
                    changes._COUNTER
                    % {"watched": table, "kind": event.lower(), "event": event}
                )
    after = feed.stamp(["user"])
    assert after is not None and after[1] != before[1]  # counts alone may match


def test_answering_keeps_the_players_row(
    app, client, player, listening, other_server, monkeypatch
):
    """Answers write no table whose rows are kept: an answer finds the player kept
    though other answers were committed since (on SQLite too, where every commit
    moves the data version)."""
    attempt_id = start(client)
    html = client.get(f"/attempts/{attempt_id}/questions/1").get_data(as_text=True)
    first = {"choice": choice_ids(html)[0]}
    assert client.post(f"/attempts/{attempt_id}/questions/1", data=first).status_code
    _settled(listening)
    client.get("/")  # the player read (and kept) after the answer's commit
    html = client.get(f"/attempts/{attempt_id}/questions/2").get_data(as_text=True)
    # Another server records an answer meanwhile (here: rewrites this one's time).
    other_server.execute(
        "UPDATE response SET seconds = seconds + 1 WHERE attempt_id = %s", [attempt_id]
    )
    _settled(listening)
    player_reads = []
    first_read = security._USER_ROW.first
    monkeypatch.setattr(
        security._USER_ROW,
        "first",
        lambda **params: player_reads.append(params) or first_read(**params),
    )
    response = client.post(
        f"/attempts/{attempt_id}/questions/2", data={"choice": choice_ids(html)[0]}
    )
    assert response.status_code == 302
    assert player_reads == []
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count()).where(Response.attempt_id == attempt_id)
            )
            == 2
        )


def test_sqlite_keeps_nothing_inside_a_transaction_without_the_write_lock(
    app, player, listening, other_server
):
    """Such a transaction reads an older snapshot than a stamp taken now."""
    if POSTGRES_URL:
        pytest.skip("SQLite test")
    with app.app_context():
        db.session.execute(sa.select(User.id)).all()  # a snapshot from now on
        other_server.execute(
            "UPDATE \"user\" SET display_name = 'Patricia' WHERE id = %s", [player]
        )
        assert listening.stamp(["user"]) is None
        db.session.rollback()
        assert listening.stamp(["user"]) is not None


def test_sqlite_watcher_that_fails_reads_afresh_then_reconnects(app, monkeypatch):
    if POSTGRES_URL:
        pytest.skip("SQLite test")
    feed = app.extensions[changes.EXTENSION]
    assert feed.stamp([]) is not None

    class Broken:
        closed = False

        def execute(self, _sql):
            raise sqlite3.OperationalError("disk I/O error")

        def close(self):
            Broken.closed = True

    monkeypatch.setattr(feed._mine, "connection", Broken())
    assert feed.stamp([]) is None and Broken.closed  # nothing kept, nothing raised
    assert feed.stamp([]) is not None  # a new watcher connection


@requires_postgres
def test_a_transaction_whose_connection_was_cut_rolls_back(app):
    """A connection lost inside a transaction (the server restarted, say): the error
    is reported, and rolling back afterwards neither fails nor keeps the session
    from working again."""
    with app.test_request_context("/", method="POST"):
        db.session.execute(sa.update(User).where(User.id == 0).values(role="admin"))
        cut = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with db.engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": cut})
            other.commit()
        with pytest.raises(sa.exc.OperationalError) as raised:
            db.session.execute(sa.text("SELECT 1"))
        assert raised.value.connection_invalidated
        db.session.rollback()
        assert db.session.execute(sa.text("SELECT 1")).scalar() == 1
        db.session.rollback()
