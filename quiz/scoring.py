"""Scoring rules, as pure functions.

- ``single`` and ``true_false``: full points when the one correct choice is picked,
  otherwise 0.
- ``multiple``: each correct choice picked earns points/k and each wrong choice picked
  costs points/k (k = number of correct choices); the total is floored at 0, so
  picking exactly the correct set earns full points.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Marked:
    """The outcome of one answer."""

    points: float
    is_correct: bool


def mark(
    question_type: str, points: int, correct: Collection[int], chosen: Collection[int]
) -> Marked:
    """Score one answer: ``correct`` and ``chosen`` are sets of choice ids."""
    correct, chosen = set(correct), set(chosen)
    is_correct = bool(chosen) and chosen == correct
    if question_type != "multiple":
        return Marked(float(points) if is_correct else 0.0, is_correct)
    if is_correct:
        return Marked(float(points), True)
    share = points / len(correct)
    hits = len(chosen & correct)
    misses = len(chosen - correct)
    return Marked(round(max(0.0, (hits - misses) * share), 4), False)


def percentage(score: float, max_score: float) -> float:
    """Score as a percentage of the maximum (0 when there is nothing to score)."""
    return 100.0 * score / max_score if max_score else 0.0


def has_passed(score: float, max_score: float, pass_mark: int) -> bool:
    """Whether a score reaches the pass mark (a percentage)."""
    return percentage(score, max_score) + 1e-9 >= pass_mark
