"""Attempts left open when their time ran out are finished with the answers given in
time: by trainers' pages, and by ``flask --app quiz attempts finish-expired``."""

import re
import sqlite3
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from quiz import attempts, cohorts
from quiz.extensions import db
from quiz.models import Attempt, BestScore, Quiz, Response, User, utcnow
from tests.conftest import POSTGRES_URL, requires_postgres
from tests.factories import make_account, make_quiz
from tests.test_trainer import sign_in

requires_sqlite = pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's write lock")


def start(user_id: int, slug: str, *, right: int = 0) -> int:
    """An open attempt at ``slug`` with its first ``right`` questions answered right."""
    user = db.session.get(User, user_id)
    quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == slug))
    attempt = attempts.start(user, quiz)
    for position in range(1, right + 1):
        item = attempts.review_item(attempt, position)
        attempts.answer(attempt, position, [c.id for c in item.choices if c.is_correct])
    db.session.commit()
    return attempt.id


def run_out(attempt_id: int, *, minutes_ago: float = 1) -> None:
    """Move the attempt back in time: its deadline passed ``minutes_ago``."""
    attempt = db.session.get(Attempt, attempt_id)
    shift = attempt.deadline - utcnow() + timedelta(minutes=minutes_ago)
    attempt.started_at -= shift
    attempt.deadline -= shift
    for response in attempt.responses:
        response.answered_at -= shift
    db.session.commit()


@pytest.fixture
def timed(app):
    """A 5-minute quiz assigned to Tia's cohort, whose member Lee has run out of
    time with one question of three answered right; Max is in time."""
    with app.app_context():
        make_quiz("alpha")
        quiz = make_quiz("timed", minutes=5)
        tia = make_account("tia@example.org", role="trainer", name="Tia")
        lee = make_account("lee@example.org", role="player", name="Lee")
        max_ = make_account("max@example.org", role="player", name="Max")
        cohort = cohorts.create(tia, "Finance team", "")
        for learner in (lee, max_):
            cohorts.join(learner, cohort.join_code)
        cohorts.assign(tia, cohort, quiz, None)
        db.session.commit()
        late = start(lee.id, "timed", right=1)
        run_out(late)
        return {
            "cohort": cohort.id,
            "late": late,
            "in_time": start(max_.id, "timed"),
            "untimed": start(lee.id, "alpha"),
            "lee": lee.id,
        }


def test_a_trainer_sees_an_abandoned_attempt_finished_with_the_answers_given(
    app, timed
):
    trainer = sign_in(app, "tia@example.org")
    url = f"/trainer/cohorts/{timed['cohort']}/results?quiz=timed"
    html = trainer.get(url).get_data(as_text=True)
    assert re.search(r"Lee</a>.*?status-completed", html, re.DOTALL)
    assert re.search(r"Max</a>.*?status-in-progress", html, re.DOTALL)
    with app.app_context():
        late = db.session.get(Attempt, timed["late"])
        assert late.finished_at == late.deadline  # finished when the time ran out
        assert late.score == 1 and late.duration_ms == 5 * 60 * 1000
        best = db.session.scalar(
            sa.select(BestScore).where(BestScore.user_id == timed["lee"])
        )
        assert best is not None and best.attempt_id == late.id  # on the leaderboard
        assert db.session.get(Attempt, timed["in_time"]).finished_at is None
        assert db.session.get(Attempt, timed["untimed"]).finished_at is None


def test_the_player_coming_back_finds_it_finished_and_a_late_answer_is_refused(
    app, timed
):
    sign_in(app, "tia@example.org").get("/trainer/")
    lee = sign_in(app, "lee@example.org")
    with app.app_context():
        item = attempts.review_item(db.session.get(Attempt, timed["late"]), 2)
        choice = item.choices[0].id
    response = lee.post(
        f"/attempts/{timed['late']}/questions/2", data={"choice": choice}
    )
    assert response.status_code == 409
    assert "This attempt is finished" in response.get_data(as_text=True)
    results = lee.get(f"/attempts/{timed['late']}/results")
    assert results.status_code == 200
    with app.app_context():
        stored = db.session.scalars(
            sa.select(Response.position).where(Response.attempt_id == timed["late"])
        ).all()
        assert stored == [1]


