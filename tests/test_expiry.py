"""Attempts left open when their time ran out are finished with the answers given in
time: by trainers' pages, and by ``flask --app quiz attempts finish-expired``."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from quiz import attempts, cohorts
from quiz.extensions import db
from quiz.models import Attempt, BestScore, Quiz, Response, User, utcnow
from tests.conftest import requires_postgres
from tests.factories import make_account, make_quiz
from tests.test_trainer import sign_in


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
    with app.app_context():
        for name in ("ann", "bob", "cy", "dee"):
            player = make_account(f"{name}@example.org", role="player")
            run_out(start(player.id, "timed"), minutes_ago=10)
    result = runner.invoke(args=["attempts", "finish-expired"])
    assert result.exit_code == 0, result.output
    assert "Finished 5 attempt(s) whose time was up." in result.output
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
        assert attempts.finish_expired(limit=1) == 1
        db.session.commit()
        finished = db.session.get(Attempt, older)
        assert finished.finished_at == finished.deadline
        assert finished.score == sum(r.points for r in finished.responses) > 0
        assert db.session.get(Attempt, timed["late"]).finished_at is None
        assert attempts.finish_expired() == 1
        db.session.commit()
        assert not attempts.any_expired()


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
                assert attempts.finish_expired() == 0  # not waited for
                db.session.rollback()
                holder.rollback()
        finally:
            other.dispose()
        assert attempts.finish_expired() == 1
        db.session.commit()
