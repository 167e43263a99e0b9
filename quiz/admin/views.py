"""Admin pages. Every route is for admins only (see the blueprint's guard)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import accounts, audit, authoring, banks
from ..banks import MAX_CHOICES
from ..extensions import db
from ..forms import apply_error
from ..models import DIFFICULTIES, QUESTION_TYPES, BankUpload, Question, Quiz, User
from ..paging import day_arg, paginate
from . import bp
from .forms import (
    ButtonForm,
    QuestionForm,
    QuizForm,
    RoleForm,
    SetPasswordForm,
    UploadForm,
    UserSearchForm,
)

PER_PAGE = 25


@bp.get("/")
def index():
    counts = {
        "quizzes": db.session.scalar(sa.select(sa.func.count()).select_from(Quiz)),
        "questions": db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Question)
            .where(~Question.is_archived)
        ),
        "accounts": db.session.scalar(
            sa.select(sa.func.count()).select_from(User).where(~User.is_guest)
        ),
    }
    return render_template("admin/index.html", counts=counts)


# --- quizzes --------------------------------------------------------------------------


@bp.get("/quizzes")
def quizzes():
    rows = db.session.execute(
        sa.select(Quiz, sa.func.count(Question.id))
        .outerjoin(
            Question, sa.and_(Question.quiz_id == Quiz.id, ~Question.is_archived)
        )
        .group_by(Quiz.id)
        .order_by(Quiz.is_archived, Quiz.title)
    ).all()
    return render_template("admin/quizzes.html", rows=rows, button=ButtonForm())


@bp.route("/quizzes/new", methods=["GET", "POST"])
def new_quiz():
    form = QuizForm()
    if form.validate_on_submit():
        try:
            quiz = authoring.create_quiz(
                current_user, form.slug.data, **form.settings()
            )
        except authoring.AuthoringError as exc:
            apply_error(form, exc)
        else:
            db.session.commit()
            flash(
                f"Quiz “{quiz.title}” created. Add questions, then publish it.",
                "success",
            )
            return redirect(url_for("admin.quiz", slug=quiz.slug))
    return _form_page("admin/quiz_form.html", form=form, quiz=None)


@bp.route("/quizzes/<slug>", methods=["GET", "POST"])
def quiz(slug: str):
    quiz = _quiz(slug)
    form = QuizForm(obj=quiz)
    form.slug.data = quiz.slug
    if form.validate_on_submit():
        authoring.update_quiz(current_user, quiz, **form.settings())
        db.session.commit()
        flash("Quiz settings saved.", "success")
        return redirect(url_for("admin.quiz", slug=quiz.slug))
    questions = db.session.scalars(
        authoring.question_query(authoring.QuestionFilter(quiz=quiz.slug))
    ).all()
    return _form_page(
        "admin/quiz_form.html",
        form=form,
        quiz=quiz,
        questions=questions,
        button=ButtonForm(),
    )


@bp.post("/quizzes/<slug>/status")
def quiz_status(slug: str):
    quiz = _quiz(slug)
    action = ButtonForm().action.data
    changes = {
        "publish": lambda: authoring.set_published(current_user, quiz, True),
        "unpublish": lambda: authoring.set_published(current_user, quiz, False),
        "archive": lambda: authoring.set_archived(current_user, quiz, True),
        "restore": lambda: authoring.set_archived(current_user, quiz, False),
    }
    if action not in changes:
        abort(400)
    try:
        changes[action]()
    except authoring.AuthoringError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Quiz “{quiz.title}”: {action} done.", "success")
    return redirect(url_for("admin.quiz", slug=quiz.slug))


@bp.get("/quizzes/<slug>/export")
def export_quiz(slug: str):
    quiz = _quiz(slug)
    filename = f"{quiz.slug}-{date.today().isoformat()}.yaml"
    return Response(
        banks.dump_bank(quiz),
        mimetype="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- questions ------------------------------------------------------------------------


@bp.get("/questions")
def questions():
    filters = authoring.QuestionFilter(
        quiz=request.args.get("quiz") or None,
        type=request.args.get("type")
        if request.args.get("type") in QUESTION_TYPES
        else None,
        difficulty=request.args.get("difficulty")
        if request.args.get("difficulty") in DIFFICULTIES
        else None,
        tag=request.args.get("tag", "").strip() or None,
        text=request.args.get("q", "").strip() or None,
        archived=request.args.get("archived") == "1",
    )
    page = db.paginate(
        authoring.question_query(filters), per_page=PER_PAGE, error_out=False
    )
    quizzes = db.session.scalars(sa.select(Quiz).order_by(Quiz.title)).all()
    return render_template(
        "admin/questions.html", page=page, filters=filters, quizzes=quizzes
    )


@bp.route("/quizzes/<slug>/questions/new", methods=["GET", "POST"])
def new_question(slug: str):
    quiz = _quiz(slug)
    form = QuestionForm()
    if not form.is_submitted():
        form.fill(
            {
                "id": "",
                "type": "single",
                "prompt": "",
                "explanation": "",
                "source": "",
                "difficulty": "medium",
                "choices": [],
            }
        )
    return _question_form(form, quiz, None)


@bp.route("/questions/<slug>", methods=["GET", "POST"])
def question(slug: str):
    # Lock the row while saving, so two racing edits make one revision each in turn.
    query = sa.select(Question).where(Question.slug == slug)
    if request.method == "POST":
        query = query.with_for_update()
    question = db.first_or_404(query)
    form = QuestionForm()
    if not form.is_submitted():
        form.fill(authoring.revision_as_raw(question))
    return _question_form(form, question.quiz, question)


def _question_form(form: QuestionForm, quiz: Quiz, question: Question | None):
    """Add a choice row, preview, or save: the three buttons of the question form."""
    preview = None
    if form.is_submitted() and form.add_choice.data:
        form.add_choice_row()
    elif form.validate_on_submit():
        slug = question.slug if question else form.slug.data
        raw = form.as_bank_question(
            slug or authoring.new_question_slug(quiz, form.nonce.data)
        )
        try:
            if form.preview.data:
                preview = banks.check_question(raw)
            else:
                saved = authoring.save_question(current_user, quiz, raw, question)
                db.session.commit()
                flash(f"Question {saved.slug} saved.", "success")
                return redirect(url_for("admin.quiz", slug=quiz.slug))
        except banks.BankError as exc:
            form.show_problems(exc.problems)
        except authoring.AuthoringError as exc:
            apply_error(form, exc)
    return _form_page(
        "admin/question_form.html",
        form=form,
        quiz=quiz,
        question=question,
        preview=preview,
        button=ButtonForm(),
        max_choices=MAX_CHOICES,
    )


@bp.post("/questions/<slug>/status")
def question_status(slug: str):
    question = db.first_or_404(sa.select(Question).where(Question.slug == slug))
    action = ButtonForm().action.data
    if action == "archive":
        authoring.archive_question(current_user, question)
    elif action == "restore":
        authoring.restore_question(current_user, question)
    else:
        abort(400)
    db.session.commit()
    flash(f"Question {question.slug}: {action} done.", "success")
    return redirect(url_for("admin.quiz", slug=question.quiz.slug))


@bp.get("/questions/<slug>/preview")
def preview_question(slug: str):
    question = db.first_or_404(sa.select(Question).where(Question.slug == slug))
    data = banks.check_question(authoring.revision_as_raw(question))
    return render_template(
        "admin/question_preview.html", question=question, preview=data
    )


# --- bank files -----------------------------------------------------------------------


@bp.route("/imports", methods=["GET", "POST"])
def imports():
    form = UploadForm()
    problems = []
    if form.validate_on_submit():
        upload = form.bank.data
        try:
            staged = authoring.stage_upload(
                current_user, upload.filename, upload.read()
            )
        except banks.BankError as exc:
            problems = exc.problems
        else:
            db.session.commit()
            return redirect(url_for("admin.review_import", upload_id=staged.id))
    status = 422 if problems or form.errors else 200
    return render_template("admin/imports.html", form=form, problems=problems), status


@bp.get("/imports/<int:upload_id>")
def review_import(upload_id: int):
    upload = _upload(upload_id)
    try:
        bank = authoring.parse_upload(upload.filename, upload.content)
    except banks.BankError as exc:  # the database changed since the upload was checked
        return _stale_upload(upload, exc.problems)
    plan = banks.plan_sync(bank)
    return render_template(
        "admin/import_review.html",
        upload=upload,
        bank=bank,
        plan=plan,
        digest=authoring.plan_digest(plan),
        button=ButtonForm(),
    )


@bp.post("/imports/<int:upload_id>/apply")
def apply_import(upload_id: int):
    upload = _upload(upload_id)
    try:
        slug, report = authoring.apply_upload(
            current_user, upload, request.form.get("digest", "")
        )
    except banks.BankError as exc:
        db.session.rollback()
        return _stale_upload(upload, exc.problems)
    except authoring.AuthoringError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("admin.review_import", upload_id=upload.id))
    db.session.commit()
    flash(f"Imported as a draft if new: {report.summary(slug)}.", "success")
    return redirect(url_for("admin.quiz", slug=slug))


@bp.post("/imports/<int:upload_id>/discard")
def discard_import(upload_id: int):
    authoring.discard_upload(current_user, _upload(upload_id))
    db.session.commit()
    flash("The upload was discarded; nothing was imported.", "info")
    return redirect(url_for("admin.imports"))


def _stale_upload(upload: BankUpload, problems):
    body = render_template(
        "admin/imports.html",
        form=UploadForm(formdata=None),
        problems=problems,
        stale=upload,
        button=ButtonForm(),
    )
    return body, 409


def _upload(upload_id: int) -> BankUpload:
    upload = db.session.get(BankUpload, upload_id)
    if upload is None:
        flash("That upload was already imported or discarded.", "info")
        abort(redirect(url_for("admin.imports")))
    return upload


# --- users ----------------------------------------------------------------------------


@bp.get("/users")
def users():
    form = UserSearchForm(request.args)
    statement = accounts.search(form.q.data, form.role.data)
    page = paginate(statement, PER_PAGE)
    return render_template(
        "admin/users.html",
        page=page,
        form=form,
        role_form=RoleForm,
        button=ButtonForm(),
    )


@bp.post("/users/<int:user_id>/role")
def user_role(user_id: int):
    user = db.get_or_404(User, user_id)
    form = RoleForm()
    if form.validate_on_submit():
        _apply(
            lambda: accounts.set_role(current_user, user, form.role.data),
            f"{user.email} is now {form.role.data}.",
        )
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/status")
def user_status(user_id: int):
    user = db.get_or_404(User, user_id)
    action = ButtonForm().action.data
    if action not in ("disable", "enable"):
        abort(400)
    _apply(
        lambda: accounts.set_disabled(current_user, user, action == "disable"),
        f"{user.email}: {action}d.",
    )
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def user_password(user_id: int):
    user = db.get_or_404(User, user_id)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.set_password(current_user, user, form.password.data)
        except accounts.AccountError as exc:
            apply_error(form, exc)
        else:
            db.session.commit()
            flash(
                f"New password set for {user.email}; they are signed out everywhere.",
                "success",
            )
            return redirect(url_for("admin.users"))
    return _form_page("admin/user_password.html", form=form, user=user)


def _apply(change, success: str) -> None:
    try:
        change()
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(success, "success")


# --- audit log ------------------------------------------------------------------------


@bp.get("/audit")
def audit_log():
    filters = audit.AuditFilter(
        action=request.args.get("action") or None,
        actor=request.args.get("actor", "").strip() or None,
        target_type=request.args.get("target") or None,
        since=day_arg("since"),
        until=day_arg("until", next_day=True),
    )
    page = paginate(audit.query(filters), 50)
    return render_template(
        "admin/audit.html", page=page, filters=filters, actions=audit.actions()
    )


# --- helpers --------------------------------------------------------------------------


def _quiz(slug: str) -> Quiz:
    return db.first_or_404(sa.select(Quiz).where(Quiz.slug == slug))


def _form_page(template: str, **context):
    """Render a form page: 422 when the submitted form has errors, else 200."""
    form = context["form"]
    status = 422 if form.is_submitted() and form.errors else 200
    return render_template(template, **context), status
