"""Forms of the auth blueprint."""

from __future__ import annotations

from wtforms import BooleanField, EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from ..forms import Form, display_name_field
from ..passwords import MAX_LENGTH, MIN_LENGTH

EMAIL_MAX = 254


def email_field() -> EmailField:
    return EmailField(
        "E-mail address",
        filters=[lambda v: (v or "").strip()],
        validators=[
            DataRequired("Enter your e-mail address."),
            Length(max=EMAIL_MAX, message=f"Use at most {EMAIL_MAX} characters."),
        ],
    )


def new_password_field(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired("Choose a password."),
            Length(
                min=MIN_LENGTH,
                max=MAX_LENGTH,
                message=f"Use {MIN_LENGTH} to {MAX_LENGTH} characters.",
            ),
        ],
        description=(
            f"At least {MIN_LENGTH} characters. A few unrelated words make a strong, "
            "memorable password; a password manager is even better."
        ),
    )


def confirm_field(target: str) -> PasswordField:
    return PasswordField(
        "Repeat the password",
        validators=[
            DataRequired("Repeat the password."),
            EqualTo(target, message="The two passwords are not the same."),
        ],
    )


class RegisterForm(Form):
    display_name = display_name_field()
    email = email_field()
    password = new_password_field()
    confirm = confirm_field("password")
    next = HiddenField()


class LoginForm(Form):
    email = email_field()
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=MAX_LENGTH)],
    )
    remember = BooleanField("Keep me signed in on this device for 14 days")
    next = HiddenField()


class PasswordForm(Form):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password.")]
    )
    password = new_password_field("New password")
    confirm = confirm_field("password")


class LogoutForm(Form):
    """Sign out: a button, protected by the CSRF token."""
