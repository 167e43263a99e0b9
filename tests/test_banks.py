"""Bank file validation and syncing."""

import textwrap

import pytest
import sqlalchemy as sa

from quiz import banks
from quiz.extensions import db
from quiz.models import Attempt, Question, QuestionRevision, Quiz
from tests.factories import bank_yaml, load_bank


def parse(text: str, filename="bank.yaml"):
    return banks.parse_bank(textwrap.dedent(text).encode(), filename)


def problems_of(text: str | bytes) -> list[str]:
    raw = text if isinstance(text, bytes) else textwrap.dedent(text).encode()
    with pytest.raises(banks.BankError) as info:
        banks.parse_bank(raw, "bank.yaml")
    return [str(p) for p in info.value.problems]


def test_valid_bank_parses_to_plain_data():
    bank = parse(bank_yaml("alpha"))
    assert bank.slug == "alpha"
    assert [q.type for q in bank.questions] == ["single", "multiple", "true_false"]
    single, multiple, true_false = bank.questions
    assert single.points == 1  # easy
    assert multiple.points == 3  # hard
    assert true_false.points == 2  # medium by default
    assert [c.text for c in true_false.choices] == ["True", "False"]
    assert [c.correct for c in true_false.choices] == [True, False]
    assert bank.questions_per_attempt == 3 and bank.pass_mark == 50


def replace(old: str, new: str) -> str:
    text = bank_yaml("alpha")
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    explanation: HTTPS",
            "    explaination: HTTPS",
            "bank.yaml:20 (question alpha-single, field 'explaination'): unknown key",
        ),
        (
            "    type: single",
            "    type: essay",
            "bank.yaml:12 (question alpha-single, field 'type'): unknown type 'essay'",
        ),
        (
            '      - text: "443"\n        correct: true',
            '      - text: "443"',
            "(question alpha-single, field 'choices'): no choice is marked",
        ),
        (
            '      - text: "80"',
            '      - text: "80"\n        correct: true',
            "a single question needs exactly one correct choice, has 2",
        ),
        (
            (
                '      - text: "80"\n      - text: "443"\n        correct: true\n'
                '      - text: "8080"'
            ),
            '      - text: "443"\n        correct: true',
            "(question alpha-single, field 'choices'): needs 2 to 8 choices, has 1",
        ),
        (
            "    prompt: Which port does HTTPS use by default?",
            '    prompt: "  "',
            "(question alpha-single, field 'prompt'): is empty",
        ),
        (
            "    explanation: HTTPS listens on 443 by default; 80 is plain HTTP.\n",
            "",
            "(question alpha-single, field 'explanation'): is missing",
        ),
        (
            "    source: RFC 2818, HTTP Over TLS (IETF)\n",
            "",
            "(question alpha-single, field 'source'): is missing",
        ),
        (
            "  - id: alpha-multiple",
            "  - id: alpha-single",
            "(question alpha-single, field 'id'): duplicate question id (also on line 11)",
        ),
        (
            "      - text: Mother's maiden name",
            "      - text: Mother's maiden name\n        correct: true",
            "a multiple question needs at least one wrong choice",
        ),
        (
            "    answer: true",
            "    answer: maybe",
            "(question alpha-tf, field 'answer'): must be true or false",
        ),
        (
            "    difficulty: easy",
            "    difficulty: trivial",
            "unknown difficulty 'trivial'",
        ),
        (
            "  pass_mark: 50",
            "  pass_mark: 150",
            "field 'settings.pass_mark'): must be between 0 and 100, not 150",
        ),
        (
            "  questions_per_attempt: 3",
            "  questions_per_attempt: 4",
            "field 'settings.questions_per_attempt'): must be between 1 and 3, not 4",
        ),
        (
            "id: alpha",
            "id: Alpha Bank",
            "bank.yaml:1 (field 'id'): must be 3-64 lowercase letters",
        ),
        (
            "theme: Testing",
            "theme: [a, b]",
            "bank.yaml:3 (field 'theme'): must be text",
        ),
    ],
)
def test_validator_names_file_line_question_and_field(old, new, expected):
    problems = problems_of(replace(old, new))
    assert any(expected in p for p in problems), problems


