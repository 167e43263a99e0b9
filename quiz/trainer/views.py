"""Trainer pages. Every route needs the trainer role (the blueprint's guard); each one
that names a cohort, player or attempt also checks the trainer may see it."""

from __future__ import annotations

import tempfile
from datetime import date, datetime

import sqlalchemy as sa
from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import selectinload

from .. import attempts, audit, cohorts, exports, reports, sqlite
from ..admin.forms import ButtonForm
from ..errors import render_error
from ..extensions import db
from ..models import Attempt, Cohort, CohortMember, Quiz, User
from ..paging import day_arg, parse_day, requested_page
from . import bp
from .forms import AssignForm, CohortForm, ResultsFilterForm

PER_PAGE = 25
MAX_ID = 2**31 - 1


@bp.get("/")
def index():
    mine = db.session.scalars(cohorts.managed_cohorts(current_user)).all()
    return render_template("trainer/index.html", cohorts=mine)


@bp.route("/cohorts/new", methods=["GET", "POST"])
def new_cohort():
    form = CohortForm()
    if form.validate_on_submit():
        cohort = cohorts.create(current_user, form.name.data, form.description.data)
        db.session.commit()
        flash(
            f"Cohort “{cohort.name}” created. Share its join link with your learners.",
            "success",
        )
        return redirect(url_for("trainer.cohort", cohort_id=cohort.id))
    return render_template(
        "trainer/cohort_form.html", form=form
    ), 422 if form.errors else 200


@bp.route("/cohorts/<int:cohort_id>", methods=["GET", "POST"])
def cohort(cohort_id: int):
    cohort = _cohort(cohort_id)
    form = CohortForm(obj=cohort)
    if form.validate_on_submit():
        cohorts.update(current_user, cohort, form.name.data, form.description.data)
        db.session.commit()
        flash("Cohort saved.", "success")
        return redirect(url_for("trainer.cohort", cohort_id=cohort.id))
    members = db.session.scalars(
        sa.select(User)
        .where(User.id.in_(cohorts.member_ids(cohort)))
        .order_by(User.display_name)
    ).all()
    return render_template(
        "trainer/cohort.html",
        cohort=cohort,
        form=form,
        members=members,
        assign_form=AssignForm(_quizzes(), formdata=None),
        button=ButtonForm(),
    )


@bp.post("/cohorts/<int:cohort_id>/code")
def new_join_code(cohort_id: int):
    cohort = _cohort(cohort_id)
    cohorts.new_code(current_user, cohort)
    db.session.commit()
    flash("New join code made; the old link no longer works.", "success")
    return redirect(url_for("trainer.cohort", cohort_id=cohort.id))


@bp.post("/cohorts/<int:cohort_id>/members/<int:user_id>/remove")
def remove_member(cohort_id: int, user_id: int):
    cohort = _cohort(cohort_id)
    cohorts.remove_member(current_user, cohort, user_id)
    db.session.commit()
    flash("Member removed from the cohort. Their attempts stay.", "info")
    return redirect(url_for("trainer.cohort", cohort_id=cohort.id))


@bp.post("/cohorts/<int:cohort_id>/assignments")
def assign(cohort_id: int):
    cohort = _cohort(cohort_id)
    form = AssignForm(_quizzes())
    if form.validate_on_submit():
        quiz = db.first_or_404(sa.select(Quiz).where(Quiz.slug == form.quiz.data))
        cohorts.assign(current_user, cohort, quiz, form.due_at())
        db.session.commit()
        flash(f"Assigned “{quiz.title}”.", "success")
    else:
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
    return redirect(url_for("trainer.cohort", cohort_id=cohort.id))


@bp.post("/cohorts/<int:cohort_id>/assignments/<int:assignment_id>/remove")
def unassign(cohort_id: int, assignment_id: int):
    cohort = _cohort(cohort_id)
    try:
        cohorts.unassign(current_user, cohort, assignment_id)
    except cohorts.CohortError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash("Assignment removed.", "info")
    return redirect(url_for("trainer.cohort", cohort_id=cohort.id))


# --- results ----------------------------------------------------------------------


