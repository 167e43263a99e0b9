"""Authoring in the browser: quizzes, questions and bank imports, each audited.

Questions follow the same rules as bank files (``banks.check_question``); an edit to
a question adds a revision, and deleting archives, so past attempts never change.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from . import audit, banks
from .extensions import db
from .models import BankUpload, Question, QuestionRevision, Quiz, User
from .querying import LIKE_ESCAPE, contains_pattern

QUIZ_FIELDS = banks.QUIZ_FIELDS


class AuthoringError(Exception):
    """An authoring change was refused; ``field`` names the form field, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- quizzes --------------------------------------------------------------------------


def create_quiz(actor: User, slug: str, **fields) -> Quiz:
    """A new, unpublished quiz with no questions yet."""
    if db.session.scalar(sa.select(Quiz.id).where(Quiz.slug == slug)) is not None:
        raise AuthoringError("A quiz with this id exists already.", field="slug")
    quiz = Quiz(slug=slug, is_published=False, **_quiz_values(fields))
    _add_unique(quiz, "A quiz with this id exists already.")
    audit.record(
        actor,
        "quiz.create",
        "quiz",
        slug,
        f"Created quiz {quiz.title}",
        settings=_quiz_values(fields),
    )
    return quiz


def _add_unique(row, message: str) -> None:
    """Add a row whose id must be new; a racing request with the same id loses."""
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except sa.exc.IntegrityError:
        raise AuthoringError(message, field="slug") from None


def update_quiz(actor: User, quiz: Quiz, **fields) -> None:
    changes = {}
    for name, value in _quiz_values(fields).items():
        if getattr(quiz, name) != value:
            changes[name] = [getattr(quiz, name), value]
            setattr(quiz, name, value)
    if changes:
        audit.record(
            actor,
            "quiz.edit",
            "quiz",
            quiz.slug,
            f"Edited quiz {quiz.title}",
            changes=changes,
        )


def _quiz_values(fields: dict) -> dict:
    values = {name: fields[name] for name in QUIZ_FIELDS if name in fields}
    if values.get("questions_per_attempt") == 0:
        values["questions_per_attempt"] = None
    return values


def set_published(actor: User, quiz: Quiz, published: bool) -> None:
    if published and quiz.is_archived:
        raise AuthoringError("Restore the quiz from the archive before publishing it.")
    if published and not live_question_count(quiz):
        raise AuthoringError("Add at least one question before publishing.")
    if quiz.is_published == published:
        return
    quiz.is_published = published
    action = "quiz.publish" if published else "quiz.unpublish"
    verb = "Published" if published else "Unpublished"
    audit.record(actor, action, "quiz", quiz.slug, f"{verb} quiz {quiz.title}")


def set_archived(actor: User, quiz: Quiz, archived: bool) -> None:
    """Archive (hide and unpublish) or restore a quiz; its attempts and scores stay."""
    if quiz.is_archived == archived:
        return
    quiz.is_archived = archived
    if archived:
        quiz.is_published = False
    action = "quiz.archive" if archived else "quiz.restore"
    verb = "Archived" if archived else "Restored"
    audit.record(actor, action, "quiz", quiz.slug, f"{verb} quiz {quiz.title}")


def live_question_count(quiz: Quiz) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Question)
        .where(Question.quiz_id == quiz.id, Question.is_archived.is_(False))
    )


# --- questions ------------------------------------------------------------------------


def new_question_slug(quiz: Quiz, nonce: str | None = None) -> str:
    """An id for a question made without one; the form's nonce keeps it stable."""
    suffix = "".join(ch for ch in (nonce or "") if ch in "0123456789abcdef")[:8]
    return f"{quiz.slug[:50]}-{suffix or secrets.token_hex(4)}"


def save_question(actor: User, quiz: Quiz, raw: dict, question: Question | None = None):
    """Create a question, or add a revision when its content changed.

    ``raw`` is one question in the bank file format; ``banks.BankError`` lists what
    is wrong with it. Returns the question.
    """
    data = banks.check_question(raw)
    if question is None:
        if db.session.scalar(sa.select(Question.id).where(Question.slug == data.slug)):
            raise AuthoringError(
                "A question with this id exists already.", field="slug"
            )
        position = db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.max(Question.position) + 1, 0)).where(
                Question.quiz_id == quiz.id
            )
        )
        question = Question(slug=data.slug, quiz=quiz, position=position, revision=1)
        banks.add_revision(question, data, 1)
        _add_unique(question, "A question with this id exists already.")
        audit.record(
            actor,
            "question.create",
            "question",
            data.slug,
            f"Added question {data.slug} to {quiz.title}",
        )
        return question
    if question.current.fingerprint == data.fingerprint:
        return question
    question.revision += 1
    banks.add_revision(question, data, question.revision)
    db.session.flush()
    audit.record(
        actor,
        "question.edit",
        "question",
        question.slug,
        f"Edited question {question.slug} (revision {question.revision})",
    )
    return question


