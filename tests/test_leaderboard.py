"""Leaderboard ordering, tie-breaks, paging, own rank, periods and the overall board."""

from datetime import UTC, datetime, timedelta

import pytest

from quiz import leaderboard
from quiz.extensions import db
from quiz.models import Attempt, PlayerTotal
from tests.factories import make_player, make_quiz

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def finish(quiz, player, score, seconds, finished_at=None, max_score=6.0):
    """Record a finished attempt with the given figures, as ``attempts.finish`` does."""
    finished_at = finished_at or datetime.now(UTC)
    attempt = Attempt(
        user_id=player.id,
        quiz_id=quiz.id,
        pass_mark=50,
        score=score,
        max_score=max_score,
        started_at=finished_at - timedelta(seconds=seconds),
        finished_at=finished_at,
        duration_ms=seconds * 1000,
        passed=True,
    )
    db.session.add(attempt)
    db.session.flush()
    leaderboard.record_finished(attempt)
    db.session.commit()
    return attempt


def names(board):
    return [e.display_name for e in board.entries]


def test_higher_score_first(ctx):
    quiz = make_quiz()
    finish(quiz, make_player("low"), 2, 10)
    finish(quiz, make_player("high"), 5, 99)
    assert names(leaderboard.quiz_board(quiz.id)) == ["high", "low"]


def test_equal_score_shorter_duration_wins(ctx):
    quiz = make_quiz()
    finish(quiz, make_player("slow"), 4, 60)
    finish(quiz, make_player("fast"), 4, 30)
    assert names(leaderboard.quiz_board(quiz.id)) == ["fast", "slow"]


def test_equal_score_and_duration_earlier_finish_wins(ctx):
    quiz = make_quiz()
    finish(quiz, make_player("later"), 4, 30, T0 + timedelta(minutes=1))
    finish(quiz, make_player("earlier"), 4, 30, T0)
    assert names(leaderboard.quiz_board(quiz.id)) == ["earlier", "later"]


def test_complete_tie_goes_to_the_lower_player_id(ctx):
    quiz = make_quiz()
    first, second = make_player("first"), make_player("second")
    finish(quiz, second, 4, 30, T0)
    finish(quiz, first, 4, 30, T0)
    board = leaderboard.quiz_board(quiz.id, me_id=second.id)
    assert names(board) == ["first", "second"]
    assert board.me.rank == 2


def test_an_entry_is_the_players_best_attempt(ctx):
    quiz, player = make_quiz(), make_player("p")
    best = finish(quiz, player, 5, 50, T0)
    finish(quiz, player, 3, 10, T0 + timedelta(hours=1))  # worse: lower score
    finish(quiz, player, 5, 50, T0 + timedelta(hours=2))  # equal: not better
    board = leaderboard.quiz_board(quiz.id)
    assert board.total == 1
    assert (
        board.entries[0].score == 5 and board.entries[0].finished_at == best.finished_at
    )
    finish(quiz, player, 5, 40, T0 + timedelta(hours=3))  # faster: better
    assert leaderboard.quiz_board(quiz.id).entries[0].duration_ms == 40_000


def test_pages_of_twenty_and_my_rank_outside_the_page(ctx):
    quiz = make_quiz()
    players = [make_player(f"p{i:02}") for i in range(45)]
    for i, player in enumerate(players):
        finish(quiz, player, 6 - i * 0.1, 10, T0)
    me = players[44]
    page1 = leaderboard.quiz_board(quiz.id, me_id=me.id)
    assert len(page1.entries) == 20 and page1.pages == 3 and page1.total == 45
    assert [e.rank for e in page1.entries] == list(range(1, 21))
    assert page1.me.rank == 45 and not page1.me_on_page
    page3 = leaderboard.quiz_board(quiz.id, page=3, me_id=me.id)
    assert [e.rank for e in page3.entries] == [41, 42, 43, 44, 45]
    assert page3.me_on_page
    assert leaderboard.quiz_board(quiz.id, page=99).page == 3  # clamped


def test_player_without_an_entry_has_no_rank(ctx):
    quiz = make_quiz()
    finish(quiz, make_player("a"), 3, 10)
    assert leaderboard.quiz_board(quiz.id, me_id=make_player("b").id).me is None


