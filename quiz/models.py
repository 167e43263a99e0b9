"""Database tables.

A question's text lives in revisions: an attempt records the revision it asked, so
editing a question never changes a recorded score or a past review.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import scoring
from .extensions import db

ROLES = ("player", "trainer", "admin")
QUESTION_TYPES = ("single", "multiple", "true_false")
DIFFICULTIES = ("easy", "medium", "hard")


# 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already (and these columns were
# created as INTEGER there).
BIG_INTEGER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def new_session_token() -> str:
    return secrets.token_hex(16)


class User(UserMixin, db.Model):
    """A player: a guest (display name only) or an account (email and password)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(sa.String(40))
    email: Mapped[str | None] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(10), default="player")
    is_guest: Mapped[bool] = mapped_column(default=False)
    is_disabled: Mapped[bool] = mapped_column(default=False)
    # Part of the id kept in session and remember-me cookies: changing it signs the
    # user out everywhere (sign-out, password change, disabling).
    session_token: Mapped[str] = mapped_column(sa.String(32), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.display_name!r}>"

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:
        return not self.is_disabled

    def has_role(self, role: str) -> bool:
        """Whether the user holds ``role`` or a higher one (player < trainer < admin)."""
        return not self.is_guest and ROLES.index(self.role) >= ROLES.index(role)


class Quiz(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    theme: Mapped[str] = mapped_column(sa.String(60))
    description: Mapped[str] = mapped_column(sa.Text)
    questions_per_attempt: Mapped[int | None]
    shuffle: Mapped[bool] = mapped_column(default=True)
    time_limit_minutes: Mapped[int] = mapped_column(default=0)
    pass_mark: Mapped[int] = mapped_column(default=70)
    is_published: Mapped[bool] = mapped_column(default=True)
    is_archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )
    # Goes up whenever a best score on this quiz changes: cached standings of an
    # older version are stale, on every app server.
    board_version: Mapped[int] = mapped_column(default=0, server_default="0")

    questions: Mapped[list[Question]] = relationship(
        back_populates="quiz", order_by="Question.position"
    )

    def __repr__(self) -> str:
        return f"<Quiz {self.slug}>"


class Question(db.Model):
    """A stable question; its content is in ``revisions``, the live one is ``revision``."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    quiz_id: Mapped[int] = mapped_column(sa.ForeignKey("quiz.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    revision: Mapped[int] = mapped_column(default=1)
    is_archived: Mapped[bool] = mapped_column(default=False)

    quiz: Mapped[Quiz] = relationship(back_populates="questions")
    revisions: Mapped[list[QuestionRevision]] = relationship(
        back_populates="question", order_by="QuestionRevision.number"
    )

    @property
    def current(self) -> QuestionRevision:
        return next(r for r in self.revisions if r.number == self.revision)


class QuestionRevision(db.Model):
    __table_args__ = (sa.UniqueConstraint("question_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(sa.ForeignKey("question.id"))
    number: Mapped[int]
    type: Mapped[str] = mapped_column(sa.String(12))
    prompt: Mapped[str] = mapped_column(sa.Text)
    explanation: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.Text)
    difficulty: Mapped[str] = mapped_column(sa.String(6))
    points: Mapped[int]
    tags: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    question: Mapped[Question] = relationship(back_populates="revisions")
    choices: Mapped[list[Choice]] = relationship(
        back_populates="revision", order_by="Choice.position"
    )


class Choice(db.Model):
    __table_args__ = (sa.UniqueConstraint("revision_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(sa.ForeignKey("question_revision.id"))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(sa.Text)
    is_correct: Mapped[bool] = mapped_column(default=False)

    revision: Mapped[QuestionRevision] = relationship(back_populates="choices")


# At most one open attempt per player and quiz, even when two starts race.
OPEN_ATTEMPT_INDEX = "uq_attempt_open"


class Attempt(db.Model):
    __table_args__ = (
        sa.Index(
            OPEN_ATTEMPT_INDEX,
            "user_id",
            "quiz_id",
            unique=True,
            sqlite_where=sa.text("finished_at IS NULL"),
            postgresql_where=sa.text("finished_at IS NULL"),
        ),
        sa.Index("ix_attempt_quiz_finished", "quiz_id", "finished_at"),
        # Open attempts with a time limit, by deadline: those whose time is up.
        sa.Index(
            "ix_attempt_open_deadline",
            "deadline",
            sqlite_where=sa.text("finished_at IS NULL AND deadline IS NOT NULL"),
            postgresql_where=sa.text("finished_at IS NULL AND deadline IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    quiz_id: Mapped[int] = mapped_column(sa.ForeignKey("quiz.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score: Mapped[float] = mapped_column(default=0.0)
    max_score: Mapped[float] = mapped_column(default=0.0)
    duration_ms: Mapped[int | None] = mapped_column(BIG_INTEGER)
    pass_mark: Mapped[int]
    passed: Mapped[bool | None]

    user: Mapped[User] = relationship()
    quiz: Mapped[Quiz] = relationship()
    items: Mapped[list[AttemptItem]] = relationship(
        back_populates="attempt", order_by="AttemptItem.position"
    )
    responses: Mapped[list[Response]] = relationship(back_populates="attempt")

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None

    @property
    def percentage(self) -> float:
        return scoring.percentage(self.score, self.max_score)


class AttemptItem(db.Model):
    """One question drawn for an attempt: its place, its revision, its choice order."""

    __table_args__ = (sa.UniqueConstraint("attempt_id", "question_id"),)

    attempt_id: Mapped[int] = mapped_column(
        sa.ForeignKey("attempt.id"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(sa.ForeignKey("question.id"))
    revision_id: Mapped[int] = mapped_column(sa.ForeignKey("question_revision.id"))
    choice_order: Mapped[list[int]] = mapped_column(sa.JSON)

    attempt: Mapped[Attempt] = relationship(back_populates="items")
    revision: Mapped[QuestionRevision] = relationship()


class Response(db.Model):
    """A player's answer to one question of an attempt; at most one per question."""

    __table_args__ = (sa.UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(sa.ForeignKey("attempt.id"))
    position: Mapped[int]
    question_id: Mapped[int] = mapped_column(sa.ForeignKey("question.id"), index=True)
    revision_id: Mapped[int] = mapped_column(sa.ForeignKey("question_revision.id"))
    chosen: Mapped[list[int]] = mapped_column(sa.JSON)
    points: Mapped[float]
    is_correct: Mapped[bool]
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seconds: Mapped[float]

    attempt: Mapped[Attempt] = relationship(back_populates="responses")


class BestScore(db.Model):
    """Each player's best finished attempt per quiz: the per-quiz leaderboard."""

    __table_args__ = (
        sa.Index(
            "ix_best_score_rank",
            "quiz_id",
            sa.text("score DESC"),
            "duration_ms",
            "finished_at",
            "user_id",
        ),
    )

    quiz_id: Mapped[int] = mapped_column(sa.ForeignKey("quiz.id"), primary_key=True)
    # Indexed on its own too: a player's total reads their best scores on every quiz.
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user.id"), primary_key=True, index=True
    )
    attempt_id: Mapped[int] = mapped_column(sa.ForeignKey("attempt.id"))
    score: Mapped[float]
    max_score: Mapped[float]
    duration_ms: Mapped[int] = mapped_column(BIG_INTEGER)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ScoreTally(db.Model):
    """How many players have each best score on a quiz: a rank is then a sum over a
    few score values plus a count of the ties, whatever the number of players."""

    quiz_id: Mapped[int] = mapped_column(sa.ForeignKey("quiz.id"), primary_key=True)
    score: Mapped[float] = mapped_column(primary_key=True)
    players: Mapped[int] = mapped_column(default=0)


