"""The catalogue: published quizzes with what a player needs to choose one.

The list of published quizzes and their question counts changes only when someone
edits content, so each process keeps a snapshot of it and reads it again when the
content version (one row, raised by any flush that changes content) has moved. That
version and the player's own part, best scores and open attempts, are one query per
page; on PostgreSQL none while their tables have not changed (``quiz.changes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import g, has_request_context

from .cache import cached
from .changes import kept
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
    stamp, part = _stamp_and_player_part(player)
    published = cached(("catalogue", stamp), _published)
    bests, open_ids = _mine(part, {quiz.id for quiz, _ in published})
    return [
        Card(quiz, count, bests.get(quiz.id), open_ids.get(quiz.id))
        for quiz, count in published
    ]


def card(quiz: Quiz, player: User | None) -> Card:
    counts = _question_counts([quiz.id])
    _, part = _stamp_and_player_part(player)
    bests, open_ids = _mine(part, {quiz.id})
    return Card(quiz, counts.get(quiz.id, 0), bests.get(quiz.id), open_ids.get(quiz.id))


# Built once, and run on every view: the content version on a row of its own, then
# all the player's best scores and unfinished attempts (at most one of each per
# quiz; the caller keeps those of the quizzes it shows and the attempts still
# open). One round trip for the whole page, and none while it is kept
# (``quiz.changes``).
_NO_ID = sa.cast(sa.null(), sa.Integer)  # typed: PostgreSQL matches UNION types
_NO_SCORE = sa.cast(sa.null(), sa.Float)
_NO_TIME = sa.cast(sa.null(), Attempt.deadline.type)
_STAMP_AND_PLAYER_PART = HotRead(
    sa.union_all(
        sa.select(
            ContentVersion.version,
            _NO_ID.label("quiz_id"),
            _NO_SCORE.label("score"),
            _NO_SCORE.label("max_score"),
            _NO_ID.label("attempt_id"),
            _NO_TIME.label("deadline"),
        ).where(ContentVersion.id == 1),
        sa.select(
            _NO_ID,
            BestScore.quiz_id,
            BestScore.score,
            BestScore.max_score,
            _NO_ID,
            _NO_TIME,
        ).where(BestScore.user_id == sa.bindparam("user_id")),
        sa.select(
            _NO_ID, Attempt.quiz_id, _NO_SCORE, _NO_SCORE, Attempt.id, Attempt.deadline
        ).where(
            Attempt.user_id == sa.bindparam("user_id"), Attempt.finished_at.is_(None)
        ),
    )
)
# What the rows above come from: kept until one of them changes.
_PART_TABLES = ("content_version", "best_score", "attempt")


def _stamp_and_player_part(player: User | None) -> tuple[int | None, list]:
    """The content version, which changes with any quiz, question, revision or
    choice, and the player's best scores and open (not timed-out) attempts."""
    user_id = None if player is None else player.id  # None matches no row
    if has_request_context() and g.get("read_only_page"):
        rows = kept(
            ("catalogue part", user_id),
            _PART_TABLES,
            lambda: _STAMP_AND_PLAYER_PART.all(user_id=user_id),
        )
    else:
        db.session.flush()  # a pending change raises the version (see below) first
        rows = _STAMP_AND_PLAYER_PART.all(user_id=user_id)
    now = utcnow()
    stamp = next((row.version for row in rows if row.quiz_id is None), None)
    return stamp, [
        row
        for row in rows
        if row.quiz_id is not None and (row.deadline is None or row.deadline > now)
    ]


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


def _mine(part: list, quiz_ids: set[int]) -> tuple[dict[int, Best], dict[int, int]]:
    """The player's best scores and open attempts on these quizzes, by quiz."""
    best, open_ids = {}, {}
    for row in part:
        if row.quiz_id not in quiz_ids:
            continue
        if row.attempt_id is None:
            best[row.quiz_id] = Best(row.score, row.max_score)
        else:
            open_ids[row.quiz_id] = row.attempt_id
    return best, open_ids
