"""``flask --app quiz demo-data``: made-up players and attempts, consistent boards.

Proves that the command adds exactly the players and finished attempts asked for,
that every attempt looks like one a real player could have finished (its quiz's real
maximum, a score within it, a pass flag that follows the scoring rules), and that
the leaderboard tables it writes in bulk (best scores, overall totals, score
tallies) are exactly what the attempts imply, with every board version bumped so no
server keeps serving cached standings. Running it again adds more on top; it refuses
without banks and in production; the same seed gives the same scores.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from quiz import attempts, create_app, leaderboard, players, scoring
from quiz.extensions import db
from quiz.models import Attempt, BestScore, PlayerTotal, Quiz, ScoreTally, User

COUNTS = re.compile(
    r"Added (\d+) players and (\d+) finished attempts "
    r"\((\d+) best scores, (\d+) totals\)"
)


def load_banks(runner) -> None:
    result = runner.invoke(args=["banks", "load"])
    assert result.exit_code == 0, result.output


def demo_data(runner, players=60, attempts=600, seed=3):
    return runner.invoke(
        args=[
            "demo-data",
            "--players",
            str(players),
            "--attempts",
            str(attempts),
            "--seed",
            str(seed),
        ]
    )


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def highest_id(model) -> int:
    return db.session.scalar(sa.select(sa.func.max(model.id))) or 0


def board_versions() -> dict[int, int]:
    return dict(db.session.execute(sa.select(Quiz.id, Quiz.board_version)).all())


def best_by_python() -> dict[tuple[int, int], tuple]:
    """Each player's best finished attempt per quiz, picked in Python from the
    attempts: higher score, then shorter time, then earlier finish (then lower id)."""
    best: dict[tuple[int, int], Attempt] = {}
    for attempt in db.session.scalars(
        sa.select(Attempt).where(Attempt.finished_at.is_not(None))
    ):
        key = (attempt.quiz_id, attempt.user_id)
        rank = (-attempt.score, attempt.duration_ms, attempt.finished_at, attempt.id)
        held = best.get(key)
        if held is None or rank < (
            -held.score,
            held.duration_ms,
            held.finished_at,
            held.id,
        ):
            best[key] = attempt
    return {
        key: (a.id, a.score, a.max_score, a.duration_ms, a.finished_at)
        for key, a in best.items()
    }


def assert_boards_consistent() -> None:
    """best_score, player_total and score_tally are exactly what the attempts imply."""
    expected = best_by_python()
    stored = {
        (b.quiz_id, b.user_id): (
            b.attempt_id,
            b.score,
            b.max_score,
            b.duration_ms,
            b.finished_at,
        )
        for b in db.session.scalars(sa.select(BestScore))
    }
    assert stored == expected

    totals: dict[int, dict] = {}
    for (_, user_id), (_, score, _, duration_ms, finished_at) in expected.items():
        total = totals.setdefault(
            user_id,
            {"score": 0.0, "duration_ms": 0, "quizzes": 0, "finished_at": finished_at},
        )
        total["score"] += score
        total["duration_ms"] += duration_ms
        total["quizzes"] += 1
        total["finished_at"] = max(total["finished_at"], finished_at)
    rows = {t.user_id: t for t in db.session.scalars(sa.select(PlayerTotal))}
    assert set(rows) == set(totals)
    for user_id, total in totals.items():
        row = rows[user_id]
        assert row.score == pytest.approx(total["score"], abs=1e-4), user_id
        assert (row.duration_ms, row.quizzes, row.finished_at) == (
            total["duration_ms"],
            total["quizzes"],
            total["finished_at"],
        ), user_id

    tallies = {
        (quiz_id, score): players
        for quiz_id, score, players in db.session.execute(
            sa.select(ScoreTally.quiz_id, ScoreTally.score, ScoreTally.players)
        )
        if players
    }
    grouped = {
        (quiz_id, score): n
        for quiz_id, score, n in db.session.execute(
            sa.select(BestScore.quiz_id, BestScore.score, sa.func.count()).group_by(
                BestScore.quiz_id, BestScore.score
            )
        )
    }
    assert tallies == grouped
    assert tallies == Counter((q, s) for (q, _), (_, s, *_) in expected.items())


def real_max_scores() -> dict[int, float]:
    """The maximum score a real attempt of each published quiz gets, by starting one
    for a real (uncommitted) player."""
    player = players.create_guest("Real Player")
    found = {}
    for quiz in db.session.scalars(sa.select(Quiz).where(Quiz.is_published.is_(True))):
        attempt = attempts.start(player, quiz, rng=random.Random(7))
        found[quiz.id] = attempt.max_score
    db.session.rollback()
    return found


def test_demo_data_fills_the_boards_consistently(app, runner, client):
    """60 players and 600 finished attempts, each like a real one; best scores,
    totals and tallies are exactly what the attempts imply; every board version goes
    up; a busy quiz's leaderboard page shows a full page of 20."""
    load_banks(runner)
    with app.app_context():
        versions = board_versions()
        assert count(User) == count(Attempt) == 0

    result = demo_data(runner, players=60, attempts=600, seed=3)

    assert result.exit_code == 0, result.output
    printed = COUNTS.search(result.output)
    assert printed, result.output
    with app.app_context():
        assert int(printed[1]) == count(User) == 60
        assert int(printed[2]) == count(Attempt) == 600
        assert int(printed[3]) == count(BestScore)
        assert int(printed[4]) == count(PlayerTotal)
        quizzes = {q.id: q for q in db.session.scalars(sa.select(Quiz))}
        real = real_max_scores()
        assert all(q.shuffle for q in quizzes.values())  # the fair draw is what counts
        played = Counter()
        for attempt in db.session.scalars(sa.select(Attempt)):
            quiz = quizzes[attempt.quiz_id]
            played[quiz.id] += 1
            assert attempt.finished_at is not None and attempt.duration_ms > 0
            assert attempt.started_at < attempt.finished_at
            assert attempt.max_score == real[quiz.id], quiz.slug
            assert 0 <= attempt.score <= attempt.max_score
            assert attempt.pass_mark == quiz.pass_mark
            assert attempt.passed == scoring.has_passed(
                attempt.score, attempt.max_score, attempt.pass_mark
            )
        assert set(played) == set(quizzes)  # every published quiz gets some
        assert_boards_consistent()
        after = board_versions()
        assert all(after[q] > versions[q] for q in versions)
        ranked = Counter(
            db.session.scalars(sa.select(BestScore.quiz_id)).all()
        ).most_common()
        busiest, entries = quizzes[ranked[0][0]], ranked[0][1]
        assert entries > 20

    response = client.get(f"/quizzes/{busiest.slug}/leaderboard")
    assert response.status_code == 200
    tbody = re.search(
        r"<tbody>(.*?)</tbody>", response.get_data(as_text=True), re.DOTALL
    )
    assert tbody.group(1).count("<tr") == 20
    assert client.get("/leaderboard").status_code == 200


