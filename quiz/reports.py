"""What trainers export and analyse: attempts and responses, filtered, as row streams.

Rows come from the database in batches (``yield_per``), so an export of a million
attempts runs in constant memory. Nothing secret is ever selected: no password
hashes, session tokens or settings.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from . import scoring, stats
from .extensions import db
from .models import (
    Attempt,
    Choice,
    Cohort,
    CohortMember,
    Question,
    QuestionRevision,
    Quiz,
    Response,
    User,
)

BATCH = 1000

ATTEMPT_HEADER = (
    "attempt",
    "display name",
    "email",
    "cohorts",
    "quiz",
    "started",
    "finished",
    "duration (s)",
    "score",
    "maximum",
    "percentage",
    "passed",
)
RESPONSE_HEADER = (
    "attempt",
    "display name",
    "quiz",
    "question id",
    "revision",
    "chosen options",
    "correct",
    "points",
    "seconds",
)


@dataclass(frozen=True)
class Filters:
    """Which attempts a report covers: a cohort's members, a quiz, a start-date range.

    Plain values, not rows: an export streams after the request has committed.
    """

    cohort_id: int | None = None
    cohort_name: str | None = None
    quiz_id: int | None = None
    quiz_slug: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # For a trainer: only these quizzes (their cohort's assignments), and only the
    # names of cohorts this trainer owns in the "cohorts" column.
    quiz_ids: tuple[int, ...] | None = None
    cohort_owner_id: int | None = None

    @classmethod
    def of(
        cls,
        cohort: Cohort | None = None,
        quiz: Quiz | None = None,
        since=None,
        until=None,
        **limits,
    ) -> Filters:
        return cls(
            cohort_id=cohort.id if cohort else None,
            cohort_name=cohort.name if cohort else None,
            quiz_id=quiz.id if quiz else None,
            quiz_slug=quiz.slug if quiz else None,
            since=since,
            until=until,
            **limits,
        )

    @property
    def scope(self) -> str | None:
        """What the export is of, for its file name."""
        return self.cohort_name or self.quiz_slug

    def describe(self) -> dict:
        return {
            "cohort": self.cohort_name,
            "quiz": self.quiz_slug,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def _attempt_conditions(filters: Filters, finished_only: bool = False) -> list:
    conditions = []
    if filters.cohort_id is not None:
        conditions.append(
            Attempt.user_id.in_(
                sa.select(CohortMember.user_id).where(
                    CohortMember.cohort_id == filters.cohort_id
                )
            )
        )
    if filters.quiz_id is not None:
        conditions.append(Attempt.quiz_id == filters.quiz_id)
    if filters.quiz_ids is not None:
        conditions.append(Attempt.quiz_id.in_(filters.quiz_ids))
    if filters.since is not None:
        conditions.append(Attempt.started_at >= filters.since)
    if filters.until is not None:
        conditions.append(Attempt.started_at < filters.until)
    if finished_only:
        conditions.append(Attempt.finished_at.is_not(None))
    return conditions


def _cohort_names(filters: Filters) -> dict[int, str]:
    """Each player's cohort names, joined: one query instead of one per row."""
    statement = sa.select(CohortMember.user_id, Cohort.name).join(
        Cohort, Cohort.id == CohortMember.cohort_id
    )
    if filters.cohort_id is not None:
        statement = statement.where(
            CohortMember.user_id.in_(
                sa.select(CohortMember.user_id).where(
                    CohortMember.cohort_id == filters.cohort_id
                )
            )
        )
    if filters.cohort_owner_id is not None:
        statement = statement.where(Cohort.owner_id == filters.cohort_owner_id)
    names: dict[int, list[str]] = {}
    for user_id, name in db.session.execute(statement.order_by(Cohort.name)):
        names.setdefault(user_id, []).append(name)
    return {user_id: "; ".join(values) for user_id, values in names.items()}


class utc_text(sa.sql.functions.GenericFunction):
    """A UTC timestamp as export text, ``2026-11-27T09:30:15Z``, made by the database.

    The same text :func:`quiz.exports.neutralise` gives the datetime, without building
    a datetime per cell. Other databases get the column itself, which the exports
    format in Python.
    """

    type = sa.String()
    inherit_cache = True


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element, compiler, **kw) -> str:
    # Stored as naive UTC text; strftime cuts the fraction of a second like isoformat.
    return f"strftime('%Y-%m-%dT%H:%M:%SZ', {compiler.process(element.clauses, **kw)})"


