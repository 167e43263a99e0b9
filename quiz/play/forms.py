"""Forms of the play blueprint."""

from __future__ import annotations

import unicodedata

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

DISPLAY_NAME_MAX = 40


def clean_display_name(value: str | None) -> str:
    """Collapse runs of white space and trim; the rest is checked by the validator."""
    return " ".join((value or "").split())


def no_control_characters(form, field) -> None:
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in field.data):
        raise ValidationError("Use letters, digits, spaces and punctuation only.")


class GuestForm(FlaskForm):
    display_name = StringField(
        "Display name",
        filters=[clean_display_name],
        validators=[
            DataRequired("Choose a display name."),
            Length(
                min=2,
                max=DISPLAY_NAME_MAX,
                message=f"Use 2 to {DISPLAY_NAME_MAX} characters.",
            ),
            no_control_characters,
        ],
        description="Shown on the leaderboard. Do not use your full name.",
    )
    next = HiddenField()


class StartForm(FlaskForm):
    """Start or resume an attempt: a button, protected by the CSRF token."""


class FinishForm(FlaskForm):
    """Finish an attempt now, scoring unanswered questions as 0."""


class AnswerForm(FlaskForm):
    choice = SelectMultipleField(
        "Answer", coerce=int, validators=[InputRequired("Choose an answer.")]
    )

    def __init__(self, choice_ids: list[int], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.choice.choices = [(cid, str(cid)) for cid in choice_ids]