class ContentVersion(db.Model):
    """One row whose ``version`` goes up whenever a quiz, question, revision or choice
    changes: cached copies of the catalogue made under an older version are stale."""

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


# The row exists from the start, also in databases made by create_all (tests).
sa.event.listen(
    ContentVersion.__table__,
    "after_create",
    sa.DDL("INSERT INTO content_version (id, version) VALUES (1, 0)"),
)


class PlayerTotal(db.Model):
    """Each player's best scores summed over quizzes: the overall leaderboard."""

    __table_args__ = (
        sa.Index(
            "ix_player_total_rank",
            sa.text("score DESC"),
            "duration_ms",
            "finished_at",
            "user_id",
        ),
    )

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), primary_key=True)
    score: Mapped[float] = mapped_column(default=0.0)
    duration_ms: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    quizzes: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


def new_join_code() -> str:
    # Unambiguous letters and digits (no 0/O, 1/I/L), easy to read out in a classroom.
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


class Cohort(db.Model):
    """A trainer's group of learners, joined with a code."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    join_code: Mapped[str] = mapped_column(
        sa.String(16), unique=True, default=new_join_code
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[User] = relationship()
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="cohort", order_by="Assignment.id", cascade="all, delete-orphan"
    )


class CohortMember(db.Model):
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohort.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user.id"), primary_key=True, index=True
    )
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()
    cohort: Mapped[Cohort] = relationship()


class Assignment(db.Model):
    """A quiz a cohort is asked to complete, optionally by a due date."""

    __table_args__ = (sa.UniqueConstraint("cohort_id", "quiz_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(sa.ForeignKey("cohort.id"))
    quiz_id: Mapped[int] = mapped_column(sa.ForeignKey("quiz.id"))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cohort: Mapped[Cohort] = relationship(back_populates="assignments")
    quiz: Mapped[Quiz] = relationship()


class AuditEvent(db.Model):
    """Who changed what in admin, and when."""

    __table_args__ = (sa.Index("ix_audit_event_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(40), index=True)
    target_type: Mapped[str] = mapped_column(sa.String(20))
    target_id: Mapped[str] = mapped_column(sa.String(64))
    summary: Mapped[str] = mapped_column(sa.String(300))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)

    actor: Mapped[User | None] = relationship()


class BankUpload(db.Model):
    """An uploaded bank file waiting for an admin to confirm the import."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Autogenerate cannot compare indexes with an expression (``score DESC``); the
# migrations create these by hand, so comparisons leave them out.
EXPRESSION_INDEXES = frozenset({"ix_best_score_rank", "ix_player_total_rank"})


def include_in_migrations(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic ``include_object`` hook: skip the hand-made expression indexes."""
    return not (type_ == "index" and name in EXPRESSION_INDEXES)
