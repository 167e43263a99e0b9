"""Forms of the play blueprint."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectMultipleField
from wtforms.validators import InputRequired

from ..forms import display_name_field, options


class GuestForm(FlaskForm):
    display_name = display_name_field()
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
        self.choice.choices = options((cid, str(cid)) for cid in choice_ids)
