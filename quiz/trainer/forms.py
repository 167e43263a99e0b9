"""Forms of the trainer blueprint and of joining a cohort."""

from __future__ import annotations

from datetime import UTC, datetime, time

from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..forms import Form, collapse_whitespace, no_control_characters, options


class CohortForm(Form):
    name = StringField(
        "Name",
        filters=[collapse_whitespace],
        validators=[
            DataRequired("Give the cohort a name."),
            Length(max=80),
            no_control_characters,
        ],
    )
    description = TextAreaField(
        "Description",
        filters=[lambda v: (v or "").strip()],
        validators=[Length(max=1000)],
    )


class AssignForm(Form):
    quiz = SelectField("Quiz", validators=[DataRequired("Choose a quiz.")])
    due = DateField("Due date (optional)", validators=[Optional()])

    def __init__(self, quizzes, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.quiz.choices = options((q.slug, q.title) for q in quizzes)

    def due_at(self) -> datetime | None:
        """The end of the due day, in UTC."""
        if self.due.data is None:
            return None
        return datetime.combine(self.due.data, time.max, tzinfo=UTC)


class JoinForm(Form):
    code = StringField(
        "Join code",
        filters=[lambda v: "".join((v or "").split()).upper()],
        validators=[
            DataRequired("Enter the code your trainer gave you."),
            Length(max=16),
        ],
    )


class ResultsFilterForm(Form):
    """The dashboard's filters (a GET form: no token, nothing changes)."""

    class Meta:
        csrf = False

    quiz = SelectField("Quiz")
    since = DateField("Started from", validators=[Optional()])
    until = DateField("Started until", validators=[Optional()])

    def __init__(self, quizzes, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.quiz.choices = options((q.slug, q.title) for q in quizzes)
