"""Cohorts: trainers group learners, assign quizzes and follow completion and scores.

A trainer manages only the cohorts they own; admins manage all. A member's progress on
an assigned quiz is read from their attempts (optionally within a date range):

- completed: at least one finished attempt;
- in progress: an unfinished attempt and none finished;
- past due: none finished and the assignment's due date has passed;
- not started: otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from . import audit, scoring
from .extensions import db
from .models import (
    Assignment,
    Attempt,
    Cohort,
    CohortMember,
    Quiz,
    User,
    new_join_code,
    utcnow,
)

STATUSES = ("not started", "in progress", "completed", "past due")
SORT_KEYS = ("name", "status", "score", "attempts", "activity")


class CohortError(Exception):
    """A cohort change was refused; ``field`` names the form field, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- who may see what -----------------------------------------------------------------


def can_manage(user: User, cohort: Cohort) -> bool:
    return user.has_role("admin") or (
        user.has_role("trainer") and cohort.owner_id == user.id
    )


def managed_cohorts(user: User) -> sa.Select:
    """Cohorts the user manages (admins: all), by name."""
    statement = sa.select(Cohort).order_by(Cohort.name, Cohort.id)
    if not user.has_role("admin"):
        statement = statement.where(Cohort.owner_id == user.id)
    return statement


def is_member(user: User, cohort: Cohort) -> bool:
    return db.session.get(CohortMember, (cohort.id, user.id)) is not None


# --- trainers: cohorts, members, assignments --------------------------------------


def create(owner: User, name: str, description: str = "") -> Cohort:
    cohort = Cohort(name=name, description=description, owner_id=owner.id)
    db.session.add(cohort)
    db.session.flush()
    audit.record(owner, "cohort.create", "cohort", cohort.id, f"Created cohort {name}")
    return cohort


def update(actor: User, cohort: Cohort, name: str, description: str) -> None:
    if (cohort.name, cohort.description) != (name, description):
        cohort.name, cohort.description = name, description
        audit.record(actor, "cohort.edit", "cohort", cohort.id, f"Edited cohort {name}")


def new_code(actor: User, cohort: Cohort) -> None:
    """Replace the join code (the old link stops working; members stay)."""
    cohort.join_code = new_join_code()
    audit.record(
        actor,
        "cohort.code",
        "cohort",
        cohort.id,
        f"New join code for cohort {cohort.name}",
    )


def remove_member(actor: User, cohort: Cohort, user_id: int) -> None:
    member = db.session.get(CohortMember, (cohort.id, user_id))
    if member is not None:
        db.session.delete(member)
        audit.record(
            actor,
            "cohort.remove",
            "cohort",
            cohort.id,
            f"Removed {member.user.display_name} from {cohort.name}",
        )


def assign(
    actor: User, cohort: Cohort, quiz: Quiz, due_at: datetime | None
) -> Assignment:
    """Assign a quiz (or change its due date if it is assigned already)."""
    assignment = db.session.scalar(
        sa.select(Assignment).where(
            Assignment.cohort_id == cohort.id, Assignment.quiz_id == quiz.id
        )
    )
    if assignment is None:
        assignment = Assignment(cohort=cohort, quiz=quiz)
        db.session.add(assignment)
    assignment.due_at = due_at
    db.session.flush()
    due = f", due {due_at:%d %b %Y}" if due_at else ""
    audit.record(
        actor,
        "cohort.assign",
        "cohort",
        cohort.id,
        f"Assigned {quiz.title} to {cohort.name}{due}",
    )
    return assignment


def unassign(actor: User, cohort: Cohort, assignment_id: int) -> None:
    assignment = db.session.get(Assignment, assignment_id)
    if assignment is None or assignment.cohort_id != cohort.id:
        raise CohortError("That quiz is not assigned to this cohort.")
    db.session.delete(assignment)
    audit.record(
        actor,
        "cohort.unassign",
        "cohort",
        cohort.id,
        f"Unassigned {assignment.quiz.title} from {cohort.name}",
    )


# --- players: joining, leaving, assignments -------------------------------------------


def find_by_code(code: str) -> Cohort | None:
    code = "".join(code.split()).upper()
    return db.session.scalar(sa.select(Cohort).where(Cohort.join_code == code))


def join(user: User, code: str) -> Cohort:
    """Join the cohort with this code; joining twice changes nothing."""
    if user.is_guest:
        raise CohortError("Create an account or sign in to join a cohort.")
    cohort = find_by_code(code)
    if cohort is None:
        raise CohortError(
            "No cohort has this join code. Check it with your trainer.", field="code"
        )
    if not is_member(user, cohort):
        try:
            with db.session.begin_nested():
                db.session.add(CohortMember(cohort_id=cohort.id, user_id=user.id))
        except sa.exc.IntegrityError:
            pass  # a racing request joined first: the same outcome
    return cohort


def leave(user: User, cohort: Cohort) -> None:
    member = db.session.get(CohortMember, (cohort.id, user.id))
    if member is not None:
        db.session.delete(member)


