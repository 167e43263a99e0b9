"""The attempt lifecycle: start (draw and shuffle), answer, finish, expire.

Functions add and flush; the caller commits. Every function that changes an attempt
first locks its row, so two racing submits of the same answer are serialised: the
second sees the first one's response and returns it instead of writing another.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from . import leaderboard, scoring, sqlite
from .cache import cached
from .extensions import db
from .models import (
    Attempt,
    AttemptItem,
    Choice,
    Question,
    QuestionRevision,
    Quiz,
    Response,
    User,
    utcnow,
)
from .reads import HotRead, HotWrite, execute_core, read_together

log = logging.getLogger("quiz.attempts")


class AttemptError(Exception):
    """Base class: an attempt operation was refused; the message says why."""


class AttemptNotFound(AttemptError):
    """No such attempt for this player (another player's attempt looks the same)."""


class AttemptClosed(AttemptError):
    """The attempt is finished or its time is up; no more answers."""


class QuestionNotInAttempt(AttemptError):
    """The question number is not part of this attempt."""


class InvalidAnswer(AttemptError):
    """The submitted choices do not fit the question."""


class QuizUnavailable(AttemptError):
    """The quiz does not exist, is unpublished, or has no questions."""


@dataclass(frozen=True)
class ReviewItem:
    """One question of an attempt as it was asked, with the answer given (if any)."""

    position: int
    revision: QuestionRevision
    choices: list[Choice]
    response: Response | None

    @property
    def choice_ids(self) -> list[int]:
        return [c.id for c in self.choices]


# --- starting ---------------------------------------------------------------------


def open_attempt(user: User, quiz: Quiz, *, lock: bool = False) -> Attempt | None:
    """The player's unfinished attempt at this quiz, if any (locked with ``lock``:
    on PostgreSQL, one a sweep is finishing meanwhile is then no longer open)."""
    statement = sa.select(Attempt).where(
        Attempt.user_id == user.id,
        Attempt.quiz_id == quiz.id,
        Attempt.finished_at.is_(None),
    )
    if lock:
        statement = statement.with_for_update().execution_options(
            populate_existing=True
        )
    return db.session.scalar(statement)


def start(user: User, quiz: Quiz, *, rng: random.Random | None = None) -> Attempt:
    """Resume the player's open attempt at a quiz, or start a new one.

    An open attempt whose time is up is finished first, and a new one started.
    """
    if not quiz.is_published:
        raise QuizUnavailable("This quiz is not available.")
    rng = rng or random.SystemRandom()
    current = open_attempt(user, quiz, lock=True)
    now = utcnow()
    if current is not None:
        if not is_expired(current, now):
            return current
        finish(current, now=now)
    revisions = _draw(quiz, rng)
    if not revisions:
        raise QuizUnavailable("This quiz has no questions yet.")
    attempt = Attempt(
        user=user,
        quiz=quiz,
        started_at=now,
        deadline=(
            now + timedelta(minutes=quiz.time_limit_minutes)
            if quiz.time_limit_minutes
            else None
        ),
        pass_mark=quiz.pass_mark,
        max_score=float(sum(r.points for r in revisions)),
    )
    for position, revision in enumerate(revisions, start=1):
        order = [c.id for c in revision.choices]
        if quiz.shuffle and revision.type != "true_false":
            rng.shuffle(order)
        attempt.items.append(
            AttemptItem(
                position=position,
                question_id=revision.question_id,
                revision_id=revision.id,
                choice_order=order,
            )
        )
    try:
        with db.session.begin_nested():
            db.session.add(attempt)
    except sa.exc.IntegrityError:
        # A racing request started one first (one open attempt per player and quiz),
        # or the player is gone: a guest who signed in to an account meanwhile.
        current = open_attempt(user, quiz)
        if current is None:
            raise QuizUnavailable(
                "This quiz could not be started: your guest session ended "
                "meanwhile (you signed in). Start it again."
            ) from None
        return current
    return attempt


def _draw(quiz: Quiz, rng: random.Random) -> list[QuestionRevision]:
    """The current revisions of the questions one attempt asks, in the order asked."""
    revisions = list(
        db.session.scalars(
            sa.select(QuestionRevision)
            .join(Question, Question.id == QuestionRevision.question_id)
            .where(
                Question.quiz_id == quiz.id,
                Question.is_archived.is_(False),
                QuestionRevision.number == Question.revision,
            )
            .order_by(Question.position)
            .options(selectinload(QuestionRevision.choices))
        )
    )
    count = min(quiz.questions_per_attempt or len(revisions), len(revisions))
    if not quiz.shuffle:
        return revisions[:count]
    quota = fair_quota(revisions, count)
    drawn = [
        revision
        for points, group in _by_points(revisions).items()
        for revision in rng.sample(group, quota[points])
    ]
    rng.shuffle(drawn)
    return drawn


def _by_points(revisions: list[QuestionRevision]) -> dict[int, list[QuestionRevision]]:
    groups: dict[int, list[QuestionRevision]] = {}
    for revision in revisions:
        groups.setdefault(revision.points, []).append(revision)
    return groups


def fair_quota(revisions: list[QuestionRevision], count: int) -> dict[int, int]:
    """How many questions of each points value an attempt of ``count`` questions draws.

    The same quota for every attempt, so every attempt of a quiz is worth the same
    maximum score and leaderboard scores compare fairly. Groups get their share of
    ``count`` in proportion to their size (largest remainder; ties to higher points).
    """
    groups = _by_points(revisions)
    total = len(revisions)
    shares = {points: count * len(group) / total for points, group in groups.items()}
    quota = {points: int(share) for points, share in shares.items()}
    by_remainder = sorted(shares, key=lambda p: (shares[p] - quota[p], p), reverse=True)
    for points in by_remainder[: count - sum(quota.values())]:
        quota[points] += 1
    return quota


# --- finding and reading ----------------------------------------------------------


def get_for_player(attempt_id: int, user: User, *, lock: bool = False) -> Attempt:
    """The attempt if it belongs to this player; otherwise ``AttemptNotFound``."""
    query = sa.select(Attempt).where(Attempt.id == attempt_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    attempt = db.session.scalar(query)
    if attempt is None or attempt.user_id != user.id:
        raise AttemptNotFound("There is no such attempt for you.")
    return attempt


def is_expired(attempt: Attempt, now: datetime | None = None) -> bool:
    """Whether the attempt is still open but its deadline has passed."""
    return (
        attempt.finished_at is None
        and attempt.deadline is not None
        and (now or utcnow()) >= attempt.deadline
    )


def seconds_left(attempt: Attempt, now: datetime | None = None) -> int | None:
    """Whole seconds until the deadline (0 when past), or None without a time limit."""
    if attempt.deadline is None:
        return None
    left = (attempt.deadline - (now or utcnow())).total_seconds()
    return max(0, math.ceil(left))


def responses_by_position(attempt: Attempt) -> dict[int, Response]:
    return {r.position: r for r in attempt.responses}


def next_position(attempt: Attempt) -> int | None:
    """The first unanswered question's number, or None when all are answered."""
    answered = {r.position for r in attempt.responses}
    return next((i.position for i in attempt.items if i.position not in answered), None)


def item_at(attempt: Attempt, position: int) -> AttemptItem:
    for item in attempt.items:
        if item.position == position:
            return item
    raise QuestionNotInAttempt(
        f"This attempt has no question {position}; it has {len(attempt.items)}."
    )


def review_item(attempt: Attempt, position: int) -> ReviewItem:
    """One question as it was asked in this attempt, with its response if answered."""
    item = item_at(attempt, position)
    by_id = {c.id: c for c in item.revision.choices}
    return ReviewItem(
        position=position,
        revision=item.revision,
        choices=[by_id[cid] for cid in item.choice_order],
        response=responses_by_position(attempt).get(position),
    )


def review(attempt: Attempt) -> list[ReviewItem]:
    """Every question of the attempt, as asked, with the answers given."""
    db.session.scalars(
        sa.select(QuestionRevision)
        .where(QuestionRevision.id.in_([i.revision_id for i in attempt.items]))
        .options(selectinload(QuestionRevision.choices))
    ).all()
    return [review_item(attempt, item.position) for item in attempt.items]


# --- answering and finishing --------------------------------------------------------


@dataclass(frozen=True)
class SheetItem:
    """The question being answered, as answering needs it."""

    position: int
    question_id: int
    revision_id: int
    choice_order: Sequence[int]


class Answered(NamedTuple):
    """An answer an attempt holds, as answering and finishing need it."""

    position: int
    answered_at: datetime
    points: float


@dataclass(frozen=True)
class AnswerSheet:
    """What answering one question needs of an attempt: its state, how many
    questions it has, the question answered (None if it has no such question),
    and the answers it holds. Read under the attempt's lock without building the
    attempt, its items and its responses as ORM objects."""

    attempt_id: int
    user_id: int
    quiz_id: int
    started_at: datetime
    deadline: datetime | None
    finished_at: datetime | None
    max_score: float
    pass_mark: int
    question_count: int
    question: SheetItem | None
    answers: dict[int, Answered]

    @classmethod
    def of(cls, attempt: Attempt, position: int) -> AnswerSheet:
        """The sheet of an attempt already loaded (and locked) as an ORM object."""
        item = next((i for i in attempt.items if i.position == position), None)
        return cls(
            attempt_id=attempt.id,
            user_id=attempt.user_id,
            quiz_id=attempt.quiz_id,
            started_at=attempt.started_at,
            deadline=attempt.deadline,
            finished_at=attempt.finished_at,
            max_score=attempt.max_score,
            pass_mark=attempt.pass_mark,
            question_count=len(attempt.items),
            question=None
            if item is None
            else SheetItem(
                position, item.question_id, item.revision_id, tuple(item.choice_order)
            ),
            answers={
                r.position: Answered(r.position, r.answered_at, r.points)
                for r in attempt.responses
            },
        )

    def item(self, position: int) -> SheetItem:
        """The question answered at ``position``; ``QuestionNotInAttempt`` if the
        attempt has none there."""
        if self.question is None or self.question.position != position:
            raise QuestionNotInAttempt(
                f"This attempt has no question {position}; "
                f"it has {self.question_count}."
            )
        return self.question

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        return is_expired(self, now)


_item = AttemptItem.__table__
_counted = _item.alias("counted")
# The attempt's row, locked, with the question answered (its items never change
# once it has started) and how many it has. On PostgreSQL a statement that waited
# for the lock still reads the other tables as they were when it began, so the
# responses are read by a statement of their own, once the lock is held. Both run
# inside the answer's transaction, as hot reads (see ``quiz.reads``).
_LOCK_ATTEMPT = HotRead(
    sa.select(
        Attempt.user_id,
        Attempt.quiz_id,
        Attempt.started_at,
        Attempt.deadline,
        Attempt.finished_at,
        Attempt.max_score,
        Attempt.pass_mark,
        sa.select(sa.func.count())
        .where(_counted.c.attempt_id == Attempt.id)
        .scalar_subquery()
        .label("question_count"),
        _item.c.question_id,
        _item.c.revision_id,
        _item.c.choice_order,
    )
    .outerjoin(
        _item,
        sa.and_(
            _item.c.attempt_id == Attempt.id,
            _item.c.position == sa.bindparam("position"),
        ),
    )
    .where(Attempt.id == sa.bindparam("attempt_id"))
    .with_for_update(of=Attempt)
)
_RESPONSES = HotRead(
    sa.select(Response.position, Response.answered_at, Response.points).where(
        Response.attempt_id == sa.bindparam("attempt_id")
    )
)


def answer_sheet(attempt_id: int, user: User, position: int) -> AnswerSheet:
    """Lock the player's attempt and read its sheet for answering the question at
    ``position``; ``AttemptNotFound`` if the attempt is not theirs."""
    # One round trip on PostgreSQL (with the BEGIN, in a ``core_transaction``): the
    # lock, then the responses, read once the lock is granted (so they see any
    # answer committed meanwhile).
    locked, responses = read_together(
        (_LOCK_ATTEMPT, {"attempt_id": attempt_id, "position": position}),
        (_RESPONSES, {"attempt_id": attempt_id}),
    )
    row = locked[0] if locked else None
    if row is None or row.user_id != user.id:
        raise AttemptNotFound("There is no such attempt for you.")
    return AnswerSheet(
        attempt_id=attempt_id,
        user_id=row.user_id,
        quiz_id=row.quiz_id,
        started_at=row.started_at,
        deadline=row.deadline,
        finished_at=row.finished_at,
        max_score=row.max_score,
        pass_mark=row.pass_mark,
        question_count=row.question_count,
        question=None
        if row.question_id is None
        else SheetItem(
            position, row.question_id, row.revision_id, tuple(row.choice_order)
        ),
        answers={answer.position: Answered._make(answer) for answer in responses},
    )


@dataclass(frozen=True)
class Marking:
    """What marking an answer needs of a question revision."""

    type: str
    points: int
    correct: frozenset[int]


_MARKING = (
    sa.select(QuestionRevision.type, QuestionRevision.points, Choice.id)
    .join(
        Choice,
        sa.and_(Choice.revision_id == QuestionRevision.id, Choice.is_correct),
        isouter=True,
    )
    .where(QuestionRevision.id == sa.bindparam("revision_id"))
)


def marking(revision_id: int) -> Marking:
    """How a revision is marked. Revisions never change once written (an edit adds
    a revision), so each process keeps what it read."""

    def read() -> Marking:
        rows = execute_core(_MARKING, {"revision_id": revision_id}).all()
        return Marking(
            rows[0].type,
            rows[0].points,
            frozenset(row.id for row in rows if row.id is not None),
        )

    return cached(("marking", revision_id), read)


def record_answer(
    sheet: AnswerSheet,
    position: int,
    chosen: list[int] | None,
    *,
    now: datetime | None = None,
) -> bool:
    """Record and mark a first answer; False if the question was already answered
    (the answer recorded first stands, unchanged). ``chosen`` is None when what was
    posted is no choice id at all.

    A choice that is not one of the question's options, no choice, or several for
    a question with one answer raise ``InvalidAnswer``.

    An answer after the deadline finishes the attempt and raises ``AttemptClosed``;
    the answer that completes the attempt finishes it. Call with the sheet read for
    ``position`` by ``answer_sheet`` (or ``AnswerSheet.of`` a locked attempt) in
    this transaction.
    An answer that does not finish the attempt is written with the transaction's
    COMMIT (``HotWrite.send``), or before any statement that follows it.
    """
    now = now or utcnow()
    item = sheet.item(position)
    if position in sheet.answers:
        return False
    if sheet.finished:
        raise AttemptClosed("This attempt is finished; answers can no longer change.")
    if sheet.is_expired(now):
        _finish_sheet(sheet, [], now)
        raise AttemptClosed(
            "Time is up: the answer was not recorded. Your attempt was finished "
            "with the answers given before the deadline."
        )
    rules = marking(item.revision_id)
    chosen_set = _checked_choice(rules, item, chosen)
    marked = scoring.mark(rules.type, rules.points, rules.correct, chosen_set)
    since = max([sheet.started_at, *(a.answered_at for a in sheet.answers.values())])
    response = {
        "attempt_id": sheet.attempt_id,
        "position": position,
        "question_id": item.question_id,
        "revision_id": item.revision_id,
        "chosen": sorted(chosen_set),
        "points": marked.points,
        "is_correct": marked.is_correct,
        "answered_at": now,
        "seconds": round(max(0.0, (now - since).total_seconds()), 3),
    }
    if len(sheet.answers) + 1 >= sheet.question_count:  # the last one unanswered
        _RECORD.run(**response)
        _finish_sheet(sheet, [marked.points], now)
    else:  # the transaction's last statement: sent with its COMMIT
        _RECORD.send(**response)
    return True


_RECORD = HotWrite(
    sa.insert(Response.__table__),
    columns=(
        "attempt_id",
        "position",
        "question_id",
        "revision_id",
        "chosen",
        "points",
        "is_correct",
        "answered_at",
        "seconds",
    ),
)


def _checked_choice(
    rules: Marking, item: SheetItem, chosen: list[int] | None
) -> set[int]:
    if chosen is None:
        raise InvalidAnswer("That choice is not one of this question's options.")
    chosen_set = set(chosen)
    if not chosen_set:
        raise InvalidAnswer("Choose an answer before submitting.")
    if not chosen_set <= set(item.choice_order):
        raise InvalidAnswer("That choice is not one of this question's options.")
    if rules.type != "multiple" and len(chosen_set) != 1:
        raise InvalidAnswer("Choose exactly one answer.")
    return chosen_set


@dataclass(frozen=True)
class Closing:
    """An attempt's figures once finished."""

    score: float
    finished_at: datetime
    duration_ms: int
    passed: bool


def closing(
    started_at: datetime,
    deadline: datetime | None,
    max_score: float,
    pass_mark: int,
    points: list[float],
    now: datetime,
) -> Closing:
    """The figures of an attempt finished ``now`` with answers worth ``points``.

    Unanswered questions score 0. After the deadline the attempt counts as finished
    at the deadline."""
    finished_at = min(now, deadline) if deadline else now
    score = round(sum(points), 4)
    return Closing(
        score=score,
        finished_at=finished_at,
        duration_ms=int((finished_at - started_at).total_seconds() * 1000),
        passed=scoring.has_passed(score, max_score, pass_mark),
    )


_attempt = Attempt.__table__
_FINISH = HotWrite(
    sa.update(_attempt).where(
        _attempt.c.id == sa.bindparam("attempt"), _attempt.c.finished_at.is_(None)
    ),
    columns=("score", "finished_at", "duration_ms", "passed"),
)


def _finish_sheet(sheet: AnswerSheet, new_points: list[float], now: datetime) -> None:
    """Finish the attempt of a sheet read under its lock, as ``finish`` does, in Core
    statements: the answers it holds plus ``new_points`` (just recorded) score."""
    held = [answer.points for answer in sheet.answers.values()]
    result = closing(
        sheet.started_at,
        sheet.deadline,
        sheet.max_score,
        sheet.pass_mark,
        [*held, *new_points],
        now,
    )
    if not _FINISH.run(attempt=sheet.attempt_id, **vars(result)):
        return  # finished already (the sheet's lock makes this never happen)
    leaderboard.record_finished(
        leaderboard.Finished(
            id=sheet.attempt_id,
            quiz_id=sheet.quiz_id,
            user_id=sheet.user_id,
            score=result.score,
            max_score=sheet.max_score,
            duration_ms=result.duration_ms,
            finished_at=result.finished_at,
        )
    )


def answer(
    attempt: Attempt, position: int, chosen: list[int], *, now: datetime | None = None
) -> Response:
    """Record and mark an answer; return the recorded response.

    A question already answered returns the response recorded first, unchanged. An
    answer after the deadline finishes the attempt and raises ``AttemptClosed``.
    Call with an attempt locked by ``get_for_player(..., lock=True)``.
    """
    db.session.flush()
    try:
        record_answer(AnswerSheet.of(attempt, position), position, chosen, now=now)
    finally:
        db.session.expire(attempt)  # its responses, and its figures if it finished
    return responses_by_position(attempt)[position]


def finish(attempt: Attempt, *, now: datetime | None = None) -> bool:
    """Close the attempt, total its score and update the leaderboards.

    Unanswered questions score 0. After the deadline the attempt counts as finished
    at the deadline. Returns False if it was already finished.
    """
    if attempt.finished_at is not None:
        return False
    result = closing(
        attempt.started_at,
        attempt.deadline,
        attempt.max_score,
        attempt.pass_mark,
        [r.points for r in attempt.responses],
        now or utcnow(),
    )
    attempt.score = result.score
    attempt.finished_at = result.finished_at
    attempt.duration_ms = result.duration_ms
    attempt.passed = result.passed
    db.session.flush()
    leaderboard.record_finished(attempt)
    return True


# Attempts one sweep finishes at most (``close_expired``).
EXPIRED_BATCH = 500
# How long after its deadline an attempt is swept: a server whose clock runs a few
# seconds fast does not close an attempt while its player is still answering.
EXPIRY_GRACE = timedelta(seconds=30)
# An attempt that failed to finish is not tried again by this process for a while:
# pages that sweep would otherwise meet it first every time.
RETRY_FAILED_AFTER = 600.0
MAX_FAILED_KEPT = 1000
FAILED = "quiz.attempts_failed_to_finish"  # the app's record: attempt id -> when


@dataclass(frozen=True)
class Sweep:
    """What ``close_expired`` did: attempts finished, those that failed to, and why
    it stopped early (None: it ran out of attempts or reached its limit)."""

    finished: int
    failed: tuple[int, ...]
    stopped: str | None = None


def _time_is_up(now: datetime):
    return sa.and_(
        Attempt.finished_at.is_(None), Attempt.deadline <= now - EXPIRY_GRACE
    )


def any_expired(*, now: datetime | None = None) -> bool:
    """Whether an open attempt's time is up (an indexed look-up: open attempts with
    a deadline only)."""
    return db.session.scalar(sa.select(sa.exists().where(_time_is_up(now or utcnow()))))


def lock_one_expired(
    *, now: datetime | None = None, skip: Sequence[int] = ()
) -> Attempt | None:
    """The open attempt whose deadline passed longest ago (but none of ``skip``),
    locked; None when none is left. On PostgreSQL an attempt another transaction
    holds (its player's answer arriving now, which finishes it, or another sweep)
    is passed over, not waited for."""
    statement = (
        sa.select(Attempt)
        .where(_time_is_up(now or utcnow()))
        .order_by(Attempt.deadline)
        .limit(1)
        .with_for_update(skip_locked=True)
        .options(selectinload(Attempt.responses))
        .execution_options(populate_existing=True)
    )
    if skip:
        statement = statement.where(Attempt.id.not_in(skip))
    return db.session.scalar(statement)


def close_expired(
    *,
    limit: int = EXPIRED_BATCH,
    skip: Sequence[int] = (),
    wait_ms: int = sqlite.BUSY_TIMEOUT_MS,
) -> Sweep:
    """Finish up to ``limit`` open attempts whose time is up, with the answers given
    before the deadline, as their players' return would have.

    A player who leaves when the time runs out never comes back to finish: without
    this, the attempt's score would never count, in trainers' reports or on the
    leaderboards. Each attempt is finished and committed in a transaction of its
    own, which takes its locks in the order a player's own finish does (the attempt,
    then the leaderboard's rows), waiting at most ``wait_ms`` for each.

    One that fails to finish is rolled back, logged and passed over (by this process,
    for ``RETRY_FAILED_AFTER`` seconds). A lock not had in time, or a database that
    cannot be read, stops the sweep: ``stopped`` says why, and what was committed
    before stays.
    """
    if db.session.new or db.session.dirty or db.session.deleted:
        raise RuntimeError("close_expired commits as it goes: commit the session first")
    db.session.rollback()  # ends a transaction that only read
    passed_over = [*skip, *_failing_lately()]
    finished, failed = 0, []
    due = None
    for _ in range(limit):
        try:
            with sqlite.write_intent(wait_ms):
                _limit_lock_waits(wait_ms)
                due = lock_one_expired(skip=[*passed_over, *failed])
                if due is None:
                    db.session.rollback()
                    break
                attempt_id = due.id
                finish(due)
                db.session.commit()
        except sa.exc.SQLAlchemyError as error:
            db.session.rollback()
            if due is None or _lock_not_had(error):
                log.warning("Sweep of attempts whose time is up stopped: %s", error)
                return Sweep(finished, tuple(failed), str(error).splitlines()[0])
            failed.append(_failed(attempt_id))
        except Exception:  # one broken attempt holds up no other
            db.session.rollback()
            if due is None:
                raise
            failed.append(_failed(attempt_id))
        else:
            finished += 1
        finally:
            due = None
    return Sweep(finished, tuple(failed))


def _limit_lock_waits(wait_ms: int) -> None:
    """On PostgreSQL, wait at most ``wait_ms`` for each lock in this transaction
    (SQLite's single write lock is waited for at BEGIN)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text(f"SET LOCAL lock_timeout = {int(wait_ms)}"))


def _lock_not_had(error: sa.exc.SQLAlchemyError) -> bool:
    """A lock waited for too long: PostgreSQL's lock_timeout (55P03), SQLite's
    "database is locked"."""
    original = getattr(error, "orig", None)
    return getattr(original, "sqlstate", None) == "55P03" or sqlite.is_busy(original)


def _failed(attempt_id: int) -> int:
    log.exception("Attempt %s could not be finished (time up)", attempt_id)
    failed_at = current_app.extensions.setdefault(FAILED, {})
    if len(failed_at) >= MAX_FAILED_KEPT:
        failed_at.clear()
    failed_at[attempt_id] = time.monotonic()
    return attempt_id


def _failing_lately() -> list[int]:
    since = time.monotonic() - RETRY_FAILED_AFTER
    failed_at = current_app.extensions.get(FAILED, {})
    return [attempt_id for attempt_id, at in failed_at.items() if at > since]
