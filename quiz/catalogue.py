"""The catalogue: published quizzes with what a player needs to choose one.

The list of published quizzes and their question counts changes only when someone
edits content, so each process keeps a snapshot of it and reads it again when the
content version (one row, raised by any flush that changes content) has moved. The player's own part, best scores
and open attempts, is one query per page.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .cache import cached
from .extensions import db
from .models import (
    Attempt,
    BestScore,
    Choice,
    ContentVersion,
    Question,
    QuestionRevision,
    Quiz,
    User,
    utcnow,
)
from .reads import HotRead


@dataclass(frozen=True)
class QuizInfo:
    """What a card shows of a quiz (a snapshot: safe to keep between requests)."""

    id: int
    slug: str
    title: str
    theme: str
    description: str
    questions_per_attempt: int | None
    time_limit_minutes: int
    pass_mark: int


@dataclass(frozen=True)
class Best:
    score: float
    max_score: float


@dataclass(frozen=True)
class Card:
    quiz: QuizInfo | Quiz
    question_count: int
    best: Best | None
    open_attempt_id: int | None

    @property
    def per_attempt(self) -> int:
        return min(
            self.quiz.questions_per_attempt or self.question_count, self.question_count
        )


def cards(player: User | None) -> list[Card]:
    """Every published quiz with questions, by title, with the player's best score
    and open attempt."""
    published = cached(("catalogue", _content_stamp()), _published)
    bests, open_ids = _player_part(player, [quiz.id for quiz, _ in published])
    return [
        Card(quiz, count, bests.get(quiz.id), open_ids.get(quiz.id))
        for quiz, count in published
    ]


def card(quiz: Quiz, player: User | None) -> Card:
    counts = _question_counts([quiz.id])
    bests, open_ids = _player_part(player, [quiz.id])
    return Card(quiz, counts.get(quiz.id, 0), bests.get(quiz.id), open_ids.get(quiz.id))


# Built once: the catalogue runs these on every view, and building a statement costs
# more than running it.
_STAMP = HotRead(sa.select(ContentVersion.version).where(ContentVersion.id == 1))
# All the player's best scores and open attempts (a player has at most one of each
# per quiz); the caller keeps those of the quizzes it shows.
_PLAYER_PART = HotRead(
    sa.union_all(
        sa.select(
            BestScore.quiz_id,
            BestScore.score,
            BestScore.max_score,
            sa.null().label("attempt_id"),
        ).where(BestScore.user_id == sa.bindparam("user_id")),
        sa.select(Attempt.quiz_id, sa.null(), sa.null(), Attempt.id).where(
            Attempt.user_id == sa.bindparam("user_id"),
            Attempt.finished_at.is_(None),
            sa.or_(Attempt.deadline.is_(None), Attempt.deadline > sa.bindparam("now")),
        ),
    )
)


def _content_stamp() -> int | None:
    """The content version: it changes with any quiz, question, revision or choice."""
    db.session.flush()  # a pending change raises it (see below) before it is read
    return _STAMP.scalar()


CONTENT = (Quiz, Question, QuestionRevision, Choice)


@sa.event.listens_for(db.session, "before_flush")
def _count_content_changes(session, _flush_context, _instances) -> None:
    """Raise the content version in the transaction that changes content, so every
    server's cached catalogue goes stale when it commits."""
    changed = (
        any(isinstance(obj, CONTENT) for obj in session.new)
        or any(isinstance(obj, CONTENT) for obj in session.deleted)
        or any(
            isinstance(obj, CONTENT) and session.is_modified(obj)
            for obj in session.dirty
        )
    )
    if changed:
        session.connection().execute(_BUMP)


_BUMP = (
    sa.update(ContentVersion)
    .where(ContentVersion.id == 1)
    .values(version=ContentVersion.version + 1)
)


def _published() -> list[tuple[QuizInfo, int]]:
    rows = db.session.execute(
        sa.select(
            Quiz.id,
            Quiz.slug,
            Quiz.title,
            Quiz.theme,
            Quiz.description,
            Quiz.questions_per_attempt,
            Quiz.time_limit_minutes,
            Quiz.pass_mark,
        )
        .where(Quiz.is_published.is_(True))
        .order_by(Quiz.title)
    ).all()
    counts = _question_counts([row.id for row in rows])
    return [(QuizInfo(*row), counts[row.id]) for row in rows if counts.get(row.id)]


def _question_counts(quiz_ids: list[int]) -> dict[int, int]:
    return dict(
        db.session.execute(
            sa.select(Question.quiz_id, sa.func.count())
            .where(Question.quiz_id.in_(quiz_ids), Question.is_archived.is_(False))
            .group_by(Question.quiz_id)
        ).all()
    )


def _player_part(
    player: User | None, quiz_ids: list[int]
) -> tuple[dict[int, Best], dict[int, int]]:
    """The player's best scores and open (not timed-out) attempts, in one query."""
    if player is None or not quiz_ids:
        return {}, {}
    wanted = set(quiz_ids)
    best, open_ids = {}, {}
    for quiz_id, score, max_score, attempt_id in _PLAYER_PART.all(
        user_id=player.id, now=utcnow()
    ):
        if quiz_id not in wanted:
            continue
        if attempt_id is None:
            best[quiz_id] = Best(score, max_score)
        else:
            open_ids[quiz_id] = attempt_id
    return best, open_ids
