"""Accounts: register, sign in (rate-limited), sign out, the account page, password."""

from __future__ import annotations

import sqlalchemy as sa
from flask import (
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.orm import selectinload

from .. import accounts, events, throttle
from ..errors import rate_limited_page
from ..extensions import db, limiter
from ..forms import apply_error
from ..models import Attempt
from ..paging import paginate
from ..security import safe_next_url
from . import bp
from .forms import LoginForm, LogoutForm, PasswordForm, RegisterForm


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"], methods=["POST"])
def register():
    if current_user.is_authenticated and not current_user.is_guest:
        return redirect(url_for("auth.account"))
    form = RegisterForm(next=request.args.get("next"))
    if form.validate_on_submit():
        guest = current_user if current_user.is_authenticated else None
        try:
            user = accounts.register(
                form.display_name.data, form.email.data, form.password.data, guest
            )
        except accounts.AccountError as exc:
            apply_error(form, exc)
        else:
            db.session.commit()
            _start_session(user, remember=False)
            flash("Your account is ready. Your scores are saved to it.", "success")
            return redirect(safe_next_url(form.next.data) or url_for("play.index"))
    elif current_user.is_authenticated and not form.is_submitted():
        form.display_name.data = current_user.display_name
    return render_template("auth/register.html", form=form), 422 if form.errors else 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm(next=request.args.get("next"))
    if form.validate_on_submit():
        email = accounts.normalise_email(form.email.data)
        try:
            reservation = throttle.reserve_sign_in(email, get_remote_address())
        except throttle.Throttled as exc:
            events.log(
                "sign-in", result="throttled", email=email, address=get_remote_address()
            )
            return rate_limited_page(exc.retry_after)
        try:
            user = accounts.authenticate(email, form.password.data)
        except accounts.AccountError as exc:
            events.log(
                "sign-in",
                result="failure",
                email=email,
                address=get_remote_address(),
                reason=type(exc).__name__,
            )
            form.form_errors.append(str(exc))
        else:
            reservation.release()  # only failures count
            events.log(
                "sign-in", result="success", user=user.id, address=get_remote_address()
            )
            if current_user.is_authenticated and current_user.is_guest:
                accounts.merge_guest(current_user, user)
            db.session.commit()
            _start_session(user, remember=form.remember.data)
            flash(f"Signed in as {user.display_name}.", "success")
            return redirect(safe_next_url(form.next.data) or url_for("play.index"))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    guest = current_user.is_guest
    if not guest:
        accounts.end_sessions(current_user)
        db.session.commit()
    session.clear()
    logout_user()  # after clearing: it marks the remember-me cookie for deletion
    if guest:
        flash(
            "You left the guest session; its scores stay on the leaderboards.", "info"
        )
    else:
        flash("You are signed out on every device.", "info")
    return redirect(url_for("play.index"))


@bp.get("/account")
@login_required
def account():
    if current_user.is_guest:
        return redirect(url_for("auth.register"))
    page = paginate(
        sa.select(Attempt)
        .where(Attempt.user_id == current_user.id)
        .order_by(Attempt.started_at.desc(), Attempt.id.desc())
        .options(selectinload(Attempt.quiz)),
        20,
    )
    return render_template("auth/account.html", page=page)


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["RATELIMIT_ACCOUNT_CHANGES"],
    key_func=lambda: f"user:{current_user.id}",
    methods=["POST"],
)
def password():
    if current_user.is_guest:
        return redirect(url_for("auth.register"))
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(
                current_user, form.current_password.data, form.password.data
            )
        except accounts.AccountError as exc:
            apply_error(form, exc)
        else:
            db.session.commit()
            _start_session(current_user._get_current_object(), remember=False)
            flash("Password changed. Other devices have been signed out.", "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/password.html", form=form), 422 if form.errors else 200


def _start_session(user, *, remember: bool) -> None:
    """A fresh session for the user: nothing from the previous one carries over,
    including another user's remember-me cookie."""
    session.clear()
    session["_remember"] = "clear"  # login_user replaces this when remember is on
    login_user(user, remember=remember)


@bp.app_context_processor
def _logout_form():
    # Built on demand without reading the request body: error pages (413) render it too.
    return {"logout_form": lambda: LogoutForm(formdata=None)}
