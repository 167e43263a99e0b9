"""Form pieces shared by the blueprints' forms."""

from __future__ import annotations

import unicodedata

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from werkzeug.datastructures import CombinedMultiDict
from wtforms import Field, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from .csrf_tokens import FormCSRF

DISPLAY_NAME_MAX = 40


class Form(FlaskForm):
    """Base form: reads only the posted form fields.

    Flask-WTF would also read uploaded files and JSON bodies into the fields, so a file
    part named like a text field (or a JSON sign-in) would reach the validators as an
    object they do not expect. Forms that take uploads set ``accepts_files``.
    """

    accepts_files = False

    class Meta:
        csrf_class = FormCSRF  # the session's one signed token (quiz.csrf_tokens)

        def wrap_formdata(self, form, formdata):
            if formdata is not _Auto:
                return formdata
            if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
                return None
            if form.accepts_files and request.files:
                return CombinedMultiDict((request.files, request.form))
            return request.form


def collapse_whitespace(value: str | None) -> str:
    """Collapse runs of white space and trim."""
    return " ".join((value or "").split())


def no_control_characters(form, field: Field) -> None:
    if any(
        unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in field.data or ""
    ):
        raise ValidationError("Use letters, digits, spaces and punctuation only.")


def display_name_field(label: str = "Display name") -> StringField:
    return StringField(
        label,
        filters=[collapse_whitespace],
        validators=[
            DataRequired("Choose a display name."),
            Length(
                min=2,
                max=DISPLAY_NAME_MAX,
                message=f"Use 2 to {DISPLAY_NAME_MAX} characters.",
            ),
            no_control_characters,
        ],
        description="Shown on leaderboards. You need not use your real name.",
    )


def apply_error(form, error) -> None:
    """Put a domain error's message next to the field it names, or on the form."""
    field = getattr(error, "field", None)
    if field and field in form:
        form[field].errors = [*form[field].errors, str(error)]
    else:
        form.form_errors.append(str(error))


def options(pairs) -> list[SelectChoice]:
    """Choices for a select, radio or checkbox field from ``(value, label)`` pairs."""
    return [SelectChoice(value, label) for value, label in pairs]
