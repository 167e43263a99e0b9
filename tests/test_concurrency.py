"""Racing requests: the same answer or start sent twice at once creates one row; a
guest's hand-over racing the account's own play."""

import re
import threading

import pytest
import sqlalchemy as sa

from quiz import attempts
from quiz.extensions import db
from quiz.models import Attempt, Response
from tests.conftest import requires_postgres
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


def _finished_attempt(user_id, quiz_id, score, seconds):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    return Attempt(
        user_id=user_id,
        quiz_id=quiz_id,
        pass_mark=50,
        score=score,
        max_score=6.0,
        started_at=now - timedelta(seconds=seconds),
        finished_at=now,
        duration_ms=seconds * 1000,
        passed=True,
    )


def test_a_finish_racing_a_guest_hand_over_to_the_same_account(app):
    """The account finishing an attempt while a guest hands theirs over to it: both
    commit (no deadlock), and the best score and the tallies agree afterwards."""
    from quiz import accounts, leaderboard, sqlite
    from quiz.models import BestScore, ScoreTally
    from tests.factories import make_account, make_player

    with app.app_context():
        quiz_id = make_quiz("race").id
        account_id = make_account("racer@example.org", role="player").id
    for round_ in range(6):
        with app.app_context():
            guest = make_player(f"Guest {round_}")
            for user_id, score in ((account_id, 1.0), (guest.id, 4.0 + round_ % 2)):
                attempt = _finished_attempt(user_id, quiz_id, score, 30)
                db.session.add(attempt)
                db.session.flush()
                leaderboard.record_finished(attempt)
            db.session.commit()
            guest_id = guest.id

        def finish_as_account(score=3.0 + round_):
            with app.app_context(), sqlite.write_intent():
                attempt = _finished_attempt(account_id, quiz_id, score, 20)
                db.session.add(attempt)
                db.session.flush()
                leaderboard.record_finished(attempt)
                db.session.commit()
                return "finished"

        def hand_over(guest_id=guest_id):
            with app.app_context(), sqlite.write_intent():
                users = {u.id: u for u in db.session.scalars(sa.select(accounts.User))}
                accounts.merge_guest(users[guest_id], users[account_id])
                db.session.commit()
                return "handed over"

        assert race(finish_as_account, hand_over) == ["finished", "handed over"]
        with app.app_context():
            scores = db.session.scalars(
                sa.select(Attempt.score).where(
                    Attempt.user_id == account_id, Attempt.quiz_id == quiz_id
                )
            ).all()
            best = db.session.get(BestScore, (quiz_id, account_id))
            assert best.score == max(scores)
            tallies = dict(
                db.session.execute(
                    sa.select(ScoreTally.score, ScoreTally.players).where(
                        ScoreTally.quiz_id == quiz_id, ScoreTally.players != 0
                    )
                ).all()
            )
            expected = dict(
                db.session.execute(
                    sa.select(BestScore.score, sa.func.count())
                    .where(BestScore.quiz_id == quiz_id)
                    .group_by(BestScore.score)
                ).all()
            )
            assert tallies == expected


def _guest_with_open_attempts(*slugs):
    """A guest with an open attempt at each quiz, and an account with none."""
    from quiz.models import Quiz, User
    from tests.factories import make_account, make_player

    guest = make_player("Gus")
    for slug in slugs:
        quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == slug))
        attempts.start(db.session.get(User, guest.id), quiz)
    db.session.commit()
    return guest.id, make_account("gus@example.org", role="player").id


@requires_postgres
def test_a_guest_hands_over_while_the_account_starts_the_same_quiz(app, monkeypatch):
    """The account starts a quiz on another device after the hand-over read its open
    attempts: the guest's open attempt there is finished and moved, not a 500."""
    from quiz import accounts
    from quiz.models import Quiz, User

    with app.app_context():
        make_quiz("alpha")
        make_quiz("beta")
        guest_id, account_id = _guest_with_open_attempts("alpha", "beta")
    started = []

    def start_elsewhere():
        with app.app_context():
            quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == "beta"))
            started.append(attempts.start(db.session.get(User, account_id), quiz).id)
            db.session.commit()

    hand_over = accounts._hand_over

    def racing_hand_over(*args):
        if not started:  # once: between reading the account's attempts and moving
            thread = threading.Thread(target=start_elsewhere)
            thread.start()
            thread.join(10)
        return hand_over(*args)

    monkeypatch.setattr(accounts, "_hand_over", racing_hand_over)
    with app.app_context():
        users = {u.id: u for u in db.session.scalars(sa.select(User))}
        assert accounts.merge_guest(users[guest_id], users[account_id]) == 2
        db.session.commit()
    with app.app_context():
        held = db.session.execute(
            sa.select(Quiz.slug, Attempt.id, Attempt.finished_at.is_not(None))
            .join(Quiz)
            .where(Attempt.user_id == account_id)
            .order_by(Quiz.slug, Attempt.id)
        ).all()
        assert [(slug, finished) for slug, _, finished in held] == [
            ("alpha", False),  # the guest's, still open
            ("beta", True),  # the guest's, finished to make way
            ("beta", False),  # the one started elsewhere
        ]
        assert held[2].id == started[0]
        assert db.session.get(User, guest_id) is None


def test_a_hand_over_that_fails_for_another_reason_is_not_tried_again(app, monkeypatch):
    from quiz import accounts
    from quiz.models import User

    with app.app_context():
        make_quiz("alpha")
        guest_id, account_id = _guest_with_open_attempts("alpha")
    calls = []

    def failing_hand_over(*args):
        calls.append(args)
        raise sa.exc.IntegrityError("UPDATE attempt", {}, Exception("another key"))

    monkeypatch.setattr(accounts, "_hand_over", failing_hand_over)
    with app.app_context():
        users = {u.id: u for u in db.session.scalars(sa.select(User))}
        with pytest.raises(sa.exc.IntegrityError):
            accounts.merge_guest(users[guest_id], users[account_id])
        db.session.rollback()
    assert len(calls) == 1
