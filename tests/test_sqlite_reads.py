"""SQLite: play pages fetched with GET read without a transaction; forms lock up front."""

import pytest
import sqlalchemy as sa

from quiz import create_app
from quiz.extensions import db
from tests.factories import make_quiz


@pytest.fixture
def sqlite_app(app_config, tmp_path):
    """The app on its own SQLite file, even when the suite runs on PostgreSQL."""
    path = tmp_path / "reads.sqlite"
    application = create_app({**app_config, "DATABASE_URL": f"sqlite:///{path}"})
    with application.app_context():
        db.create_all()
        make_quiz("alpha")
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


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


def test_play_pages_begin_no_transaction_and_forms_begin_immediate(sqlite_app):
    client = sqlite_app.test_client()
    client.post("/guest", data={"display_name": "Reader"})
    for page in ("/", "/quizzes/alpha", "/quizzes/alpha/leaderboard", "/leaderboard"):
        statements = _statements(sqlite_app, lambda p=page: client.get(p))
        assert statements, page
        assert not any(s.startswith("BEGIN") for s in statements), (page, statements)
    started = _statements(sqlite_app, lambda: client.post("/quizzes/alpha/start"))
    assert started[0] == "BEGIN IMMEDIATE"


def test_other_pages_fetched_with_get_keep_their_transaction(sqlite_app):
    client = sqlite_app.test_client()
    client.post("/guest", data={"display_name": "Reader"})
    statements = _statements(sqlite_app, lambda: client.get("/login"))
    assert statements[0] == "BEGIN"  # loading the guest, in a deferred transaction