def my_cohorts(user: User) -> list[Cohort]:
    return list(
        db.session.scalars(
            sa.select(Cohort)
            .join(CohortMember, CohortMember.cohort_id == Cohort.id)
            .where(CohortMember.user_id == user.id)
            .order_by(Cohort.name)
        )
    )


# --- progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """One member's progress on one quiz."""

    user_id: int
    display_name: str
    email: str | None
    status: str
    best_score: float | None
    max_score: float | None
    passed: bool
    attempts: int
    last_activity: datetime | None

    @property
    def percentage(self) -> float | None:
        if self.best_score is None:
            return None
        return scoring.percentage(self.best_score, self.max_score or 0)


def progress(
    cohort: Cohort,
    quiz: Quiz,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user_ids: list[int] | None = None,
) -> list[Progress]:
    """Every member's progress on ``quiz``, from attempts started in [since, until)."""
    due_at = db.session.scalar(
        sa.select(Assignment.due_at).where(
            Assignment.cohort_id == cohort.id, Assignment.quiz_id == quiz.id
        )
    )
    in_range = [Attempt.quiz_id == quiz.id]
    if since:
        in_range.append(Attempt.started_at >= since)
    if until:
        in_range.append(Attempt.started_at < until)
    now = utcnow()
    # An open attempt whose time ran out is over, though not yet scored.
    active = sa.and_(
        Attempt.id.is_not(None),  # the outer join's empty row is no attempt
        Attempt.finished_at.is_(None),
        sa.or_(Attempt.deadline.is_(None), Attempt.deadline > now),
    )
    members = sa.select(CohortMember.user_id).where(CohortMember.cohort_id == cohort.id)
    if user_ids is not None:
        members = members.where(CohortMember.user_id.in_(user_ids))
    totals = (
        sa.select(
            User.id,
            User.display_name,
            User.email,
            sa.func.count(Attempt.id),
            sa.func.count(Attempt.finished_at),
            sa.func.count(sa.case((active, 1))),
            sa.func.max(sa.func.coalesce(Attempt.finished_at, Attempt.started_at)),
        )
        .select_from(User)
        .outerjoin(Attempt, sa.and_(Attempt.user_id == User.id, *in_range))
        .where(User.id.in_(members))
        .group_by(User.id, User.display_name, User.email)
    )
    best = _best_attempts(in_range, members)
    rows = []
    for uid, name, email, count, done, open_now, last in db.session.execute(totals):
        if done:
            status = "completed"
        elif due_at is not None and now > due_at:
            status = "past due"
        elif open_now:
            status = "in progress"
        else:
            status = "not started"
        score, maximum, passed = best.get(uid, (None, None, False))
        rows.append(
            Progress(
                uid, name, email, status, score, maximum, bool(passed), count, last
            )
        )
    return rows


def _best_attempts(conditions: list, members: sa.Select) -> dict[int, tuple]:
    """Each member's best finished attempt (highest percentage, then quicker, then
    earlier): its score, maximum and pass, all from that one attempt."""
    ranked = (
        sa.select(
            Attempt.user_id,
            Attempt.score,
            Attempt.max_score,
            Attempt.passed,
            sa.func.row_number()
            .over(
                partition_by=Attempt.user_id,
                order_by=(
                    (Attempt.score / sa.func.nullif(Attempt.max_score, 0)).desc(),
                    Attempt.duration_ms,
                    Attempt.finished_at,
                ),
            )
            .label("place"),
        )
        .where(
            *conditions, Attempt.finished_at.is_not(None), Attempt.user_id.in_(members)
        )
        .subquery()
    )
    return {
        user_id: (score, maximum, passed)
        for user_id, score, maximum, passed in db.session.execute(
            sa.select(
                ranked.c.user_id, ranked.c.score, ranked.c.max_score, ranked.c.passed
            ).where(ranked.c.place == 1)
        )
    }


def sort_progress(rows: list[Progress], key: str, descending: bool) -> list[Progress]:
    """Sort dashboard rows; missing values sort last either way."""
    if key not in SORT_KEYS:
        key = "name"
    value = {
        "name": lambda r: r.display_name.casefold(),
        "status": lambda r: STATUSES.index(r.status),
        "score": lambda r: r.percentage,
        "attempts": lambda r: r.attempts,
        "activity": lambda r: r.last_activity,
    }[key]
    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(
        key=lambda r: (value(r), r.display_name.casefold()), reverse=descending
    )
    return present + missing


@dataclass(frozen=True)
class AssignmentStatus:
    assignment: Assignment
    status: str
    best_score: float | None
    max_score: float | None


def my_assignments(user: User, cohort: Cohort) -> list[AssignmentStatus]:
    """A member's assignments in a cohort with their status."""
    result = []
    for assignment in cohort.assignments:
        row = progress(cohort, assignment.quiz, user_ids=[user.id])
        status = row[0] if row else None
        result.append(
            AssignmentStatus(
                assignment,
                status.status if status else "not started",
                status.best_score if status else None,
                status.max_score if status else None,
            )
        )
    return result


def member_ids(cohort: Cohort) -> sa.Select:
    return sa.select(CohortMember.user_id).where(CohortMember.cohort_id == cohort.id)
