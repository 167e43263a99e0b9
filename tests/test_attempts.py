"""The attempt lifecycle: start, resume, answer, double submit, deadline, finish."""

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from quiz import attempts
from quiz.extensions import db
from quiz.models import Attempt, BestScore, PlayerTotal, Response, ScoreTally
from tests.factories import load_bank, make_player, make_quiz


def correct_choices(attempt, position):
    item = attempts.review_item(attempt, position)
    return [c.id for c in item.choices if c.is_correct]


def wrong_choice(attempt, position):
    item = attempts.review_item(attempt, position)
    return [next(c.id for c in item.choices if not c.is_correct)]


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_start_fixes_questions_and_resumes_the_open_attempt(ctx):
    quiz, player = make_quiz(), make_player()
    first = attempts.start(player, quiz)
    again = attempts.start(player, quiz)
    assert again.id == first.id
    assert [i.position for i in first.items] == [1, 2, 3]
    assert first.max_score == 6.0


def test_shuffle_draws_a_subset_and_shuffles_choices(ctx):
    quiz = make_quiz("shuffled", per_attempt=2, shuffle="true")
    orders = set()
    for seed in range(12):
        attempt = attempts.start(make_player(f"p{seed}"), quiz, rng=random.Random(seed))
        assert len(attempt.items) == 2
        orders.add(tuple(tuple(i.choice_order) for i in attempt.items))
        for item in attempt.items:
            if item.revision.type == "true_false":  # True stays first
                assert item.choice_order == [c.id for c in item.revision.choices]
    assert len(orders) > 1


def test_no_shuffle_asks_in_file_order(ctx):
    attempt = attempts.start(make_player(), make_quiz())
    for item in attempt.items:
        assert item.choice_order == [c.id for c in item.revision.choices]


def test_answers_score_and_the_last_answer_finishes(ctx):
    quiz, player = make_quiz(), make_player()
    attempt = attempts.start(player, quiz)
    assert attempts.answer(attempt, 1, correct_choices(attempt, 1)).points == 1.0
    assert attempts.answer(attempt, 2, wrong_choice(attempt, 2)).points == 0.0
    assert attempts.next_position(attempt) == 3
    assert not attempt.is_finished
    attempts.answer(attempt, 3, correct_choices(attempt, 3))
    db.session.commit()
    assert attempt.is_finished and attempt.score == 3.0 and attempt.passed
    best = db.session.get(BestScore, (quiz.id, player.id))
    assert best.attempt_id == attempt.id and best.score == 3.0


def test_double_submit_returns_the_recorded_answer_and_writes_nothing(ctx):
    attempt = attempts.start(make_player(), make_quiz())
    first = attempts.answer(attempt, 1, wrong_choice(attempt, 1))
    db.session.commit()
    again = attempts.answer(attempt, 1, correct_choices(attempt, 1))
    assert again.id == first.id and again.points == 0.0
    assert count(Response) == 1


def test_unique_constraint_stops_a_second_row_for_the_same_question(ctx):
    attempt = attempts.start(make_player(), make_quiz())
    attempts.answer(attempt, 1, wrong_choice(attempt, 1))
    db.session.commit()
    item = attempt.items[0]
    db.session.add(
        Response(
            attempt_id=attempt.id,
            position=1,
            question_id=item.question_id,
            revision_id=item.revision_id,
            chosen=[],
            points=0,
            is_correct=False,
            seconds=0,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ([], "Choose an answer"),
        ([999_999], "not one of this question's options"),
    ],
)
def test_invalid_answers_are_refused(ctx, chosen, message):
    attempt = attempts.start(make_player(), make_quiz())
    with pytest.raises(attempts.InvalidAnswer, match=message):
        attempts.answer(attempt, 1, chosen)
    assert count(Response) == 0


def test_single_question_takes_exactly_one_choice(ctx):
    attempt = attempts.start(make_player(), make_quiz())
    both = [c for c in attempt.items[0].choice_order[:2]]
    with pytest.raises(attempts.InvalidAnswer, match="exactly one"):
        attempts.answer(attempt, 1, both)


def test_question_not_in_attempt(ctx):
    attempt = attempts.start(make_player(), make_quiz())
    with pytest.raises(attempts.QuestionNotInAttempt):
        attempts.answer(attempt, 4, [1])