def test_week_board_uses_best_attempt_within_the_last_seven_days(ctx):
    quiz = make_quiz()
    now = datetime.now(UTC)
    old_star, regular = make_player("old-star"), make_player("regular")
    finish(quiz, old_star, 6, 10, now - timedelta(days=10))
    finish(quiz, old_star, 2, 10, now - timedelta(days=1))
    finish(quiz, regular, 4, 10, now - timedelta(days=2))
    finish(quiz, regular, 3, 10, now - timedelta(hours=1))
    all_time = leaderboard.quiz_board(quiz.id)
    week = leaderboard.quiz_board(quiz.id, period="week", me_id=old_star.id)
    assert names(all_time) == ["old-star", "regular"]
    assert names(week) == ["regular", "old-star"]
    assert [e.score for e in week.entries] == [4, 2]
    assert week.me.rank == 2


def test_overall_sums_each_players_best_per_quiz(ctx):
    q1, q2 = make_quiz("quiz-one"), make_quiz("quiz-two")
    ann, bob = make_player("ann"), make_player("bob")
    finish(q1, ann, 4, 10, T0)
    finish(q1, ann, 5, 20, T0 + timedelta(minutes=1))
    finish(q2, ann, 1, 5, T0 + timedelta(minutes=2))
    finish(q1, bob, 6, 10, T0)
    board = leaderboard.overall_board(me_id=bob.id)
    assert [(e.display_name, e.score, e.quizzes) for e in board.entries] == [
        ("bob", 6, 1),
        ("ann", 6, 2),  # same total, longer total time (25 s vs 10 s)
    ]
    assert board.entries[1].duration_ms == 25_000
    assert board.me.rank == 1
    total = db.session.get(PlayerTotal, ann.id)
    assert total.score == 6 and total.quizzes == 2
    week = leaderboard.overall_board(period="week")
    assert week.total == 0  # all of these finished long ago


def test_overall_week_sums_recent_bests(ctx):
    q1, q2 = make_quiz("quiz-one"), make_quiz("quiz-two")
    ann = make_player("ann")
    now = datetime.now(UTC)
    finish(q1, ann, 1.3333, 10, now - timedelta(hours=2))
    finish(q2, ann, 2.6667, 10, now - timedelta(hours=1))
    entry = leaderboard.overall_board(period="week").entries[0]
    assert entry.score == pytest.approx(4.0) and entry.quizzes == 2


def test_player_rank_on_a_quiz(ctx):
    quiz = make_quiz()
    a, b = make_player("a"), make_player("b")
    finish(quiz, a, 5, 10)
    finish(quiz, b, 6, 10)
    assert leaderboard.player_rank(quiz.id, a.id).rank == 2
    assert leaderboard.player_rank(quiz.id, make_player("c").id) is None


def test_week_sums_compare_equal_despite_float_error(ctx):
    q1, q2, q3 = make_quiz("quiz-one"), make_quiz("quiz-two"), make_quiz("quiz-three")
    now = datetime.now(UTC)
    early, late = make_player("early"), make_player("late")
    finish(q3, early, 0.3, 10, now - timedelta(hours=3))
    finish(q1, late, 0.1, 5, now - timedelta(hours=2))
    finish(q2, late, 0.2, 5, now - timedelta(hours=1))
    assert names(leaderboard.overall_board(period="week")) == ["early", "late"]


def test_week_window_is_seven_days(ctx):
    quiz = make_quiz()
    now = datetime.now(UTC)
    finish(quiz, make_player("inside"), 3, 10, now - timedelta(days=6, hours=23))
    finish(quiz, make_player("outside"), 5, 10, now - timedelta(days=7, minutes=1))
    assert names(leaderboard.quiz_board(quiz.id, period="week")) == ["inside"]


def test_scores_stay_on_the_overall_board_when_a_quiz_is_withdrawn(ctx):
    quiz = make_quiz()
    finish(quiz, make_player("veteran"), 4, 10)
    quiz.is_published = False
    db.session.commit()
    assert names(leaderboard.overall_board()) == ["veteran"]
