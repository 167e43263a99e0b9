"""Forms of the play blueprint."""

from __future__ import annotations

from wtforms import HiddenField, SelectMultipleField
from wtforms.validators import InputRequired

from ..forms import Form, display_name_field, options


class GuestForm(Form):
    display_name = display_name_field()
    next = HiddenField()


class StartForm(Form):
    """Start or resume an attempt: a button, protected by the CSRF token."""


class FinishForm(Form):
    """Finish an attempt now, scoring unanswered questions as 0."""


class AnswerForm(Form):
    """An answer. Its CSRF token is checked for every POST by the app (as for every
    form); this form does not sign a second one, so the page renders ``csrf_token()``."""

    class Meta:
        csrf = False

    choice = SelectMultipleField(
        "Answer", coerce=int, validators=[InputRequired("Choose an answer.")]
    )

    def __init__(self, choice_ids: list[int], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.choice.choices = options((cid, str(cid)) for cid in choice_ids)
