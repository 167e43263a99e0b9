"""Question bank files: parse and validate YAML into plain data, then sync it into the DB.

Parsing is strict: plain YAML only (no tags, anchors or aliases), a size cap, UTF-8,
unknown keys refused. Every problem names the file, line, question id and field.
Syncing is idempotent by stable ids and keeps history: a changed question gets a new
revision, a removed one is archived, so past attempts keep exactly what they asked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import selectinload

from .extensions import db
from .models import (
    DIFFICULTIES,
    QUESTION_TYPES,
    Choice,
    Question,
    QuestionRevision,
    Quiz,
)

MAX_BANK_BYTES = 512 * 1024
MAX_DEPTH = 8
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
DEFAULT_POINTS = {"easy": 1, "medium": 2, "hard": 3}
MIN_CHOICES, MAX_CHOICES = 2, 8
# A quiz's own fields, the same in a bank file (with its settings) and the admin form.
QUIZ_FIELDS = (
    "title",
    "theme",
    "description",
    "questions_per_attempt",
    "shuffle",
    "time_limit_minutes",
    "pass_mark",
)

BANK_KEYS = {"id", "title", "theme", "description", "settings", "questions"}
SETTINGS_KEYS = {"questions_per_attempt", "shuffle", "time_limit_minutes", "pass_mark"}
QUESTION_KEYS = {
    "id",
    "type",
    "prompt",
    "choices",
    "answer",
    "explanation",
    "source",
    "difficulty",
    "points",
    "tags",
}
CHOICE_KEYS = {"text", "correct"}
TEXT_LIMITS = {
    "title": 120,
    "theme": 60,
    "description": 1000,
    "prompt": 2000,
    "explanation": 4000,
    "source": 500,
    "text": 500,
}
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bank file, with where it is."""

    file: str
    message: str
    line: int | None = None
    question: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        parts = []
        if self.question:
            parts.append(f"question {self.question}")
        if self.field:
            parts.append(f"field '{self.field}'")
        context = f" ({', '.join(parts)})" if parts else ""
        return f"{where}{context}: {self.message}"


class BankError(Exception):
    """A bank file (or set of files) is invalid; ``problems`` lists every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class ChoiceData:
    text: str
    correct: bool


@dataclass(frozen=True)
class QuestionData:
    slug: str
    type: str
    prompt: str
    choices: tuple[ChoiceData, ...]
    explanation: str
    source: str
    difficulty: str
    points: int
    tags: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        content = [
            self.type,
            self.prompt,
            [[c.text, c.correct] for c in self.choices],
            self.explanation,
            self.source,
            self.difficulty,
            self.points,
            list(self.tags),
        ]
        return hashlib.sha256(json.dumps(content).encode()).hexdigest()


@dataclass(frozen=True)
class BankData:
    slug: str
    title: str
    theme: str
    description: str
    questions_per_attempt: int | None
    shuffle: bool
    time_limit_minutes: int
    pass_mark: int
    questions: tuple[QuestionData, ...]
    file: str = ""


@dataclass
class SyncReport:
    """What a load did, per bank slug: lists of question ids."""

    added: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: dict[str, list[str]] = field(default_factory=dict)
    archived: dict[str, list[str]] = field(default_factory=dict)
    new_banks: list[str] = field(default_factory=list)

    def summary(self, slug: str) -> str:
        counts = [
            f"{len(self.added.get(slug, []))} added",
            f"{len(self.updated.get(slug, []))} updated",
            f"{len(self.unchanged.get(slug, []))} unchanged",
            f"{len(self.archived.get(slug, []))} archived",
        ]
        return ", ".join(counts)


# --- YAML reading -------------------------------------------------------------------


class _Located:
    """Mixin recording the line of a node and the lines of a mapping's keys."""

    line: int
    lines: dict[str, int]


class _Map(dict, _Located):
    pass


class _List(list, _Located):
    pass