def test_every_problem_is_listed_not_just_the_first():
    text = replace("    type: single", "    type: essay").replace(
        "    answer: true", "    answer: maybe"
    )
    problems = problems_of(text)
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"id: [unclosed", "invalid YAML"),
        (b"id: a\n\tbad: tab\n", "invalid YAML"),
        (b"- just\n- a list\n", "a bank file must be a mapping"),
        (b"", "the file is empty"),
        (b"id: caf\xe9\n", "bank.yaml:1: not UTF-8 text"),
        (b"a: &x [1]\nb: *x\n", "anchors and aliases"),
        (b"id: !!python/object/apply:os.system ['true']\n", "YAML tag"),
        (
            b"id: !!binary aGVsbG8=\n",
            "YAML tag tag:yaml.org,2002:binary is not allowed",
        ),
        (b"id: a\nid: b\n", "bank.yaml:2: duplicate key 'id'"),
        (
            b"id: a\ntitle: \x00\n",
            "bank.yaml:2: character U+0000 is not allowed in YAML",
        ),
        (b"x: " + b"[" * 40 + b"]" * 40 + b"\n", "nesting is too deep"),
    ],
)
def test_hostile_or_broken_files_are_refused_with_a_reason(raw, expected):
    problems = problems_of(raw)
    assert any(expected in p for p in problems), problems


def test_oversize_file_is_refused_before_parsing():
    raw = b"# " + b"x" * banks.MAX_BANK_BYTES + b"\n"
    assert "the limit is 524,288" in problems_of(raw)[0]


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(bank_yaml("alpha"))
    (tmp_path / "b.yaml").write_text(
        bank_yaml("beta").replace("beta-single", "alpha-single")
    )
    (tmp_path / "c.yaml").write_text(bank_yaml("alpha").replace("alpha-", "gamma-"))
    with pytest.raises(banks.BankError) as info:
        banks.parse_files([tmp_path])
    messages = [str(p) for p in info.value.problems]
    assert any("question alpha-single" in m and "a.yaml" in m for m in messages)
    assert any("c.yaml (field 'id'): bank id also used in" in m for m in messages)


def test_sync_creates_then_changes_nothing_on_second_load(ctx):
    bank = parse(bank_yaml("alpha"))
    first = banks.sync_banks([bank])
    db.session.commit()
    assert first.new_banks == ["alpha"]
    assert len(first.added["alpha"]) == 3
    second = banks.sync_banks([bank])
    db.session.commit()
    assert second.new_banks == []
    assert second.added["alpha"] == [] and second.updated["alpha"] == []
    assert len(second.unchanged["alpha"]) == 3
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(QuestionRevision)) == 3
    )


def test_changed_question_gets_a_new_revision_and_old_attempts_keep_theirs(ctx):
    from quiz import attempts
    from tests.factories import make_player

    quiz = load_bank(bank_yaml("alpha"))
    player = make_player()
    attempt = attempts.start(player, quiz)
    db.session.commit()
    old_revision = attempt.items[0].revision
    changed = bank_yaml("alpha").replace(
        "Which port does HTTPS use by default?", "Which TCP port does HTTPS use?"
    )
    report = banks.sync_banks([parse(changed)])
    db.session.commit()
    assert report.updated["alpha"] == ["alpha-single"]
    question = db.session.scalar(
        sa.select(Question).where(Question.slug == "alpha-single")
    )
    assert question.revision == 2
    assert question.current.prompt == "Which TCP port does HTTPS use?"
    db.session.expire_all()
    reloaded = db.session.get(Attempt, attempt.id)
    assert reloaded.items[0].revision.prompt == old_revision.prompt
    assert old_revision.prompt == "Which port does HTTPS use by default?"


def test_removed_question_is_archived_and_restored_when_it_returns(ctx):
    load_bank(bank_yaml("alpha"))
    text = bank_yaml("alpha")
    without_tf = text[: text.index("  - id: alpha-tf")]
    without_tf = without_tf.replace(
        "questions_per_attempt: 3", "questions_per_attempt: 2"
    )
    report = banks.sync_banks([parse(without_tf)])
    assert report.archived["alpha"] == ["alpha-tf"]
    tf = db.session.scalar(sa.select(Question).where(Question.slug == "alpha-tf"))
    assert tf.is_archived
    report = banks.sync_banks([parse(text)])
    assert report.updated["alpha"] == ["alpha-tf"] and not tf.is_archived