@compiles(utc_text, "postgresql")
def _utc_text_postgresql(element, compiler, **kw) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(timezone('UTC', {column}), 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


@compiles(utc_text)
def _utc_text_default(element, compiler, **kw) -> str:
    return compiler.process(element.clauses, **kw)


def attempt_statement(filters: Filters) -> sa.Select:
    """The attempts export's query, oldest first; :func:`attempt_rows` shapes its rows."""
    return (
        sa.select(
            Attempt.id,
            Attempt.user_id,
            User.display_name,
            User.email,
            Quiz.title,
            utc_text(Attempt.started_at),
            utc_text(Attempt.finished_at),
            Attempt.duration_ms,
            Attempt.score,
            Attempt.max_score,
            Attempt.passed,
        )
        .join(User, User.id == Attempt.user_id)
        .join(Quiz, Quiz.id == Attempt.quiz_id)
        .where(*_attempt_conditions(filters))
        .order_by(Attempt.started_at, Attempt.id)
    )


def attempt_rows(filters: Filters) -> Iterator[tuple]:
    """One row per attempt (ATTEMPT_HEADER), oldest first; times as UTC text."""
    cohorts = _cohort_names(filters)
    # Core rows on the session's connection: no ORM result processing per row.
    result = db.session.connection().execute(
        attempt_statement(filters), execution_options={"yield_per": BATCH}
    )
    percentage = scoring.percentage
    for (
        attempt_id,
        user_id,
        name,
        email,
        title,
        started,
        finished,
        duration,
        score,
        maximum,
        passed,
    ) in itertools.chain.from_iterable(result.partitions()):
        done = finished is not None
        yield (
            attempt_id,
            name,
            email,
            cohorts.get(user_id, ""),
            title,
            started,
            finished,
            round(duration / 1000, 1) if duration is not None else None,
            score if done else None,
            maximum,
            round(percentage(score, maximum), 1) if done else None,
            passed if done else None,
        )


def response_rows(filters: Filters) -> Iterator[tuple]:
    """One row per answer (RESPONSE_HEADER), by attempt and question order."""
    texts = _choice_texts(filters)
    statement = (
        sa.select(
            Response.attempt_id,
            User.display_name,
            Quiz.slug,
            Question.slug,
            QuestionRevision.number,
            Response.chosen,
            Response.is_correct,
            Response.points,
            Response.seconds,
        )
        .join(Attempt, Attempt.id == Response.attempt_id)
        .join(User, User.id == Attempt.user_id)
        .join(Quiz, Quiz.id == Attempt.quiz_id)
        .join(Question, Question.id == Response.question_id)
        .join(QuestionRevision, QuestionRevision.id == Response.revision_id)
        .where(*_attempt_conditions(filters))
        .order_by(Response.attempt_id, Response.position)
        .execution_options(yield_per=BATCH)
    )
    for (
        attempt_id,
        name,
        quiz,
        question,
        revision,
        chosen,
        correct,
        points,
        seconds,
    ) in db.session.execute(statement):
        picked = " | ".join(
            texts.get(choice_id, f"#{choice_id}") for choice_id in chosen
        )
        yield (
            attempt_id,
            name,
            quiz,
            question,
            revision,
            picked,
            correct,
            points,
            seconds,
        )


def _choice_texts(filters: Filters) -> dict[int, str]:
    statement = sa.select(Choice.id, Choice.text)
    if filters.quiz_id is not None:
        statement = (
            statement.join(QuestionRevision, QuestionRevision.id == Choice.revision_id)
            .join(Question, Question.id == QuestionRevision.question_id)
            .where(Question.quiz_id == filters.quiz_id)
        )
    return dict(db.session.execute(statement).all())


# The exports trainers can download: name -> (header, row function).
EXPORTS = {
    "attempts": (ATTEMPT_HEADER, attempt_rows),
    "responses": (RESPONSE_HEADER, response_rows),
}


# --- statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class QuizStatistics:
    quiz: Quiz
    summary: stats.Summary
    histogram: list[int]
    items: list[stats.ItemStats]
    questions: dict[int, Question]
    choice_texts: dict[int, str]


def quiz_statistics(filters: Filters) -> QuizStatistics:
    """Score summary, histogram and item analysis of the finished attempts in scope."""
    quiz = db.session.get(Quiz, filters.quiz_id)
    conditions = _attempt_conditions(filters, finished_only=True)
    scores = {
        attempt_id: stats.AttemptScore(attempt_id, score, maximum)
        for attempt_id, score, maximum in db.session.execute(
            sa.select(Attempt.id, Attempt.score, Attempt.max_score).where(*conditions)
        )
    }
    responses = (
        stats.ItemResponse(
            attempt_id, question_id, points, maximum, tuple(chosen), seconds
        )
        for attempt_id, question_id, points, maximum, chosen, seconds in db.session.execute(
            sa.select(
                Response.attempt_id,
                Response.question_id,
                Response.points,
                QuestionRevision.points,
                Response.chosen,
                Response.seconds,
            )
            .join(Attempt, Attempt.id == Response.attempt_id)
            .join(QuestionRevision, QuestionRevision.id == Response.revision_id)
            .where(*conditions)
            .order_by(Response.position)
            .execution_options(yield_per=BATCH)
        )
    )
    items = stats.item_analysis(responses, scores)
    percentages = [scoring.percentage(s.score, s.max_score) for s in scores.values()]
    questions = {
        q.id: q
        for q in db.session.scalars(
            sa.select(Question).where(Question.quiz_id == quiz.id)
        )
    }
    return QuizStatistics(
        quiz=quiz,
        summary=stats.summarise(percentages),
        histogram=stats.histogram(percentages),
        items=items,
        questions=questions,
        choice_texts=_choice_texts(filters),
    )


STATISTICS_HEADER = (
    "question id",
    "question",
    "answers",
    "facility",
    "discrimination",
    "mean seconds",
    "flags",
)


def statistics_rows(report: QuizStatistics) -> Iterator[tuple]:
    for item in report.items:
        question = report.questions.get(item.question_id)
        yield (
            question.slug if question else item.question_id,
            question.current.prompt if question else "",
            item.answers,
            _rounded(item.facility),
            _rounded(item.discrimination),
            _rounded(item.mean_seconds, 1),
            "; ".join(item.flags),
        )


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