class _YamlRefused(Exception):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (no billion-laughs bombs) and reads
    only true/false, null and decimal integers as non-text: ``10:30``, ``0x1F``, ``1e3``
    or a date stay text instead of turning into numbers behind the author's back."""

    yaml_implicit_resolvers: ClassVar[dict] = {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _YamlRefused(
                "YAML anchors and aliases (&name, *name) are not allowed",
                event.start_mark.line + 1,
            )
        return super().compose_node(parent, index)

    def construct_decimal(self, node: yaml.ScalarNode) -> int | str:
        text = node.value
        if text.lstrip("+-") != text.lstrip("+-").lstrip("0") and text.strip("+-0"):
            return text  # a leading zero: keep "010" as written
        if len(text.lstrip("+-")) > 9:
            raise _YamlRefused("number is too large", node.start_mark.line + 1)
        return int(text, 10)


_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null",
    re.compile(r"^(?:~|null|Null|NULL|)$"),
    ["~", "n", "N", ""],
)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_decimal)


def _to_plain(node: yaml.Node, loader: _StrictLoader, depth: int = 0):
    line = node.start_mark.line + 1
    if depth > MAX_DEPTH:
        raise _YamlRefused("nesting is too deep for a bank file", line)
    if isinstance(node, yaml.MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise _YamlRefused(f"YAML tag {node.tag} is not allowed", line)
        result = _Map()
        result.line, result.lines = line, {}
        for key_node, value_node in node.value:
            key = _to_plain(key_node, loader, depth + 1)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise _YamlRefused(f"key {key!r} is not text", key_line)
            if key in result:
                raise _YamlRefused(f"duplicate key '{key}'", key_line)
            result[key] = _to_plain(value_node, loader, depth + 1)
            result.lines[key] = key_line
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise _YamlRefused(f"YAML tag {node.tag} is not allowed", line)
        result = _List(_to_plain(item, loader, depth + 1) for item in node.value)
        result.line, result.lines = line, {}
        return result
    if node.tag not in _SCALAR_TAGS:
        raise _YamlRefused(
            f"YAML tag {node.tag} is not allowed (plain values only)", line
        )
    return loader.construct_object(node)


def read_yaml(raw: bytes, filename: str):
    """Decode and parse one bank file's bytes into located plain data."""
    if len(raw) > MAX_BANK_BYTES:
        raise BankError(
            [
                Problem(
                    filename,
                    f"file is {len(raw):,} bytes; the limit is {MAX_BANK_BYTES:,}",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BankError(
            [Problem(filename, f"not UTF-8 text (byte {exc.start})", line=line)]
        ) from None
    try:
        loader = _StrictLoader(text)  # checks every character up front
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text[: exc.position].count("\n") + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"character U+{code:04X} is not allowed in YAML"
        raise BankError([Problem(filename, message, line=line)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise _YamlRefused("the file is empty", 1)
        return _to_plain(node, loader)
    except _YamlRefused as exc:
        raise BankError([Problem(filename, str(exc), line=exc.line)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = f"invalid YAML: {exc.problem or exc.context}"
        raise BankError([Problem(filename, message, line=line)]) from None
    except yaml.YAMLError as exc:
        raise BankError([Problem(filename, f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise BankError(
            [Problem(filename, "nesting is too deep for a bank file")]
        ) from None
    finally:
        loader.dispose()


# --- validation ---------------------------------------------------------------------


class _Checker:
    """Collects problems while turning located plain data into ``BankData``."""

    def __init__(self, filename: str):
        self.file = filename
        self.problems: list[Problem] = []

    def problem(self, message, *, line=None, question=None, field=None):
        self.problems.append(Problem(self.file, message, line, question, field))

    def keys(self, data: _Map, allowed: set[str], *, question=None, prefix=""):
        for key in data:
            if key not in allowed:
                self.problem(
                    f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})",
                    line=data.lines.get(key, data.line),
                    question=question,
                    field=prefix + key,
                )

    def text(self, data: _Map, key: str, *, question=None, prefix="", required=True):
        value = data.get(key)
        line = data.lines.get(key, data.line)
        name = prefix + key
        if value is None:
            if required:
                self.problem("is missing", line=line, question=question, field=name)
            return ""
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.problem(
                "must be text (put it in quotes)",
                line=line,
                question=question,
                field=name,
            )
            return ""
        value = str(value).strip()
        if required and not value:
            self.problem("is empty", line=line, question=question, field=name)
        limit = TEXT_LIMITS.get(key)
        if limit and len(value) > limit:
            self.problem(
                f"is {len(value)} characters; the limit is {limit}",
                line=line,
                question=question,
                field=name,
            )
        return value

    def integer(self, data, key, low, high, default, *, question=None, prefix=""):
        if key not in data or data[key] is None:
            return default
        value = data[key]
        line = data.lines.get(key, data.line)
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(
                "must be a whole number",
                line=line,
                question=question,
                field=prefix + key,
            )
            return default
        if not low <= value <= high:
            self.problem(
                f"must be between {low} and {high}, not {value}",
                line=line,
                question=question,
                field=prefix + key,
            )
            return default
        return value

    def boolean(self, data, key, default, *, question=None, prefix=""):
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, bool):
            self.problem(
                "must be true or false",
                line=data.lines.get(key, data.line),
                question=question,
                field=prefix + key,
            )
            return default
        return value

    def bank(self, data) -> BankData | None:
        if not isinstance(data, _Map):
            self.problem("a bank file must be a mapping with id, title, ...", line=1)
            return None
        self.keys(data, BANK_KEYS)
        slug = self.text(data, "id")
        if slug and not SLUG_RE.match(slug):
            self.problem(
                "must be 3-64 lowercase letters, digits and hyphens",
                line=data.lines.get("id"),
                field="id",
            )
        title = self.text(data, "title")
        theme = self.text(data, "theme")
        description = self.text(data, "description")
        settings = data.get("settings")
        if settings is None:
            settings = _Map()
        if not isinstance(settings, _Map):
            self.problem(
                "must be a mapping", line=data.lines.get("settings"), field="settings"
            )
            settings = _Map()
        if not hasattr(settings, "lines"):
            settings.line, settings.lines = data.line, {}
        self.keys(settings, SETTINGS_KEYS, prefix="settings.")
        questions = self.questions(data)
        entries = data.get("questions")
        per_attempt = self.integer(
            settings,
            "questions_per_attempt",
            1,
            max(len(entries) if isinstance(entries, list) else 0, 1),
            None,
            prefix="settings.",
        )
        shuffle = self.boolean(settings, "shuffle", True, prefix="settings.")
        minutes = self.integer(
            settings, "time_limit_minutes", 0, 240, 0, prefix="settings."
        )
        pass_mark = self.integer(settings, "pass_mark", 0, 100, 70, prefix="settings.")
        return BankData(
            slug=slug,
            title=title,
            theme=theme,
            description=description,
            questions_per_attempt=per_attempt,
            shuffle=shuffle,
            time_limit_minutes=minutes,
            pass_mark=pass_mark,
            questions=tuple(questions),
            file=self.file,
        )

    def questions(self, data: _Map) -> list[QuestionData]:
        items = data.get("questions")
        line = data.lines.get("questions", data.line)
        if not isinstance(items, _List) or not items:
            self.problem(
                "must be a list of at least one question", line=line, field="questions"
            )
            return []
        result, seen = [], {}
        for index, item in enumerate(items, start=1):
            if not isinstance(item, _Map):
                self.problem(
                    f"question #{index} must be a mapping",
                    line=getattr(item, "line", line),
                    field="questions",
                )
                continue
            question = self.question(item, index)
            if question is None:
                continue
            if question.slug in seen:
                self.problem(
                    f"duplicate question id (also on line {seen[question.slug]})",
                    line=item.lines.get("id", item.line),
                    question=question.slug,
                    field="id",
                )
                continue
            seen[question.slug] = item.lines.get("id", item.line)
            result.append(question)
        return result

    def question(self, item: _Map, index: int) -> QuestionData | None:
        raw_id = item.get("id")
        label = raw_id if isinstance(raw_id, str) and raw_id else f"#{index}"
        before = len(self.problems)
        self.keys(item, QUESTION_KEYS, question=label)
        slug = self.text(item, "id", question=label)
        if slug and not SLUG_RE.match(slug):
            self.problem(
                "must be 3-64 lowercase letters, digits and hyphens",
                line=item.lines.get("id"),
                question=label,
                field="id",
            )
        qtype = item.get("type")
        if qtype not in QUESTION_TYPES:
            self.problem(
                f"unknown type {qtype!r} (use {', '.join(QUESTION_TYPES)})",
                line=item.lines.get("type", item.line),
                question=label,
                field="type",
            )
        prompt = self.text(item, "prompt", question=label)
        explanation = self.text(item, "explanation", question=label)
        source = self.text(item, "source", question=label)
        difficulty = item.get("difficulty", "medium")
        if difficulty not in DIFFICULTIES:
            self.problem(
                f"unknown difficulty {difficulty!r} (use {', '.join(DIFFICULTIES)})",
                line=item.lines.get("difficulty"),
                question=label,
                field="difficulty",
            )
            difficulty = "medium"
        points = self.integer(
            item, "points", 1, 100, DEFAULT_POINTS[difficulty], question=label
        )
        tags = self.tags(item, label)
        choices = self.choices(item, qtype, label)
        if len(self.problems) > before:
            return None
        return QuestionData(
            slug=slug,
            type=qtype,
            prompt=prompt,
            choices=tuple(choices),
            explanation=explanation,
            source=source,
            difficulty=difficulty,
            points=points,
            tags=tuple(tags),
        )

    def tags(self, item: _Map, label: str) -> list[str]:
        tags = item.get("tags")
        tags = [] if tags is None else tags
        line = item.lines.get("tags", item.line)
        if not isinstance(tags, list) or not all(
            isinstance(t, str) and 0 < len(t) <= 30 for t in tags
        ):
            self.problem(
                "must be a list of short labels (at most 30 characters)",
                line=line,
                question=label,
                field="tags",
            )
            return []
        return sorted({t.strip().lower() for t in tags})

    def choices(self, item: _Map, qtype, label: str) -> list[ChoiceData]:
        line = item.lines.get("choices", item.line)
        if qtype == "true_false":
            if "choices" in item:
                self.problem(
                    "a true_false question has no choices; give 'answer: true' "
                    "or 'answer: false'",
                    line=line,
                    question=label,
                    field="choices",
                )
            answer = item.get("answer")
            if not isinstance(answer, bool):
                self.problem(
                    "must be true or false",
                    line=item.lines.get("answer", item.line),
                    question=label,
                    field="answer",
                )
                return []
            return [ChoiceData("True", answer), ChoiceData("False", not answer)]
        if "answer" in item:
            self.problem(
                f"'answer' is only for true_false questions; a {qtype} question "
                "marks its choices with 'correct: true'",
                line=item.lines.get("answer"),
                question=label,
                field="answer",
            )
        raw = item.get("choices")
        if not isinstance(raw, list):
            self.problem(
                "is missing or not a list", line=line, question=label, field="choices"
            )
            return []
        choices = []
        for number, entry in enumerate(raw, start=1):
            prefix = f"choices[{number}]."
            if not isinstance(entry, _Map):
                self.problem(
                    "must be a mapping with 'text' and 'correct'",
                    line=getattr(entry, "line", line),
                    question=label,
                    field=f"choices[{number}]",
                )
                continue
            self.keys(entry, CHOICE_KEYS, question=label, prefix=prefix)
            text = self.text(entry, "text", question=label, prefix=prefix)
            correct = self.boolean(
                entry, "correct", False, question=label, prefix=prefix
            )
            choices.append(ChoiceData(text, correct))
        self.choice_rules(choices, qtype, label, line)
        return choices

    def choice_rules(self, choices, qtype, label, line):
        def complain(message):
            self.problem(message, line=line, question=label, field="choices")

        if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
            complain(
                f"needs {MIN_CHOICES} to {MAX_CHOICES} choices, has {len(choices)}"
            )
        texts = [c.text.casefold() for c in choices]
        if len(set(texts)) != len(texts):
            complain("two choices have the same text")
        correct = sum(c.correct for c in choices)
        if correct == 0:
            complain("no choice is marked 'correct: true'")
        elif qtype == "single" and correct > 1:
            complain(
                f"a single question needs exactly one correct choice, has {correct}"
            )
        elif qtype == "multiple" and correct == len(choices):
            complain("a multiple question needs at least one wrong choice")


def _located(value):
    """Plain dicts and lists (from a form) as the located types the checker reads."""
    if isinstance(value, dict):
        result = _Map({k: _located(v) for k, v in value.items()})
        result.line, result.lines = None, {}
        return result
    if isinstance(value, list):
        result = _List(_located(v) for v in value)
        result.line, result.lines = None, {}
        return result
    return value


def check_question(raw: dict, source: str = "form") -> QuestionData:
    """Validate one question given as a plain dict in the bank format (same rules)."""
    checker = _Checker(source)
    question = checker.question(_located(raw), 1)
    if checker.problems:
        raise BankError(checker.problems)
    return question


def parse_bank(raw: bytes, filename: str) -> BankData:
    """Parse and validate one bank file's bytes; raise ``BankError`` listing every problem."""
    data = read_yaml(raw, filename)
    checker = _Checker(filename)
    bank = checker.bank(data)
    if checker.problems:
        raise BankError(checker.problems)
    return bank


def bank_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders to their ``*.yaml``/``*.yml`` files, sorted; keep files as given."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            )
        else:
            files.append(path)
    return files


def parse_files(paths: Iterable[str | Path]) -> list[BankData]:
    """Parse every file, then check ids across them; raise one ``BankError`` with all."""
    banks, problems = [], []
    for path in bank_files(paths):
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_BANK_BYTES + 1)  # enough to tell it is too big
        except OSError as exc:
            problems.append(Problem(str(path), f"cannot read: {exc.strerror}"))
            continue
        try:
            banks.append(parse_bank(raw, str(path)))
        except BankError as exc:
            problems.extend(exc.problems)
    problems.extend(cross_check(banks))
    if problems:
        raise BankError(problems)
    return banks


def check_ownership(banks: list[BankData]) -> None:
    """Refuse question ids that belong to a quiz in the database that is not loaded now.

    A question may move between quizzes only when both banks are loaded together, so
    loading one file never silently takes questions away from another quiz.
    """
    loaded = {bank.slug for bank in banks}
    where = {q.slug: bank for bank in banks for q in bank.questions}
    rows = db.session.execute(
        sa.select(Question.slug, Quiz.slug)
        .join(Quiz, Quiz.id == Question.quiz_id)
        .where(Question.slug.in_(list(where)))
    ).all()
    problems = [
        Problem(
            where[question].file,
            f"question id already used in quiz {owner}; give this question a new id, "
            f"or load both banks together to move it",
            question=question,
            field="id",
        )
        for question, owner in rows
        if owner != where[question].slug and owner not in loaded
    ]
    if problems:
        raise BankError(problems)


def cross_check(banks: list[BankData]) -> list[Problem]:
    """Problems between files: a bank id or a question id used twice."""
    problems = []
    bank_ids: dict[str, str] = {}
    question_ids: dict[str, str] = {}
    for bank in banks:
        if bank.slug in bank_ids:
            problems.append(
                Problem(
                    bank.file, f"bank id also used in {bank_ids[bank.slug]}", field="id"
                )
            )
        bank_ids.setdefault(bank.slug, bank.file)
        for question in bank.questions:
            if question.slug in question_ids:
                problems.append(
                    Problem(
                        bank.file,
                        f"question id also used in {question_ids[question.slug]}",
                        question=question.slug,
                        field="id",
                    )
                )
            question_ids.setdefault(question.slug, bank.file)
    return problems


# --- syncing into the database ------------------------------------------------------


def sync_banks(banks: list[BankData], *, publish_new: bool = True) -> SyncReport:
    """Create or update quizzes and questions from parsed banks; the caller commits.

    Raises ``BankError`` (and writes nothing) if a question id belongs to a quiz that
    is not among ``banks``. New quizzes are published unless ``publish_new`` is off.
    """
    check_ownership(banks)
    report = SyncReport()
    for bank in banks:
        _sync_bank(bank, report, publish_new)
    db.session.flush()
    return report


def _sync_bank(bank: BankData, report: SyncReport, publish_new: bool) -> None:
    quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == bank.slug))
    if quiz is None:
        quiz = Quiz(slug=bank.slug, is_published=publish_new)
        db.session.add(quiz)
        report.new_banks.append(bank.slug)
    for name in QUIZ_FIELDS:
        if getattr(quiz, name) != getattr(bank, name):
            setattr(quiz, name, getattr(bank, name))
    db.session.flush()

    existing = _existing_questions(bank, quiz.id)
    for key in ("added", "updated", "unchanged", "archived"):
        getattr(report, key)[bank.slug] = []
    for position, data in enumerate(bank.questions):
        question = existing.get(data.slug)
        change = _classify(question, data, quiz.id, position)
        getattr(report, change)[bank.slug].append(data.slug)
        if question is None:
            question = Question(
                slug=data.slug, quiz=quiz, position=position, revision=0
            )
            db.session.add(question)
        if question.revision == 0 or question.current.fingerprint != data.fingerprint:
            question.revision += 1
            add_revision(question, data, question.revision)
        question.quiz, question.position, question.is_archived = quiz, position, False
    for slug in _retired(bank, existing, quiz.id):
        existing[slug].is_archived = True
        report.archived[bank.slug].append(slug)


def plan_sync(bank: BankData) -> SyncReport:
    """What ``sync_banks([bank])`` would do, without writing anything."""
    report = SyncReport()
    quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == bank.slug))
    if quiz is None:
        report.new_banks.append(bank.slug)
    quiz_id = quiz.id if quiz is not None else None
    existing = _existing_questions(bank, quiz_id)
    for key in ("added", "updated", "unchanged", "archived"):
        getattr(report, key)[bank.slug] = []
    for position, data in enumerate(bank.questions):
        change = _classify(existing.get(data.slug), data, quiz_id, position)
        getattr(report, change)[bank.slug].append(data.slug)
    report.archived[bank.slug] = _retired(bank, existing, quiz_id)
    return report


def _existing_questions(bank: BankData, quiz_id: int | None) -> dict[str, Question]:
    """Questions the bank names, plus every question of its quiz, by slug."""
    slugs = [q.slug for q in bank.questions]
    return {
        q.slug: q
        for q in db.session.scalars(
            sa.select(Question)
            .where(sa.or_(Question.slug.in_(slugs), Question.quiz_id == quiz_id))
            .options(selectinload(Question.revisions))
        )
    }


def _classify(question: Question | None, data: QuestionData, quiz_id, position) -> str:
    if question is None:
        return "added"
    same = question.current.fingerprint == data.fingerprint and (
        question.quiz_id,
        question.position,
        question.is_archived,
    ) == (quiz_id, position, False)
    return "unchanged" if same else "updated"


def _retired(bank: BankData, existing: dict[str, Question], quiz_id) -> list[str]:
    """Live questions of the quiz that the bank no longer lists."""
    listed = {q.slug for q in bank.questions}
    return [
        q.slug
        for q in existing.values()
        if q.quiz_id == quiz_id and q.slug not in listed and not q.is_archived
    ]


def add_revision(question: Question, data: QuestionData, number: int) -> None:
    revision = QuestionRevision(
        question=question,
        number=number,
        type=data.type,
        prompt=data.prompt,
        explanation=data.explanation,
        source=data.source,
        difficulty=data.difficulty,
        points=data.points,
        tags=list(data.tags),
        fingerprint=data.fingerprint,
    )
    revision.choices = [
        Choice(position=i, text=c.text, is_correct=c.correct)
        for i, c in enumerate(data.choices)
    ]
    db.session.add(revision)


# --- writing a quiz back out as a bank file -------------------------------------------


def dump_bank(quiz: Quiz) -> str:
    """The quiz and its live questions in the bank file format (loads back unchanged)."""
    live = [q for q in quiz.questions if not q.is_archived]
    per_attempt = quiz.questions_per_attempt
    settings = {
        # More than the live questions means "all of them", which needs no setting.
        "questions_per_attempt": per_attempt
        if per_attempt and per_attempt < len(live)
        else None,
        "shuffle": quiz.shuffle,
        "time_limit_minutes": quiz.time_limit_minutes,
        "pass_mark": quiz.pass_mark,
    }
    document = {
        "id": quiz.slug,
        "title": quiz.title,
        "theme": quiz.theme,
        "description": quiz.description,
        "settings": {k: v for k, v in settings.items() if v is not None},
        "questions": [
            question_document(q.slug, q.current)
            for q in quiz.questions
            if not q.is_archived
        ],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=88)


def question_document(slug: str, revision: QuestionRevision) -> dict:
    """One question revision as a plain dict in the bank file format."""
    item = {"id": slug, "type": revision.type, "difficulty": revision.difficulty}
    if revision.points != DEFAULT_POINTS[revision.difficulty]:
        item["points"] = revision.points
    if revision.tags:
        item["tags"] = list(revision.tags)
    item["prompt"] = revision.prompt
    if revision.type == "true_false":
        item["answer"] = next(
            c.is_correct for c in revision.choices if c.text == "True"
        )
    else:
        item["choices"] = [
            {"text": c.text, "correct": True} if c.is_correct else {"text": c.text}
            for c in revision.choices
        ]
    item["explanation"] = revision.explanation
    item["source"] = revision.source
    return item
