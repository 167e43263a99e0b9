import pytest

from quiz.scoring import has_passed, mark, percentage

# Choices 1, 2, 3 are correct in the multiple cases; 4 and 5 are wrong.
CASES = [
    # type, points, correct, chosen, expected points, expected correct
    ("single", 2, {1}, {1}, 2.0, True),
    ("single", 2, {1}, {2}, 0.0, False),
    ("single", 2, {1}, set(), 0.0, False),
    ("true_false", 1, {7}, {7}, 1.0, True),
    ("true_false", 1, {7}, {8}, 0.0, False),
    ("multiple", 3, {1, 2, 3}, {1, 2, 3}, 3.0, True),
    ("multiple", 3, {1, 2, 3}, {1, 2}, 2.0, False),
    ("multiple", 3, {1, 2, 3}, {1}, 1.0, False),
    ("multiple", 3, {1, 2, 3}, {1, 2, 4}, 1.0, False),
    ("multiple", 3, {1, 2, 3}, {1, 4}, 0.0, False),
    ("multiple", 3, {1, 2, 3}, {1, 4, 5}, 0.0, False),  # floored at 0
    ("multiple", 3, {1, 2, 3}, {4, 5}, 0.0, False),
    ("multiple", 3, {1, 2, 3}, {1, 2, 3, 4}, 2.0, False),
    ("multiple", 2, {1, 2, 3}, {1}, 0.6667, False),
    ("multiple", 2, {1, 2}, {1, 2}, 2.0, True),
    ("multiple", 2, {1, 2}, set(), 0.0, False),
]


@pytest.mark.parametrize(
    ("qtype", "points", "correct", "chosen", "score", "right"), CASES
)
def test_mark(qtype, points, correct, chosen, score, right):
    marked = mark(qtype, points, correct, chosen)
    assert marked.points == pytest.approx(score, abs=1e-4)
    assert marked.is_correct is right


@pytest.mark.parametrize(
    ("score", "max_score", "pass_mark", "passed"),
    [(7, 10, 70, True), (6.9999, 10, 70, False), (0, 0, 0, True), (10, 10, 100, True)],
)
def test_has_passed(score, max_score, pass_mark, passed):
    assert has_passed(score, max_score, pass_mark) is passed


def test_percentage_of_nothing_is_zero():
    assert percentage(0, 0) == 0.0
    assert percentage(1, 4) == 25.0
