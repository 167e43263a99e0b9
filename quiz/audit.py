"""The audit log: who created, edited, published, archived or imported what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from . import events
from .extensions import db
from .models import AuditEvent, User
from .querying import user_matches


def record(
    actor: User | None,
    action: str,
    target_type: str,
    target_id: object,
    summary: str,
    **details,
) -> AuditEvent:
    """Add an event to the log (the caller commits it with the change it describes).

    Every audited change is also a security event on the ``quiz.security`` log.
    """
    events.log(
        action,
        actor=actor.id if actor is not None else "cli",
        target=f"{target_type}:{target_id}",
        summary=summary,
    )
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:64],
        summary=summary[:300],
        details=details,
    )
    db.session.add(event)
    return event


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None  # e-mail or display name, case-insensitive substring
    target_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query(filters: AuditFilter) -> sa.Select:
    """Events matching the filters, newest first."""
    statement = (
        sa.select(AuditEvent)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    )
    if filters.action:
        statement = statement.where(AuditEvent.action == filters.action)
    if filters.target_type:
        statement = statement.where(AuditEvent.target_type == filters.target_type)
    if filters.actor:
        statement = statement.where(user_matches(filters.actor))
    if filters.since:
        statement = statement.where(AuditEvent.created_at >= filters.since)
    if filters.until:
        statement = statement.where(AuditEvent.created_at < filters.until)
    return statement


def actions() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.action).distinct().order_by(AuditEvent.action)
        )
    )