def test_settings_change_updates_the_quiz(ctx):
    load_bank(bank_yaml("alpha"))
    load_bank(bank_yaml("alpha", minutes=5))
    quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == "alpha"))
    assert quiz.time_limit_minutes == 5


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('      - text: "80"', "      - text: 10:30"),
        ('      - text: "80"', "      - text: 0x1F"),
        ('      - text: "80"', "      - text: 2012-10-08"),
    ],
)
def test_yaml_values_that_look_like_numbers_stay_text(line, expected):
    bank = parse(replace(line, expected))
    text = expected.split(": ", 1)[1]
    assert bank.questions[0].choices[0].text == text


def test_leading_zeros_are_kept_in_text():
    bank = parse(replace('      - text: "80"', "      - text: 010"))
    assert bank.questions[0].choices[0].text == "010"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "settings:\n",
            "settings: []\nx_settings:\n",
            "field 'settings'): must be a mapping",
        ),
        (
            "    difficulty: easy",
            "    difficulty: easy\n    tags: ''",
            "field 'tags'): must be a list",
        ),
        (
            "    difficulty: easy",
            "    difficulty: easy\n    points: 1.5",
            "must be a whole number",
        ),
        (
            "    difficulty: easy",
            "    difficulty: easy\n    points: " + "9" * 40,
            "too large",
        ),
        (
            "  shuffle: false",
            "  shuffle: yes",
            "field 'settings.shuffle'): must be true or false",
        ),
        ('      - text: "80"', "      - text: true", "must be text (put it in quotes)"),
    ],
)
def test_wrong_types_are_refused(old, new, expected):
    problems = problems_of(replace(old, new))
    assert any(expected in p for p in problems), problems


def test_loading_one_bank_cannot_take_another_quizs_question(ctx):
    load_bank(bank_yaml("alpha"))
    thief = bank_yaml("beta").replace("beta-single", "alpha-single")
    with pytest.raises(banks.BankError) as info:
        banks.sync_banks([parse(thief)])
    assert "question id already used in quiz alpha" in str(info.value)
    db.session.rollback()
    question = db.session.scalar(
        sa.select(Question).where(Question.slug == "alpha-single")
    )
    assert question.quiz.slug == "alpha"


def test_a_question_moves_when_both_banks_load_together(ctx):
    load_bank(bank_yaml("alpha"))
    alpha = bank_yaml("alpha")
    alpha_without_single = (
        alpha[: alpha.index("  - id: alpha-single")]
        + alpha[alpha.index("  - id: alpha-multiple") :]
    )
    alpha_without_single = alpha_without_single.replace(
        "questions_per_attempt: 3", "questions_per_attempt: 2"
    )
    beta = bank_yaml("beta").replace("beta-single", "alpha-single")
    report = banks.sync_banks([parse(alpha_without_single), parse(beta)])
    assert report.updated["beta"] == ["alpha-single"]
    question = db.session.scalar(
        sa.select(Question).where(Question.slug == "alpha-single")
    )
    assert question.quiz.slug == "beta"


def test_plan_matches_what_sync_does(ctx):
    load_bank(bank_yaml("alpha"))
    text = bank_yaml("alpha").replace("Which port", "Which TCP port")
    text = text[: text.index("  - id: alpha-tf")].replace(
        "questions_per_attempt: 3", "questions_per_attempt: 2"
    )
    bank = parse(text)
    plan = banks.plan_sync(bank)
    report = banks.sync_banks([bank])
    for key in ("added", "updated", "unchanged", "archived"):
        assert getattr(plan, key) == getattr(report, key), key


def test_export_then_load_changes_nothing(ctx):
    from quiz.config import QUESTIONS_DIR

    shipped = banks.parse_files([QUESTIONS_DIR])
    banks.sync_banks(shipped)
    db.session.commit()
    for quiz in db.session.scalars(sa.select(Quiz)):
        exported = banks.dump_bank(quiz)
        report = banks.plan_sync(
            banks.parse_bank(exported.encode(), f"{quiz.slug}.yaml")
        )
        assert report.added[quiz.slug] == [] and report.updated[quiz.slug] == []
        assert report.archived[quiz.slug] == []
        assert len(report.unchanged[quiz.slug]) == len(quiz.questions)
