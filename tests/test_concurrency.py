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


def _guest_with_open_attempts(*slugs, best_at=()):
    """A guest with an open attempt at each quiz (and first a finished one, so a
    best score, at each of ``best_at``), and an account with none."""
    from quiz.models import Quiz, User
    from tests.factories import make_account, make_player

    guest = make_player("Gus")
    for slug in slugs:
        quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == slug))
        player = db.session.get(User, guest.id)
        if slug in best_at:
            attempts.finish(attempts.start(player, quiz))
        attempts.start(player, quiz)
    db.session.commit()
    return guest.id, make_account("gus@example.org", role="player").id


def _in_a_thread(call):
    """Run ``call`` in a thread of its own; its result, or the error it raised."""
    outcome = []

    def run():
        try:
            outcome.append(call())
        except (attempts.AttemptError, sa.exc.SQLAlchemyError) as error:  # reported
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@requires_postgres
@pytest.mark.parametrize("guest_has_a_best", [False, True])
def test_a_guest_hands_over_while_the_account_starts_the_same_quiz(
    app, monkeypatch, guest_has_a_best
):
    """The account starts a quiz on another device after the hand-over read its open
    attempts (and, with a best score of the guest's there, after it took that
    quiz's board): the start goes through, and the guest's open attempt there is
    finished and moved, not a 500."""
    from quiz import accounts, leaderboard
    from quiz.models import Quiz, User

    with app.app_context():
        make_quiz("alpha")
        make_quiz("beta")
        best_at = ("beta",) if guest_has_a_best else ()
        guest_id, account_id = _guest_with_open_attempts(
            "alpha", "beta", best_at=best_at
        )

    def start_elsewhere():
        with app.app_context():
            quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == "beta"))
            attempt_id = attempts.start(db.session.get(User, account_id), quiz).id
            db.session.commit()
            return attempt_id

    remove_bests = leaderboard.remove_bests
    race = {}

    def racing_remove_bests(user_id):
        remove_bests(user_id)  # the boards of the guest's best scores are locked
        if "started" not in race:  # once: after reading the account's attempts
            thread, race["started"] = _in_a_thread(start_elsewhere)
            thread.join(10)
            assert not thread.is_alive(), "the start waited for the hand-over"

    monkeypatch.setattr(leaderboard, "remove_bests", racing_remove_bests)
    with app.app_context():
        users = {u.id: u for u in db.session.scalars(sa.select(User))}
        moved = accounts.merge_guest(users[guest_id], users[account_id])
        db.session.commit()
    started = race["started"]
    assert isinstance(started[0], int), started
    assert moved == (3 if guest_has_a_best else 2)
    with app.app_context():
        held = db.session.execute(
            sa.select(Quiz.slug, Attempt.id, Attempt.finished_at.is_not(None))
            .join(Quiz)
            .where(Attempt.user_id == account_id)
            .order_by(Quiz.slug, Attempt.id)
        ).all()
        expected = [
            ("alpha", False),  # the guest's, still open
            *([("beta", True)] if guest_has_a_best else []),  # the guest's best
            ("beta", True),  # the guest's open one, finished to make way
            ("beta", False),  # the one started elsewhere
        ]
        assert [(slug, finished) for slug, _, finished in held] == expected
        assert held[-1].id == started[0]
        assert db.session.get(User, guest_id) is None


@requires_postgres
def test_a_guest_starting_a_quiz_while_signing_in_is_told_to_start_again(
    app, monkeypatch
):
    """The guest starts a quiz in another tab while their sign-in hands their
    attempts over: the start waits for the hand-over, then finds the guest gone
    (rather than being moved unlocked and uncounted)."""
    from quiz import accounts, leaderboard
    from quiz.models import Quiz, User

    with app.app_context():
        make_quiz("alpha")
        make_quiz("beta")
        guest_id, account_id = _guest_with_open_attempts("alpha")

    def start_as_guest():
        with app.app_context():
            quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == "beta"))
            attempt = attempts.start(db.session.get(User, guest_id), quiz)
            db.session.commit()
            return attempt.id

    remove_bests = leaderboard.remove_bests
    race = {}

    def racing_remove_bests(user_id):
        if "thread" not in race:  # after the guest's attempts were read and locked
            race["thread"], race["outcome"] = _in_a_thread(start_as_guest)
            race["thread"].join(0.5)
            race["waited"] = race["thread"].is_alive()
        remove_bests(user_id)

    monkeypatch.setattr(leaderboard, "remove_bests", racing_remove_bests)
    with app.app_context():
        users = {u.id: u for u in db.session.scalars(sa.select(User))}
        assert accounts.merge_guest(users[guest_id], users[account_id]) == 1
        db.session.commit()
    race["thread"].join(10)
    assert race["waited"]  # for the guest's row
    outcome = race["outcome"]
    assert isinstance(outcome[0], attempts.QuizUnavailable), outcome
    assert "Start it again" in str(outcome[0])
    with app.app_context():
        owners = db.session.scalars(sa.select(Attempt.user_id)).all()
        assert owners == [account_id]


class _Diagnostics:
    def __init__(self, constraint_name):
        self.constraint_name = constraint_name


class _DriverError(Exception):
    def __init__(self, constraint_name):
        super().__init__(f"duplicate key value violates {constraint_name}")
        self.diag = _Diagnostics(constraint_name)


@pytest.mark.parametrize(
    ("constraint", "tries"),
    [("another_key", 1), ("uq_attempt_open", 3)],  # 3: HAND_OVER_TRIES
)
def test_a_hand_over_is_tried_again_only_for_a_clash_and_only_so_often(
    app, monkeypatch, constraint, tries
):
    from quiz import accounts
    from quiz.models import User

    with app.app_context():
        make_quiz("alpha")
        guest_id, account_id = _guest_with_open_attempts("alpha")
    calls = []

    def failing_hand_over(*args):
        calls.append(args)
        error = _DriverError(constraint)
        raise sa.exc.IntegrityError("UPDATE attempt", {}, error)

    monkeypatch.setattr(accounts, "_hand_over", failing_hand_over)
    with app.app_context():
        users = {u.id: u for u in db.session.scalars(sa.select(User))}
        with pytest.raises(sa.exc.IntegrityError):
            accounts.merge_guest(users[guest_id], users[account_id])
        db.session.rollback()
    assert len(calls) == tries
