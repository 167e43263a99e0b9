"""``flask --app quiz banks check|load``."""

import sqlalchemy as sa

from quiz.config import QUESTIONS_DIR
from quiz.extensions import db
from quiz.models import Question, Quiz
from tests.factories import bank_yaml


def count(app, model):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_check_reports_ok_files(runner, tmp_path):
    (tmp_path / "a.yaml").write_text(bank_yaml("alpha"))
    result = runner.invoke(args=["banks", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "a.yaml: ok, 3 questions (alpha)" in result.output


def test_check_lists_every_problem_and_fails(runner, tmp_path, app):
    (tmp_path / "a.yaml").write_text(
        bank_yaml("alpha").replace("type: single", "type: essay")
    )
    (tmp_path / "b.yaml").write_text("id: [broken")
    result = runner.invoke(args=["banks", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "a.yaml:12 (question alpha-single, field 'type'): unknown type 'essay'" in (
        result.output
    )
    assert "b.yaml:1: invalid YAML" in result.output
    assert "2 problems found; nothing was loaded." in result.output


def test_load_is_idempotent(runner, tmp_path, app):
    (tmp_path / "a.yaml").write_text(bank_yaml("alpha"))
    first = runner.invoke(args=["banks", "load", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "alpha: new, 3 added, 0 updated, 0 unchanged, 0 archived" in first.output
    second = runner.invoke(args=["banks", "load", str(tmp_path)])
    assert "alpha: synced, 0 added, 0 updated, 3 unchanged, 0 archived" in second.output
    assert count(app, Question) == 3


def test_load_with_any_bad_file_loads_nothing(runner, tmp_path, app):
    (tmp_path / "a.yaml").write_text(bank_yaml("alpha"))
    (tmp_path / "b.yaml").write_text(
        bank_yaml("beta").replace("answer: true", "answer: 2")
    )
    result = runner.invoke(args=["banks", "load", str(tmp_path)])
    assert result.exit_code == 1
    assert "question beta-tf, field 'answer'" in result.output
    assert count(app, Quiz) == 0 and count(app, Question) == 0


def test_shipped_banks_pass_the_check(runner):
    result = runner.invoke(args=["banks", "check"])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok, ") >= 5


def test_shipped_banks_meet_the_content_rules():
    from quiz import banks

    parsed = banks.parse_files([QUESTIONS_DIR])
    assert len(parsed) >= 5
    for bank in parsed:
        types = {q.type for q in bank.questions}
        assert len(bank.questions) >= 15, bank.slug
        assert types == {"single", "multiple", "true_false"}, bank.slug
        assert len({q.difficulty for q in bank.questions}) >= 2, bank.slug
        for question in bank.questions:
            if question.type == "multiple":
                assert "select all that apply" in question.prompt.lower(), question.slug
            lowered = [c.text.lower() for c in question.choices]
            assert not any(
                "all of the above" in t or "none of the above" in t for t in lowered
            )


def test_shipped_banks_load_into_a_database(runner, app):
    result = runner.invoke(args=["banks", "load"])
    assert result.exit_code == 0, result.output
    assert count(app, Quiz) >= 5