def test_the_command_finishes_every_expired_attempt_in_batches(
    app, timed, runner, monkeypatch
):
    monkeypatch.setattr(attempts, "EXPIRED_BATCH", 2)
    sweeps = []
    close_expired = attempts.close_expired

    def counted(**options):
        sweeps.append((options["limit"], sweep := close_expired(**options)))
        return sweep

    monkeypatch.setattr(attempts, "close_expired", counted)
    with app.app_context():
        for name in ("ann", "bob", "cy", "dee"):
            player = make_account(f"{name}@example.org", role="player")
            run_out(start(player.id, "timed"), minutes_ago=10)
    result = runner.invoke(args=["attempts", "finish-expired"])
    assert result.exit_code == 0, result.output
    assert "Finished 5 attempt(s) whose time was up." in result.output
    assert [(limit, sweep.finished) for limit, sweep in sweeps] == [
        (2, 2),
        (2, 2),
        (2, 1),  # fewer than asked for: none left
    ]
    with app.app_context():
        still_open = db.session.scalars(
            sa.select(Attempt.id).where(Attempt.finished_at.is_(None))
        ).all()
        assert sorted(still_open) == sorted([timed["in_time"], timed["untimed"]])
    again = runner.invoke(args=["attempts", "finish-expired"])
    assert "Finished 0 attempt(s)" in again.output


def test_one_sweep_finishes_at_most_its_limit_oldest_deadline_first(app, timed):
    with app.app_context():
        older = start(
            make_account("ann@example.org", role="player").id, "timed", right=2
        )
        run_out(older, minutes_ago=30)
        assert attempts.any_expired()
        assert attempts.close_expired(limit=1) == attempts.Sweep(1, ())
        finished = db.session.get(Attempt, older)
        assert finished.finished_at == finished.deadline
        assert finished.score == sum(r.points for r in finished.responses) > 0
        assert db.session.get(Attempt, timed["late"]).finished_at is None
        assert attempts.close_expired() == attempts.Sweep(1, ())
        assert not attempts.any_expired()


def test_an_attempt_just_past_its_deadline_is_left_a_moment(app, timed):
    """A server whose clock runs a few seconds fast closes nothing early: the sweep
    waits ``EXPIRY_GRACE`` past the deadline (the player's own answer does not)."""
    with app.app_context():
        run_out(timed["in_time"], minutes_ago=10 / 60)
        assert attempts.close_expired() == attempts.Sweep(1, ())  # the late one
        assert not attempts.any_expired()
        assert db.session.get(Attempt, timed["in_time"]).finished_at is None


def test_the_sweep_refuses_to_drop_unsaved_changes(app, timed):
    with app.app_context():
        db.session.get(Attempt, timed["in_time"]).score = 99
        with pytest.raises(RuntimeError, match="commit the session first"):
            attempts.close_expired()


def breaking(monkeypatch, attempt_id, error):
    """``attempts.finish`` raises ``error`` for one attempt; returns the real one."""
    finish = attempts.finish

    def broken(attempt, **options):
        if attempt.id == attempt_id:
            raise error
        return finish(attempt, **options)

    monkeypatch.setattr(attempts, "finish", broken)
    return finish


@pytest.mark.parametrize(
    "error",
    [
        sa.exc.OperationalError("UPDATE attempt", {}, Exception("disk I/O error")),
        ZeroDivisionError("a fault in the code"),
    ],
)
def test_an_attempt_that_fails_to_finish_holds_up_no_other_nor_the_page(
    app, timed, runner, monkeypatch, caplog, error
):
    with app.app_context():
        other = start(make_account("ann@example.org", role="player").id, "timed")
        run_out(other, minutes_ago=30)  # the older deadline: tried first
    finish = breaking(monkeypatch, other, error)
    trainer = sign_in(app, "tia@example.org")
    assert trainer.get("/trainer/").status_code == 200
    assert caplog.text.count(f"Attempt {other} could not be finished") == 1
    assert trainer.get("/trainer/").status_code == 200  # not tried again at once
    assert caplog.text.count(f"Attempt {other} could not be finished") == 1
    with app.app_context():
        assert db.session.get(Attempt, timed["late"]).finished_at is not None
        assert db.session.get(Attempt, other).finished_at is None
    app.extensions.pop(attempts.FAILED)  # the command runs in a process of its own
    result = runner.invoke(args=["attempts", "finish-expired"])
    assert result.exit_code == 1
    assert "Finished 0 attempt(s)" in result.output
    assert f"attempt(s) {other} could not be finished" in result.output
    monkeypatch.setattr(attempts, "finish", finish)
    app.extensions.pop(attempts.FAILED)
    result = runner.invoke(args=["attempts", "finish-expired"])
    assert "Finished 1 attempt(s)" in result.output and result.exit_code == 0


def test_the_command_goes_past_a_batch_that_failed_entirely(
    app, timed, runner, monkeypatch
):
    monkeypatch.setattr(attempts, "EXPIRED_BATCH", 1)
    with app.app_context():
        other = start(make_account("ann@example.org", role="player").id, "timed")
        run_out(other, minutes_ago=30)
    breaking(monkeypatch, other, sa.exc.OperationalError("UPDATE", {}, Exception()))
    result = runner.invoke(args=["attempts", "finish-expired"])
    assert result.exit_code == 1
    assert "Finished 1 attempt(s)" in result.output  # the late one, after it
    with app.app_context():
        assert db.session.get(Attempt, timed["late"]).finished_at is not None


