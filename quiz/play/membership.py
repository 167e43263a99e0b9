"""Learners and cohorts: join with a code or link, see assignments, leave, standings."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from .. import cohorts, leaderboard
from ..admin.forms import ButtonForm
from ..extensions import db
from ..forms import apply_error
from ..models import Cohort, Quiz
from ..paging import requested_page
from ..trainer.forms import JoinForm
from . import bp


@bp.get("/cohorts")
@login_required
def my_cohorts():
    if current_user.is_guest:
        return redirect(url_for("auth.register", next=url_for("play.my_cohorts")))
    mine = [
        (c, cohorts.my_assignments(current_user, c))
        for c in cohorts.my_cohorts(current_user)
    ]
    return render_template(
        "play/cohorts.html", mine=mine, form=JoinForm(), button=ButtonForm()
    )


@bp.route("/join", methods=["GET", "POST"])
@bp.route("/join/<code>", methods=["GET"])
@login_required
def join(code: str | None = None):
    if current_user.is_guest:
        flash(
            "Create an account (your guest scores come with you) to join a cohort.",
            "info",
        )
        return redirect(url_for("auth.register", next=url_for("play.join", code=code)))
    form = JoinForm(data={"code": code} if code else None)
    cohort = cohorts.find_by_code(code) if code else None
    if form.validate_on_submit():
        try:
            cohort = cohorts.join(current_user, form.code.data)
        except cohorts.CohortError as exc:
            apply_error(form, exc)
        else:
            db.session.commit()
            flash(f"You joined “{cohort.name}”.", "success")
            return redirect(url_for("play.my_cohorts"))
    status = 422 if form.errors else 200
    return render_template("play/join.html", form=form, cohort=cohort), status


@bp.post("/cohorts/<int:cohort_id>/leave")
@login_required
def leave(cohort_id: int):
    cohort = db.get_or_404(Cohort, cohort_id)
    if not cohorts.is_member(current_user, cohort):
        abort(404)
    cohorts.leave(current_user, cohort)
    db.session.commit()
    flash(f"You left “{cohort.name}”.", "info")
    return redirect(url_for("play.my_cohorts"))


@bp.get("/cohorts/<int:cohort_id>/leaderboard/<slug>")
@login_required
def cohort_leaderboard(cohort_id: int, slug: str):
    cohort = db.get_or_404(Cohort, cohort_id)
    if not (
        cohorts.is_member(current_user, cohort)
        or cohorts.can_manage(current_user, cohort)
    ):
        abort(404)
    quiz = db.first_or_404(
        sa.select(Quiz).where(Quiz.slug == slug, Quiz.is_published.is_(True))
    )
    board = leaderboard.quiz_board(
        quiz.id,
        page=requested_page(),
        me_id=current_user.id,
        among=cohorts.member_ids(cohort),
    )
    return render_template(
        "play/leaderboard.html", board=board, period="all", quiz=quiz, cohort=cohort
    )
