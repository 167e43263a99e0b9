"""Forms of the admin blueprint."""

from __future__ import annotations

import secrets

from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms import Form as SubForm
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from ..auth.forms import confirm_field, new_password_field
from ..banks import MAX_CHOICES, SLUG_RE, TEXT_LIMITS
from ..forms import Form, collapse_whitespace, no_control_characters, options
from ..models import DIFFICULTIES, QUESTION_TYPES, ROLES

# Rows beyond the bank limit are kept (the validator reports them); far beyond, not.
MAX_CHOICE_ROWS = 3 * MAX_CHOICES
TYPE_LABELS = {
    "single": "Single answer",
    "multiple": "Select all that apply",
    "true_false": "True or false",
}


def strip(value):
    return value.strip() if isinstance(value, str) else value


def slug_field(label: str, required: bool) -> StringField:
    return StringField(
        label,
        filters=[strip],
        validators=[
            DataRequired("Give a stable id.") if required else Optional(),
            Regexp(SLUG_RE, message="Use 3-64 lowercase letters, digits and hyphens."),
        ],
        description="Lowercase letters, digits and hyphens. It never changes once saved.",
    )


class QuizForm(Form):
    slug = slug_field("Stable id", required=True)
    title = StringField(
        "Title",
        filters=[collapse_whitespace],
        validators=[
            DataRequired("Give a title."),
            Length(max=TEXT_LIMITS["title"]),
            no_control_characters,
        ],
    )
    theme = StringField(
        "Theme",
        filters=[collapse_whitespace],
        validators=[DataRequired("Give a theme."), Length(max=TEXT_LIMITS["theme"])],
    )
    description = TextAreaField(
        "Description",
        filters=[strip],
        validators=[
            DataRequired("Describe the quiz."),
            Length(max=TEXT_LIMITS["description"]),
        ],
    )
    questions_per_attempt = IntegerField(
        "Questions per attempt",
        validators=[Optional(), NumberRange(min=0, max=500)],
        description="Leave empty (or 0) to ask every question.",
    )
    shuffle = BooleanField(
        "Draw questions at random and shuffle the choices", default=True
    )
    time_limit_minutes = IntegerField(
        "Time limit (minutes)",
        default=0,
        validators=[NumberRange(min=0, max=240, message="Use 0 to 240 minutes.")],
        description="0 means no time limit.",
    )
    pass_mark = IntegerField(
        "Pass mark (%)",
        default=70,
        validators=[
            NumberRange(min=0, max=100, message="Use a percentage from 0 to 100.")
        ],
    )

    def settings(self) -> dict:
        return {
            "title": self.title.data,
            "theme": self.theme.data,
            "description": self.description.data,
            "questions_per_attempt": self.questions_per_attempt.data or None,
            "shuffle": self.shuffle.data,
            "time_limit_minutes": self.time_limit_minutes.data,
            "pass_mark": self.pass_mark.data,
        }


class ChoiceForm(SubForm):
    """One choice row of the question form (part of it, so no token of its own)."""

    text = StringField(
        "Text", filters=[strip], validators=[Length(max=TEXT_LIMITS["text"])]
    )
    correct = BooleanField("Correct")
    order = IntegerField(
        "Order",
        validators=[
            Optional(),
            NumberRange(min=1, max=99, message="Use a number from 1."),
        ],
    )
    remove = BooleanField("Remove")