def test_another_players_attempt_is_not_found(ctx):
    quiz = make_quiz()
    mine = attempts.start(make_player("Me"), quiz)
    other = make_player("Other")
    with pytest.raises(attempts.AttemptNotFound):
        attempts.get_for_player(mine.id, other)
    with pytest.raises(attempts.AttemptNotFound):
        attempts.get_for_player(123456, other)


def test_finished_attempt_refuses_new_answers(ctx):
    attempt = attempts.start(make_player(), make_quiz())
    attempts.answer(attempt, 1, correct_choices(attempt, 1))
    assert attempts.finish(attempt)
    assert not attempts.finish(attempt)  # finishing twice changes nothing
    with pytest.raises(attempts.AttemptClosed):
        attempts.answer(attempt, 2, correct_choices(attempt, 2))
    assert attempt.score == 1.0 and attempt.max_score == 6.0 and not attempt.passed


def test_deadline_refuses_the_answer_and_finishes_with_what_was_answered(ctx):
    quiz = make_quiz("timed", minutes=5)
    attempt = attempts.start(make_player(), quiz)
    assert attempt.deadline - attempt.started_at == timedelta(minutes=5)
    attempts.answer(attempt, 1, correct_choices(attempt, 1))
    late = attempt.deadline + timedelta(seconds=1)
    with pytest.raises(attempts.AttemptClosed, match="Time is up"):
        attempts.answer(attempt, 2, correct_choices(attempt, 2), now=late)
    assert attempt.is_finished
    assert attempt.finished_at == attempt.deadline
    assert attempt.duration_ms == 5 * 60 * 1000
    assert attempt.score == 1.0
    assert count(Response) == 1


def test_starting_again_after_the_deadline_finishes_the_old_attempt(ctx):
    quiz, player = make_quiz("timed", minutes=1), make_player()
    old = attempts.start(player, quiz)
    old.deadline = old.started_at - timedelta(seconds=1)
    assert attempts.is_expired(old)
    new = attempts.start(player, quiz)
    assert new.id != old.id and old.is_finished


def test_unpublished_or_empty_quiz_cannot_start(ctx):
    quiz = make_quiz()
    quiz.is_published = False
    with pytest.raises(attempts.QuizUnavailable):
        attempts.start(make_player(), quiz)


def test_only_one_open_attempt_per_player_and_quiz(ctx):
    quiz, player = make_quiz(), make_player()
    attempts.start(player, quiz)
    db.session.commit()
    db.session.add(Attempt(user_id=player.id, quiz_id=quiz.id, pass_mark=50))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_review_shows_the_revision_asked_even_after_an_edit(ctx):
    from tests.factories import bank_yaml

    quiz, player = make_quiz("alpha"), make_player()
    attempt = attempts.start(player, quiz)
    attempts.answer(attempt, 1, correct_choices(attempt, 1))
    attempts.finish(attempt)
    db.session.commit()
    load_bank(bank_yaml("alpha").replace('"8080"', '"22"'))
    db.session.expire_all()
    review = attempts.review(db.session.get(Attempt, attempt.id))
    assert [c.text for c in review[0].choices] == ["80", "443", "8080"]
    assert review[0].response.points == 1.0
    assert review[1].response is None


def test_fair_quota_gives_every_attempt_the_same_maximum(ctx):
    from types import SimpleNamespace

    revisions = [SimpleNamespace(points=p) for p in [1] * 4 + [2] * 9 + [3] * 4]
    quota = attempts.fair_quota(revisions, 10)
    # Shares 2.35, 5.29 and 2.35: the spare question goes to the larger remainder,
    # and between equal remainders to the higher points value.
    assert quota == {1: 2, 2: 5, 3: 3}
    assert attempts.fair_quota(revisions, 17) == {1: 4, 2: 9, 3: 4}


def test_shuffled_attempts_of_a_quiz_are_worth_the_same(ctx):
    from quiz import banks
    from quiz.config import QUESTIONS_DIR

    banks.sync_banks(banks.parse_files([QUESTIONS_DIR]))
    db.session.commit()
    from quiz.models import Quiz

    for quiz in db.session.scalars(sa.select(Quiz)):
        maxima = {
            attempts.start(
                make_player(f"{quiz.slug[:20]}-{seed}"), quiz, rng=random.Random(seed)
            ).max_score
            for seed in range(8)
        }
        assert len(maxima) == 1, (quiz.slug, maxima)