def test_running_it_twice_adds_more_and_stays_consistent(app, runner):
    """A second run adds its players and attempts after the first run's ids, and the
    boards still add up over both runs."""
    load_banks(runner)
    first = demo_data(runner, players=60, attempts=600, seed=3)
    assert first.exit_code == 0, first.output
    with app.app_context():
        users, last_attempt = highest_id(User), highest_id(Attempt)
        versions = board_versions()

    second = demo_data(runner, players=40, attempts=300, seed=4)

    assert second.exit_code == 0, (second.output, second.exception)
    with app.app_context():
        new_users = db.session.scalars(
            sa.select(User.id).where(User.id > users).order_by(User.id)
        ).all()
        assert new_users == list(range(users + 1, users + 41))
        assert count(User) == 100 and count(Attempt) == 900
        assert highest_id(Attempt) == last_attempt + 300
        assert_boards_consistent()
        assert all(board_versions()[q] > versions[q] for q in versions)
        # The app's own inserts carry on after the demo ids (PostgreSQL: the
        # sequence was moved past them).
        assert players.create_guest("After the demo").id == users + 41


def test_it_adds_to_a_database_where_people_have_played(app, runner):
    """Someone already holds a best score on every quiz (three quarters of its
    maximum, a score the demo players also get): the demo adds its players next to
    theirs and every board still adds up."""
    load_banks(runner)
    with app.app_context():
        player = players.create_guest("Real Player")
        for quiz in db.session.scalars(sa.select(Quiz)):
            # A real attempt, finished as attempts.finish books it, with that score.
            attempt = attempts.start(player, quiz, rng=random.Random(1))
            attempt.score = round(attempt.max_score * 0.75 * 4) / 4
            attempt.finished_at = attempt.started_at + timedelta(minutes=5)
            attempt.duration_ms = 300_000
            attempt.passed = scoring.has_passed(
                attempt.score, attempt.max_score, attempt.pass_mark
            )
            db.session.flush()
            leaderboard.record_finished(attempt)
        db.session.commit()
        assert_boards_consistent()

    result = demo_data(runner, players=60, attempts=600, seed=3)

    assert result.exit_code == 0, (result.output, result.exception)
    with app.app_context():
        assert count(User) == 61 and count(Attempt) == 605
        assert_boards_consistent()


def test_it_refuses_without_banks(app, runner):
    """With nothing to play, the command says to load the banks and writes nothing."""
    result = demo_data(runner, players=5, attempts=10)
    assert result.exit_code != 0
    assert "load the banks first" in result.output
    assert "banks load" in result.output
    with app.app_context():
        assert count(User) == count(Attempt) == 0


def test_it_refuses_in_production(app, app_config, runner, monkeypatch):
    """An app configured for production (safe settings, so it starts) refuses to
    invent players and scores, and writes nothing."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("QUIZ_WORKERS", raising=False)
    load_banks(runner)
    production = create_app({**app_config, "ENV": "production"})
    try:
        result = production.test_cli_runner().invoke(args=["demo-data"])
    finally:
        with production.app_context():
            db.engine.dispose()
    assert result.exit_code != 0
    assert "production" in result.output and "refuses" in result.output
    with app.app_context():
        assert count(User) == count(Attempt) == 0


def test_the_same_seed_gives_the_same_scores(app, runner):
    """Two fresh databases filled with the same seed get the same players, quizzes,
    scores, times and pass flags, attempt by attempt."""

    def fill_fresh_database() -> list[tuple]:
        with app.app_context():
            db.drop_all()
            db.create_all()
        load_banks(runner)
        result = demo_data(runner, players=30, attempts=200, seed=11)
        assert result.exit_code == 0, result.output
        with app.app_context():
            rows = db.session.execute(
                sa.select(
                    Attempt.user_id,
                    Quiz.slug,
                    Attempt.score,
                    Attempt.max_score,
                    Attempt.duration_ms,
                    Attempt.passed,
                )
                .join(Quiz, Quiz.id == Attempt.quiz_id)
                .order_by(Attempt.id)
            ).all()
            names = db.session.scalars(
                sa.select(User.display_name).order_by(User.id)
            ).all()
            return [tuple(r) for r in rows] + names

    first = fill_fresh_database()
    assert len(first) == 230
    assert fill_fresh_database() == first
