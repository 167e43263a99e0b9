"""SQLite: a COMMIT that fails leaves nothing open on the connection it used.

SQLite keeps the transaction open when COMMIT fails with "database is locked"; the
connection must still go back to the pool rolled back, so that the answer whose
request failed is never stored and later requests on that connection work.
"""

import re
import sqlite3

import pytest
import sqlalchemy as sa

from quiz import attempts
from quiz.extensions import db
from quiz.models import Attempt, Response


def start_attempt(app, client) -> tuple[int, list[int]]:
    """A guest's new attempt at "alpha": its id and a choice for each question."""
    client.post("/guest", data={"display_name": "Locked Out"})
    location = client.post("/quizzes/alpha/start").headers["Location"]
    attempt_id = int(re.search(r"/attempts/(\d+)", location).group(1))
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        choices = [attempts.review_item(attempt, p).choices[0].id for p in (1, 2, 3)]
    return attempt_id, choices


def fail_first_commit(monkeypatch, engine) -> list:
    """Make the next COMMIT fail as SQLite's does when the database is locked: the
    error is raised and the transaction stays open. Returns the sqlite3 connections
    that committed (or tried to), in order."""
    committed = []
    do_commit = engine.dialect.do_commit

    def commit(pooled):
        committed.append(pooled.dbapi_connection)
        if len(committed) == 1:
            assert pooled.dbapi_connection.in_transaction
            raise sqlite3.OperationalError("database is locked")
        do_commit(pooled)

    monkeypatch.setattr(engine.dialect, "do_commit", commit)
    return committed


def stored(app, attempt_id) -> dict[int, list[int]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Response.position, Response.chosen).where(
                Response.attempt_id == attempt_id
            )
        ).all()
        db.session.remove()
    return dict(rows)


@pytest.mark.parametrize("propagate", [True, False], ids=["propagated", "error-page"])
def test_failed_commit_is_rolled_back_before_the_connection_is_reused(
    sqlite_app, monkeypatch, propagate
):
    app, path = sqlite_app
    # Propagated: the exception leaves the app (tests, debug) and only the teardown
    # closes the session. Error page: the 500 handler runs first.
    app.config["PROPAGATE_EXCEPTIONS"] = propagate
    client = app.test_client()
    attempt_id, choices = start_attempt(app, client)
    with app.app_context():
        engine = db.engine
    committed = fail_first_commit(monkeypatch, engine)

    url = f"/attempts/{attempt_id}/questions/{{}}"
    if propagate:
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            client.post(url.format(1), data={"choice": choices[0]})
    else:
        response = client.post(url.format(1), data={"choice": choices[0]})
        assert response.status_code == 500

    # Back in the pool with nothing open: another process can take the write lock.
    assert engine.pool.checkedout() == 0
    assert not committed[0].in_transaction
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()

    # The next request commits, without the failed answer.
    response = client.post(url.format(2), data={"choice": choices[1]})
    assert response.status_code == 302
    assert stored(app, attempt_id) == {2: [choices[1]]}

    # The failed answer was never recorded: answering again records it now.
    assert client.post(url.format(1), data={"choice": choices[0]}).status_code == 302
    assert stored(app, attempt_id) == {1: [choices[0]], 2: [choices[1]]}
