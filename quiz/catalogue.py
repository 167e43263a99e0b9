"""The catalogue: published quizzes with what a player needs to choose one."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .extensions import db
from .models import Attempt, BestScore, Question, Quiz, User, utcnow


@dataclass(frozen=True)
class Card:
    quiz: Quiz
    question_count: int
    best: BestScore | None
    open_attempt_id: int | None

    @property
    def per_attempt(self) -> int:
        return min(
            self.quiz.questions_per_attempt or self.question_count, self.question_count
        )


def cards(player: User | None) -> list[Card]:
    """Every published quiz, by title, with the player's best score and open attempt."""
    quizzes = db.session.scalars(
        sa.select(Quiz).where(Quiz.is_published.is_(True)).order_by(Quiz.title)
    ).all()
    return [card for card in _cards(quizzes, player) if card.question_count]


def card(quiz: Quiz, player: User | None) -> Card:
    return _cards([quiz], player)[0]


def _cards(quizzes: list[Quiz], player: User | None) -> list[Card]:
    ids = [q.id for q in quizzes]
    counts = dict(
        db.session.execute(
            sa.select(Question.quiz_id, sa.func.count())
            .where(Question.quiz_id.in_(ids), Question.is_archived.is_(False))
            .group_by(Question.quiz_id)
        ).all()
    )
    best, open_ids = {}, {}
    if player is not None:
        best = {
            b.quiz_id: b
            for b in db.session.scalars(
                sa.select(BestScore).where(
                    BestScore.user_id == player.id, BestScore.quiz_id.in_(ids)
                )
            )
        }
        open_ids = dict(
            db.session.execute(
                sa.select(Attempt.quiz_id, Attempt.id).where(
                    Attempt.user_id == player.id,
                    Attempt.quiz_id.in_(ids),
                    Attempt.finished_at.is_(None),
                    sa.or_(Attempt.deadline.is_(None), Attempt.deadline > utcnow()),
                )
            ).all()
        )
    return [
        Card(q, counts.get(q.id, 0), best.get(q.id), open_ids.get(q.id))
        for q in quizzes
    ]