def test_answers_are_scored_against_the_revision_asked(ctx):
    from tests.factories import bank_yaml

    quiz = make_quiz("alpha")
    attempt = attempts.start(make_player(), quiz)
    asked = correct_choices(attempt, 1)
    # The question changes (443 is no longer marked right) while the attempt is open.
    load_bank(
        bank_yaml("alpha").replace(
            '      - text: "443"\n        correct: true\n      - text: "8080"',
            '      - text: "443"\n      - text: "8080"\n        correct: true',
        )
    )
    assert attempts.answer(attempt, 1, asked).points == 1.0


def test_a_long_untimed_attempt_can_still_finish(ctx):
    attempt = attempts.start(make_player(), make_quiz())
    attempt.started_at -= timedelta(days=40)
    db.session.commit()
    assert attempts.finish(attempt)
    db.session.commit()
    assert attempt.duration_ms > 2**31
    assert (
        db.session.get(BestScore, (attempt.quiz_id, attempt.user_id)).duration_ms
        > 2**31
    )


def test_empty_quiz_cannot_start(ctx):
    quiz = make_quiz()
    for question in quiz.questions:
        question.is_archived = True
    with pytest.raises(attempts.QuizUnavailable, match="no questions"):
        attempts.start(make_player(), quiz)


def test_the_answer_sheet_reads_what_the_attempt_holds(ctx):
    quiz, player = make_quiz(), make_player()
    attempt = attempts.start(player, quiz)
    attempts.answer(attempt, 2, correct_choices(attempt, 2))
    db.session.commit()
    for position in (1, 2, 3, 9):
        sheet = attempts.answer_sheet(attempt.id, player, position)
        assert sheet == attempts.AnswerSheet.of(attempt, position)
        assert sheet.question_count == 3
        assert list(sheet.answers) == [2]
        (response,) = attempt.responses
        assert sheet.answers[2] == (2, response.answered_at, response.points)
    sheet = attempts.answer_sheet(attempt.id, player, 1)
    item = attempt.items[0]
    assert sheet.item(1) == attempts.SheetItem(
        1, item.question_id, item.revision_id, tuple(item.choice_order)
    )
    with pytest.raises(attempts.QuestionNotInAttempt, match="no question 2; it has 3"):
        sheet.item(2)  # a sheet is read for one question
    missing = attempts.answer_sheet(attempt.id, player, 9)
    assert missing.question is None
    with pytest.raises(attempts.QuestionNotInAttempt, match="no question 9; it has 3"):
        missing.item(9)
    with pytest.raises(attempts.AttemptNotFound):
        attempts.answer_sheet(attempt.id, make_player("someone else"), 1)
    with pytest.raises(attempts.AttemptNotFound):
        attempts.answer_sheet(attempt.id + 1000, player, 1)


def test_a_second_record_of_the_same_question_changes_nothing(ctx):
    quiz, player = make_quiz(), make_player()
    attempt = attempts.start(player, quiz)
    db.session.commit()
    first = attempts.answer_sheet(attempt.id, player, 1)
    assert attempts.record_answer(first, 1, correct_choices(attempt, 1)) is True
    again = attempts.answer_sheet(attempt.id, player, 1)
    assert attempts.record_answer(again, 1, wrong_choice(attempt, 1)) is False
    (response,) = db.session.scalars(sa.select(Response)).all()
    assert response.points == 1.0 and response.chosen == correct_choices(attempt, 1)


def test_the_answer_read_as_a_sheet_that_completes_the_attempt_finishes_it(ctx):
    """Answered out of order, through ``answer_sheet``: the attempt finishes with
    the answer that leaves no question unanswered, whatever its position, and
    scores the points held plus the new ones."""
    quiz, player = make_quiz(), make_player()
    attempt = attempts.start(player, quiz)
    attempt_id = attempt.id
    db.session.commit()
    for position, choices in ((3, correct_choices), (1, wrong_choice)):
        sheet = attempts.answer_sheet(attempt_id, player, position)
        assert attempts.record_answer(sheet, position, choices(attempt, position))
        db.session.commit()
        assert db.session.get(Attempt, attempt_id).finished_at is None
    sheet = attempts.answer_sheet(attempt_id, player, 2)
    assert len(sheet.answers) == 2 and sheet.question_count == 3
    assert attempts.record_answer(sheet, 2, correct_choices(attempt, 2))
    db.session.commit()
    db.session.expire_all()
    finished = db.session.get(Attempt, attempt_id)
    held = db.session.scalars(
        sa.select(Response.points).where(Response.attempt_id == attempt_id)
    ).all()
    assert finished.finished_at is not None
    assert finished.score == sum(held) > 0
    assert db.session.get(BestScore, (quiz.id, player.id)).score == finished.score