@bp.get("/cohorts/<int:cohort_id>/results")
def results(cohort_id: int):
    cohort = _cohort(cohort_id)
    quizzes = _quizzes(cohort)
    form = ResultsFilterForm(quizzes, formdata=request.args)
    quiz = next(
        (q for q in quizzes if q.slug == form.quiz.data),
        quizzes[0] if quizzes else None,
    )
    rows, page = [], None
    if quiz is not None:
        form.quiz.data = quiz.slug
        since, until = _range(form)
        sort, descending = (
            request.args.get("sort", "name"),
            request.args.get("dir") == "desc",
        )
        rows = cohorts.sort_progress(
            cohorts.progress(cohort, quiz, since=since, until=until), sort, descending
        )
        page = _Page(rows, requested_page(), PER_PAGE)
    return render_template(
        "trainer/results.html",
        cohort=cohort,
        quiz=quiz,
        form=form,
        page=page,
        statuses=cohorts.STATUSES,
    )


@bp.get("/cohorts/<int:cohort_id>/members/<int:user_id>")
def member(cohort_id: int, user_id: int):
    cohort = _cohort(cohort_id)
    player = _member(cohort, user_id)
    history = db.session.scalars(
        sa.select(Attempt)
        .where(Attempt.user_id == player.id, Attempt.quiz_id.in_(_assigned_ids(cohort)))
        .order_by(Attempt.started_at.desc())
        .options(selectinload(Attempt.quiz))
    ).all()
    return render_template(
        "trainer/member.html", cohort=cohort, player=player, history=history
    )


@bp.get("/cohorts/<int:cohort_id>/attempts/<int:attempt_id>")
def attempt(cohort_id: int, attempt_id: int):
    """A member's attempt at one of the cohort's assigned quizzes, reviewed."""
    cohort = _cohort(cohort_id)
    attempt = db.get_or_404(Attempt, attempt_id)
    _member(cohort, attempt.user_id)
    if attempt.quiz_id not in _assigned_ids(cohort):
        abort(404)
    if not attempt.is_finished:
        flash(
            "This attempt is still in progress; its review appears when it is finished.",
            "info",
        )
    return render_template(
        "trainer/attempt.html",
        cohort=cohort,
        attempt=attempt,
        items=attempts.review(attempt) if attempt.is_finished else [],
    )


def _member(cohort: Cohort, user_id: int) -> User:
    """A member of the cohort, or 404."""
    if not db.session.scalar(
        cohorts.member_ids(cohort).where(CohortMember.user_id == user_id)
    ):
        abort(404)
    return db.get_or_404(User, user_id)


def _assigned_ids(cohort: Cohort) -> list[int]:
    return [a.quiz_id for a in cohort.assignments]


# --- exports and statistics -------------------------------------------------------