@requires_sqlite
def test_on_sqlite_a_page_waits_only_a_moment_for_the_write_lock(app, timed, caplog):
    """Another writer holds SQLite's write lock (a backup, a bank import): the page
    shows what is committed, and the next page finishes the attempt."""
    trainer = sign_in(app, "tia@example.org")
    with app.app_context():
        path = db.engine.url.database
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        began = time.monotonic()
        assert trainer.get("/trainer/").status_code == 200
        assert time.monotonic() - began < 5  # not the 15 s of a form's wait
        assert "time is up stopped: (sqlite3.OperationalError)" in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with app.app_context():
        assert db.session.get(Attempt, timed["late"]).finished_at is None
    assert trainer.get("/trainer/").status_code == 200
    with app.app_context():
        assert db.session.get(Attempt, timed["late"]).finished_at is not None


@requires_postgres
def test_on_postgresql_a_page_waits_only_a_moment_for_a_leaderboards_lock(
    app, timed, caplog
):
    """A transaction holds the quiz's row (a bank import, a hand-over): the page
    shows what is committed instead of waiting for it."""
    trainer = sign_in(app, "tia@example.org")
    with app.app_context():
        other = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
        try:
            with other.connect() as holder:
                holder.execute(
                    sa.select(Quiz.id).where(Quiz.slug == "timed").with_for_update()
                )
                began = time.monotonic()
                assert trainer.get("/trainer/").status_code == 200
                assert time.monotonic() - began < 5
                assert "LockNotAvailable" in caplog.text
                holder.rollback()
        finally:
            other.dispose()
        assert db.session.get(Attempt, timed["late"]).finished_at is None
    assert trainer.get("/trainer/").status_code == 200
    with app.app_context():
        assert db.session.get(Attempt, timed["late"]).finished_at is not None


def test_pages_that_only_read_leave_attempts_alone(app, timed):
    """Only trainers' pages sweep: a player's page or a leaderboard writes nothing."""
    lee = sign_in(app, "lee@example.org")
    assert lee.get("/").status_code == 200
    assert lee.get("/quizzes/timed/leaderboard").status_code == 200
    with app.app_context():
        assert attempts.any_expired()


@requires_postgres
def test_on_postgresql_an_attempt_another_transaction_holds_is_left_to_it(app, timed):
    with app.app_context():
        other = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
        try:
            with other.connect() as holder:
                holder.execute(
                    sa.select(Attempt.id)
                    .where(Attempt.id == timed["late"])
                    .with_for_update()
                )
                assert attempts.close_expired() == attempts.Sweep(0, ())  # no wait
                holder.rollback()
        finally:
            other.dispose()
        assert attempts.close_expired() == attempts.Sweep(1, ())


@requires_postgres
def test_on_postgresql_a_guest_handing_over_waits_for_the_sweep(app, timed):
    """The sweep finishing a guest's attempt while the guest signs in to an account:
    the hand-over waits, then moves the attempt and its best score."""
    from quiz import accounts
    from tests.factories import make_player

    with app.app_context():
        guest_id = make_player("Gus").id
        abandoned = start(guest_id, "timed", right=1)
        run_out(abandoned)
        account_id = make_account("gus@example.org", role="player").id
    locked, go = threading.Event(), threading.Event()
    outcome = {}

    def sweep():
        with app.app_context():
            due = attempts.lock_one_expired(skip=[timed["late"]])
            attempts.finish(due)
            db.session.flush()
            locked.set()
            go.wait(10)
            db.session.commit()

    def hand_over():
        with app.app_context():
            try:
                guest, account = (
                    db.session.get(User, guest_id),
                    db.session.get(User, account_id),
                )
                outcome["moved"] = accounts.merge_guest(guest, account)
                db.session.commit()
            except sa.exc.SQLAlchemyError as error:  # reported below, not lost
                outcome["error"] = error

    sweeper = threading.Thread(target=sweep)
    handing = threading.Thread(target=hand_over)
    sweeper.start()
    try:
        assert locked.wait(10)
        handing.start()
        handing.join(0.5)
        assert handing.is_alive()  # waits for the attempt's lock
    finally:
        go.set()
        sweeper.join(10)
        if handing.ident is not None:  # started
            handing.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["moved"] == 1
    with app.app_context():
        moved = db.session.get(Attempt, abandoned)
        assert moved.user_id == account_id and moved.finished_at == moved.deadline
        best = db.session.get(BestScore, (moved.quiz_id, account_id))
        assert best is not None and best.attempt_id == abandoned
        assert db.session.get(User, guest_id) is None
