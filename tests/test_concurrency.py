"""Racing requests: the same answer or start sent twice at once creates one row."""

import re
import threading

import sqlalchemy as sa

from quiz import attempts
from quiz.extensions import db
from quiz.models import Attempt, Response
from tests.factories import make_quiz


def twin_clients(app):
    """Two clients sharing one signed-in guest session, like two tabs."""
    first = app.test_client()
    first.post("/guest", data={"display_name": "Twin"})
    second = app.test_client()
    cookie = first.get_cookie("session")
    second.set_cookie(cookie.key, cookie.value)
    return first, second


def race(*calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_racing_answers_record_once_and_finish_once(app):
    with app.app_context():
        make_quiz("alpha")
    first, second = twin_clients(app)
    location = first.post("/quizzes/alpha/start").headers["Location"]
    attempt_id = int(re.search(r"/attempts/(\d+)", location).group(1))
    for position in (1, 2, 3):
        with app.app_context():
            attempt = db.session.get(Attempt, attempt_id)
            item = attempts.review_item(attempt, position)
            right = [c.id for c in item.choices if c.is_correct]
        url = f"/attempts/{attempt_id}/questions/{position}"
        responses = race(
            lambda url=url, right=right: first.post(url, data={"choice": right}),
            lambda url=url, right=right: second.post(url, data={"choice": right}),
        )
        assert [r.status_code for r in responses] == [302, 302]
    with app.app_context():
        assert count(Response) == 3
        attempt = db.session.get(Attempt, attempt_id)
        assert attempt.is_finished and attempt.score == 6.0


def test_racing_starts_create_one_attempt(app):
    with app.app_context():
        make_quiz("alpha")
    first, second = twin_clients(app)
    responses = race(
        lambda: first.post("/quizzes/alpha/start"),
        lambda: second.post("/quizzes/alpha/start"),
    )
    assert [r.status_code for r in responses] == [302, 302]
    assert responses[0].headers["Location"] == responses[1].headers["Location"]
    with app.app_context():
        assert count(Attempt) == 1