class QuestionForm(Form):
    slug = slug_field("Stable id", required=False)
    type = SelectField(
        "Type", choices=options((t, TYPE_LABELS[t]) for t in QUESTION_TYPES)
    )
    prompt = TextAreaField("Question", filters=[strip])
    choices = FieldList(
        FormField(ChoiceForm), min_entries=2, max_entries=MAX_CHOICE_ROWS
    )
    answer = RadioField(
        "For true or false: the statement is",
        choices=options([("true", "True"), ("false", "False")]),
        validators=[Optional()],
    )
    explanation = TextAreaField(
        "Explanation",
        filters=[strip],
        description="Why the right answer is right, why the tempting wrong one is wrong, "
        "and the practice to take away.",
    )
    source = StringField(
        "Source", filters=[strip], description="Title and publisher of the source."
    )
    difficulty = SelectField(
        "Difficulty",
        choices=options((d, d.capitalize()) for d in DIFFICULTIES),
        default="medium",
    )
    points = IntegerField(
        "Points",
        validators=[Optional(), NumberRange(min=1, max=100)],
        description="Leave empty for the default: easy 1, medium 2, hard 3.",
    )
    tags = StringField(
        "Tags", filters=[strip], description="Comma-separated, e.g. phishing, mfa"
    )
    # Names a new question made without an id, so a repeated submit cannot add it twice.
    nonce = HiddenField()
    add_choice = SubmitField("Add a choice")
    preview = SubmitField("Preview")
    save = SubmitField("Save question")

    def as_bank_question(self, slug: str) -> dict:
        """The form's content as one question in the bank file format."""
        raw = {
            "id": slug,
            "type": self.type.data,
            "prompt": self.prompt.data,
            "explanation": self.explanation.data,
            "source": self.source.data,
            "difficulty": self.difficulty.data,
            "tags": [t.strip() for t in (self.tags.data or "").split(",") if t.strip()],
        }
        if self.points.data:
            raw["points"] = self.points.data
        if self.type.data == "true_false":
            raw["answer"] = {"true": True, "false": False}.get(self.answer.data)
        else:
            raw["choices"] = [
                {"text": entry.text.data, "correct": entry.correct.data}
                for entry in self.kept_choices()
            ]
        return raw

    def add_choice_row(self) -> None:
        if len(self.choices) < MAX_CHOICES:
            self.choices.append_entry()

    def show_problems(self, problems) -> None:
        """Put the bank validator's problems next to the fields they name."""
        fields = {"id": "slug"}
        for problem in problems:
            name = (problem.field or "").split("[")[0].split(".")[0]
            name = fields.get(name, name)
            message = problem.message
            if problem.field and problem.field.startswith("choices["):
                message = f"{problem.field}: {message}"
            if name in self:
                self[name].errors = [*self[name].errors, message]
            else:
                self.form_errors.append(message)

    def kept_choices(self) -> list:
        """Choice rows with text and not marked for removal, in the order asked for."""
        rows = [
            (
                entry.order.data if entry.order.data is not None else index + 1,
                index,
                entry,
            )
            for index, entry in enumerate(self.choices)
            if entry.text.data and not entry.remove.data
        ]
        return [entry for _, _, entry in sorted(rows, key=lambda row: row[:2])]

    def fill(self, raw: dict) -> None:
        """Fill the form from one question in the bank file format (and a new nonce)."""
        self.nonce.data = secrets.token_hex(4)
        self.slug.data = raw["id"]
        self.type.data = raw["type"]
        self.prompt.data = raw["prompt"]
        self.explanation.data = raw["explanation"]
        self.source.data = raw["source"]
        self.difficulty.data = raw["difficulty"]
        self.points.data = raw.get("points")
        self.tags.data = ", ".join(raw.get("tags", []))
        if raw["type"] == "true_false":
            self.answer.data = "true" if raw["answer"] else "false"
        while len(self.choices):
            self.choices.pop_entry()
        for number, choice in enumerate(raw.get("choices", []), start=1):
            self.choices.append_entry(
                {
                    "text": choice["text"],
                    "correct": choice.get("correct", False),
                    "order": number,
                }
            )
        # Room to add choices without JavaScript: at least four rows, one spare.
        spare = max(4 - len(self.choices), 1 if len(self.choices) < MAX_CHOICES else 0)
        for _ in range(spare):
            self.choices.append_entry()


class UploadForm(Form):
    accepts_files = True
    bank = FileField(
        "Bank file (YAML)",
        validators=[
            FileRequired("Choose a bank file to upload."),
            FileAllowed(["yaml", "yml"], "Upload a .yaml or .yml bank file."),
        ],
    )


class UserSearchForm(Form):
    class Meta:
        csrf = False

    q = StringField("Search by e-mail or name", filters=[strip])
    role = SelectField(
        "Role",
        choices=options([("", "Any role"), *((r, r.capitalize()) for r in ROLES)]),
    )


class RoleForm(Form):
    role = SelectField("Role", choices=options((r, r.capitalize()) for r in ROLES))


class SetPasswordForm(Form):
    password = new_password_field("New password")
    confirm = confirm_field("password")


class ButtonForm(Form):
    """A POST button (publish, archive, disable...), protected by the CSRF token."""

    action = HiddenField()