@bp.get("/export/<kind>.<fmt>")
def export(kind: str, fmt: str):
    if kind not in reports.EXPORTS or fmt not in ("csv", "xlsx"):
        abort(404)
    filters = _report_filters()
    header, rows = reports.EXPORTS[kind]
    filename = exports.export_filename(kind, filters.scope, date.today(), fmt)
    disposition = {"Content-Disposition": exports.content_disposition(filename)}
    if fmt == "csv":
        _log_export(kind, fmt, filters)
        chunks = exports.csv_bytes(
            header, rows(filters), bom=request.args.get("bom") == "1"
        )
        return Response(
            stream_with_context(chunks), mimetype="text/csv", headers=disposition
        )
    # XLSX is a zip written at the end: build it in a temporary file (constant memory).
    # The response closes (and so deletes) the file once it is sent.
    spool = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115
    try:
        exports.write_xlsx(spool, header, rows(filters), sheet=kind)
    except exports.ExportTooLarge as exc:
        spool.close()
        return render_error(400, f"{exc} Download CSV instead.", title="Too many rows")
    _log_export(kind, fmt, filters)
    spool.seek(0)
    return send_file(
        spool,
        download_name=filename,
        as_attachment=True,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def _log_export(kind: str, fmt: str, filters: reports.Filters) -> None:
    """Record the export in the audit log, committed before the download starts.

    The reads above ran in a read transaction; ending it first lets the write begin
    as a write transaction (SQLite's ``BEGIN IMMEDIATE``), which waits for the lock
    instead of failing when someone else is writing.
    """
    db.session.commit()
    with sqlite.write_intent():
        audit.record(
            current_user,
            f"export.{kind}",
            "export",
            fmt,
            f"Exported {kind} as {fmt.upper()}",
            filters=filters.describe(),
        )
        db.session.commit()


@bp.get("/statistics")
def statistics():
    chosen = request.args.get("cohort") or current_user.has_role("admin")
    # A trainer first picks one of their cohorts; until then only the form shows.
    filters = _report_filters() if chosen else reports.Filters()
    report = reports.quiz_statistics(filters) if filters.quiz_id else None
    if filters.cohort_id and not current_user.has_role("admin"):
        choices = _quizzes(db.session.get(Cohort, filters.cohort_id))
    else:
        choices = _quizzes()
    return render_template(
        "trainer/statistics.html",
        report=report,
        filters=filters,
        quizzes=choices,
        cohorts=db.session.scalars(cohorts.managed_cohorts(current_user)).all(),
    )


@bp.get("/statistics.csv")
def statistics_csv():
    filters = _report_filters()
    if filters.quiz_id is None:
        abort(404)
    # One row per question: small, so read it all before the audit commit expires rows.
    rows = list(reports.statistics_rows(reports.quiz_statistics(filters)))
    _log_export("statistics", "csv", filters)
    filename = exports.export_filename(
        "statistics", filters.quiz_slug, date.today(), "csv"
    )
    chunks = exports.csv_bytes(reports.STATISTICS_HEADER, rows)
    return Response(
        chunks,
        mimetype="text/csv",
        headers={"Content-Disposition": exports.content_disposition(filename)},
    )


# --- helpers ----------------------------------------------------------------------


def _cohort(cohort_id: int) -> Cohort:
    """The cohort, if the current user manages it; otherwise 404 (no hint it exists)."""
    cohort = db.session.get(Cohort, cohort_id)
    if cohort is None or not cohorts.can_manage(current_user, cohort):
        abort(404)
    return cohort


def _quizzes(cohort: Cohort | None = None) -> list[Quiz]:
    """A cohort's assigned quizzes (what its trainer may look at), or, to assign from,
    every published quiz."""
    if cohort is not None:
        return [a.quiz for a in cohort.assignments]
    return list(
        db.session.scalars(
            sa.select(Quiz)
            .where(Quiz.is_published.is_(True), Quiz.is_archived.is_(False))
            .order_by(Quiz.title)
        )
    )


def _report_filters() -> reports.Filters:
    """Filters from the query string.

    A trainer must name a cohort they manage, and sees only the quizzes assigned to it
    (what learners agree to share when they join) and only their own cohorts' names.
    Admins may leave the cohort out to cover everyone.
    """
    admin = current_user.has_role("admin")
    cohort = None
    if request.args.get("cohort"):
        cohort = _cohort(_id_arg("cohort"))
    elif not admin:
        abort(403)
    quiz = None
    if request.args.get("quiz"):
        quiz = db.first_or_404(sa.select(Quiz).where(Quiz.slug == request.args["quiz"]))
    limits = {}
    if not admin:
        assigned = tuple(a.quiz_id for a in cohort.assignments)
        if quiz is not None and quiz.id not in assigned:
            abort(404)
        limits = {"quiz_ids": assigned, "cohort_owner_id": current_user.id}
    return reports.Filters.of(
        cohort, quiz, _date_arg("since"), _date_arg("until", next_day=True), **limits
    )


def _date_arg(name: str, *, next_day: bool = False) -> datetime | None:
    """A date filter; a malformed one is a 400 rather than silently "all dates"."""
    value = day_arg(name, next_day=next_day)
    if value is None and request.args.get(name):
        abort(400)
    return value


def _id_arg(name: str) -> int:
    value = request.args.get(name, type=int)
    if value is None or not 0 < value <= MAX_ID:
        abort(404)
    return value


def _range(form: ResultsFilterForm) -> tuple[datetime | None, datetime | None]:
    """The form's days as [start of since, end of until); an unusable day is no bound."""

    def bound(day, next_day=False):
        try:
            return parse_day(day.isoformat(), next_day=next_day) if day else None
        except ValueError:
            return None

    return bound(form.since.data), bound(form.until.data, next_day=True)


class _Page:
    """A page of an already sorted list, shaped like Flask-SQLAlchemy's pagination."""

    def __init__(self, rows: list, page: int, per_page: int):
        self.total = len(rows)
        self.pages = max(1, -(-self.total // per_page))
        self.page = min(page, self.pages)
        start = (self.page - 1) * per_page
        self.items = rows[start : start + per_page]
        self.has_prev, self.has_next = self.page > 1, self.page < self.pages
        self.prev_num, self.next_num = self.page - 1, self.page + 1