def archive_question(actor: User, question: Question) -> None:
    """Stop asking a question; attempts that asked it keep it in their review."""
    if question.is_archived:
        return
    question.is_archived = True
    audit.record(
        actor,
        "question.archive",
        "question",
        question.slug,
        f"Archived question {question.slug}",
    )


def restore_question(actor: User, question: Question) -> None:
    if not question.is_archived:
        return
    question.is_archived = False
    audit.record(
        actor,
        "question.restore",
        "question",
        question.slug,
        f"Restored question {question.slug}",
    )


def revision_as_raw(question: Question) -> dict:
    """The live revision as a plain dict in the bank format (to fill the edit form)."""
    return banks.question_document(question.slug, question.current)


@dataclass(frozen=True)
class QuestionFilter:
    quiz: str | None = None
    type: str | None = None
    difficulty: str | None = None
    tag: str | None = None
    text: str | None = None
    archived: bool = False


def question_query(filters: QuestionFilter) -> sa.Select:
    """Questions (revisions and quiz loaded), filtered, in quiz and file order."""
    statement = (
        sa.select(Question)
        .join(Quiz, Quiz.id == Question.quiz_id)
        .join(
            QuestionRevision,
            sa.and_(
                QuestionRevision.question_id == Question.id,
                QuestionRevision.number == Question.revision,
            ),
        )
        .where(Question.is_archived.is_(filters.archived))
        .order_by(Quiz.title, Question.position)
        .options(selectinload(Question.revisions), selectinload(Question.quiz))
    )
    if filters.quiz:
        statement = statement.where(Quiz.slug == filters.quiz)
    if filters.type:
        statement = statement.where(QuestionRevision.type == filters.type)
    if filters.difficulty:
        statement = statement.where(QuestionRevision.difficulty == filters.difficulty)
    if filters.text:
        pattern = contains_pattern(filters.text)
        statement = statement.where(
            sa.or_(
                sa.func.lower(QuestionRevision.prompt).like(
                    pattern, escape=LIKE_ESCAPE
                ),
                sa.func.lower(Question.slug).like(pattern, escape=LIKE_ESCAPE),
            )
        )
    if filters.tag:
        # Tags are a JSON list (stored without \u escapes): match the quoted element in
        # its text form, the same on both databases.
        tag = contains_pattern(f'"{filters.tag.strip().lower()}"')
        statement = statement.where(
            sa.cast(QuestionRevision.tags, sa.Text).like(tag, escape=LIKE_ESCAPE)
        )
    return statement


# --- bank uploads ---------------------------------------------------------------------


def stage_upload(actor: User, filename: str, raw: bytes) -> BankUpload:
    """Validate an uploaded bank file and keep it for review; nothing is imported yet."""
    bank = parse_upload(filename, raw)
    upload = BankUpload(user_id=actor.id, filename=filename[:255], content=raw)
    db.session.add(upload)
    db.session.flush()
    audit.record(
        actor,
        "bank.upload",
        "quiz",
        bank.slug,
        f"Uploaded {upload.filename} for review",
    )
    return upload


def plan_digest(plan: banks.SyncReport) -> str:
    """A short fingerprint of what an import would do, confirmed by the admin."""
    content = [plan.new_banks, plan.added, plan.updated, plan.unchanged, plan.archived]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def discard_upload(actor: User, upload: BankUpload) -> None:
    audit.record(
        actor,
        "bank.discard",
        "upload",
        upload.id,
        f"Discarded the upload of {upload.filename}",
    )
    db.session.delete(upload)


def parse_upload(filename: str, raw: bytes) -> banks.BankData:
    """Parse a bank file and check it against the database: ids must not clash."""
    bank = banks.parse_bank(raw, filename)
    banks.check_ownership([bank])
    return bank


def apply_upload(
    actor: User, upload: BankUpload, confirmed_digest: str
) -> tuple[str, banks.SyncReport]:
    """Import a reviewed upload and forget it; return the quiz id.

    The file is validated again, and refused if what it would do is no longer what
    the admin confirmed (``plan_digest``). New quizzes arrive unpublished.
    """
    bank = parse_upload(upload.filename, upload.content)
    if plan_digest(banks.plan_sync(bank)) != confirmed_digest:
        raise AuthoringError(
            "The quiz changed since you reviewed this upload; review it again."
        )
    report = banks.sync_banks([bank], publish_new=False)
    audit.record(
        actor,
        "bank.import",
        "quiz",
        bank.slug,
        f"Imported {upload.filename}: {report.summary(bank.slug)}",
        added=report.added[bank.slug],
        updated=report.updated[bank.slug],
        archived=report.archived[bank.slug],
    )
    db.session.delete(upload)
    return bank.slug, report
