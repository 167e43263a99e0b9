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

from .. import accounts
from ..extensions import db, limiter
from ..forms import apply_error
from ..models import Attempt
from ..security import safe_next_url
from . import bp
from .forms import LoginForm, LogoutForm, PasswordForm, RegisterForm


def _failed_sign_in(response) -> bool:
    # Only failed attempts count towards the sign-in limits; success redirects.
    return response.status_code != 302


def _account_key() -> str:
    return "account:" + accounts.normalise_email(request.form.get("email"))


@bp.route("/register", methods=["GET", "POST"])
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
@limiter.limit(
    lambda: current_app.config["RATELIMIT_SIGNIN_ADDRESS"],
    key_func=get_remote_address,
    methods=["POST"],
    deduct_when=_failed_sign_in,
    scope="sign-in-address",
)
@limiter.limit(
    lambda: current_app.config["RATELIMIT_SIGNIN_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed_sign_in,
    scope="sign-in-account",
)
def login():
    form = LoginForm(next=request.args.get("next"))
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data)
        except accounts.AccountError as exc:
            current_app.logger.info("Sign-in failed from %s", get_remote_address())
            form.form_errors.append(str(exc))
        else:
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
    if not current_user.is_guest:
        accounts.end_sessions(current_user)
        db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("play.index"))


@bp.get("/account")
@login_required
def account():
    if current_user.is_guest:
        return redirect(url_for("auth.register"))
    page = db.paginate(
        sa.select(Attempt)
        .where(Attempt.user_id == current_user.id)
        .order_by(Attempt.started_at.desc(), Attempt.id.desc()),
        per_page=20,
        error_out=False,
    )
    return render_template("auth/account.html", page=page)


@bp.route("/password", methods=["GET", "POST"])
@login_required
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
    """A fresh session for the user: nothing from the previous one carries over."""
    session.clear()
    login_user(user, remember=remember)


@bp.app_context_processor
def _logout_form():
    # Built on demand without reading the request body: error pages (413) render it too.
    return {"logout_form": lambda: LogoutForm(formdata=None)}
