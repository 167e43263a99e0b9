"""Forms of the play blueprint."""

from __future__ import annotations

from collections.abc import Sequence

from wtforms import HiddenField, SelectMultipleField

from ..forms import Form, display_name_field, options


class GuestForm(Form):
    display_name = display_name_field()
    next = HiddenField()


class StartForm(Form):
    """Start or resume an attempt: a button, protected by the CSRF token."""


class FinishForm(Form):
    """Finish an attempt now, scoring unanswered questions as 0."""


class AnswerForm(Form):
    """A question's choices, as the question page shows them (with the choices posted
    and the error, when an answer was refused). Answers are read by
    ``posted_choices`` and checked by ``attempts.record_answer``, not validated
    here. The CSRF token is checked for every POST by the app (as for every form);
    this form does not carry a second one, so the page renders ``csrf_token()``."""

    class Meta:
        csrf = False

    choice = SelectMultipleField("Answer", coerce=int)

    def __init__(self, choice_ids: Sequence[int], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.choice.choices = options((cid, str(cid)) for cid in choice_ids)


def posted_choices(formdata) -> list[int] | None:
    """The choices an answer form posted, as choice ids; None when one is not a
    number at all (so no question's choice).

    ``attempts.record_answer`` checks an answer against its question; an
    ``AnswerForm`` is built only to show the question again with the error (its
    validation too cost about 70 µs an answer, for checks the answer makes anyway).
    """
    try:
        return [int(value) for value in formdata.getlist("choice")]
    except ValueError:
        return None