def test_marking_is_read_once_per_revision(ctx):
    quiz, player = make_quiz(), make_player()
    attempt = attempts.start(player, quiz)
    item = attempts.review_item(attempt, 1)
    rules = attempts.marking(item.revision.id)
    assert rules == attempts.Marking(
        item.revision.type,
        item.revision.points,
        frozenset(c.id for c in item.choices if c.is_correct),
    )
    statements = []

    def note(*_args):
        statements.append(1)

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert attempts.marking(item.revision.id) is rules
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    assert statements == []


def test_each_answer_records_the_seconds_since_the_one_before(ctx):
    quiz, player = make_quiz(), make_player()
    attempt = attempts.start(player, quiz)
    start = attempt.started_at
    attempts.answer(
        attempt, 2, wrong_choice(attempt, 2), now=start + timedelta(seconds=7)
    )
    attempts.answer(
        attempt, 1, correct_choices(attempt, 1), now=start + timedelta(seconds=19.5)
    )
    seconds = {r.position: r.seconds for r in attempt.responses}
    assert seconds == {2: 7.0, 1: 12.5}


def booked(player, quiz) -> dict:
    """What the leaderboards hold for a player on a quiz, read afresh."""
    db.session.expire_all()
    best = db.session.get(BestScore, (quiz.id, player.id))
    total = db.session.get(PlayerTotal, player.id)
    tallies = dict(
        db.session.execute(
            sa.select(ScoreTally.score, ScoreTally.players).where(
                ScoreTally.quiz_id == quiz.id, ScoreTally.players != 0
            )
        ).all()
    )
    return {
        "best": best and (best.attempt_id, best.score, best.duration_ms),
        "total": total and (total.score, total.duration_ms, total.quizzes),
        "tallies": tallies,
    }


def play(player, quiz, rights: list[bool], seconds: int) -> Attempt:
    """An attempt answered in order, each answer ``seconds`` after the one before,
    right or wrong; the last answer finishes it."""
    attempt = attempts.start(player, quiz)
    db.session.commit()
    for position, right in enumerate(rights, start=1):
        choose = correct_choices if right else wrong_choice
        now = attempt.started_at + timedelta(seconds=seconds * position)
        attempts.answer(attempt, position, choose(attempt, position), now=now)
    db.session.commit()
    return attempt


def test_the_finishing_answer_books_the_attempt_its_best_its_tally_and_the_total(ctx):
    quiz, other_quiz, player = make_quiz(), make_quiz("beta"), make_player()
    first = play(player, quiz, [True, False, True], seconds=10)
    assert (first.score, first.passed, first.duration_ms) == (3.0, True, 30_000)
    assert first.finished_at == first.started_at + timedelta(seconds=30)
    assert booked(player, quiz) == {
        "best": (first.id, 3.0, 30_000),
        "total": (3.0, 30_000, 1),
        "tallies": {3.0: 1},
    }
    # Better: it takes the best's place, and its tally.
    better = play(player, quiz, [True, True, True], seconds=5)
    assert booked(player, quiz) == {
        "best": (better.id, 6.0, 15_000),
        "total": (6.0, 15_000, 1),
        "tallies": {6.0: 1},
    }
    # Worse: nothing moves.
    play(player, quiz, [False, False, False], seconds=1)
    assert booked(player, quiz)["best"] == (better.id, 6.0, 15_000)
    # Another quiz adds to the total.
    play(player, other_quiz, [True, False, False], seconds=2)
    assert booked(player, quiz)["total"] == (7.0, 21_000, 2)


def test_an_answer_after_the_deadline_books_what_was_answered_in_time(ctx):
    quiz = make_quiz("timed", minutes=5)
    player = make_player()
    attempt = attempts.start(player, quiz)
    attempts.answer(attempt, 1, correct_choices(attempt, 1))
    late = attempt.deadline + timedelta(minutes=3)
    with pytest.raises(attempts.AttemptClosed):
        attempts.answer(attempt, 2, correct_choices(attempt, 2), now=late)
    db.session.commit()
    assert (attempt.score, attempt.finished_at) == (1.0, attempt.deadline)
    assert attempt.duration_ms == 5 * 60_000
    assert booked(player, quiz) == {
        "best": (attempt.id, 1.0, 300_000),
        "total": (1.0, 300_000, 1),
        "tallies": {1.0: 1},
    }
