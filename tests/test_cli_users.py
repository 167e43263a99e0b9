"""``flask --app quiz users ...``: accounts from the command line."""

import sqlalchemy as sa

from quiz import passwords
from quiz.cli import users_cli
from quiz.extensions import db
from quiz.models import AuditEvent, User
from tests.factories import PASSWORD, make_account


def user(app, email):
    with app.app_context():
        found = db.session.scalar(sa.select(User).where(User.email == email))
        db.session.expunge_all()
        return found


def test_no_account_exists_until_one_is_created(runner, app):
    result = runner.invoke(args=["banks", "load"])
    assert result.exit_code == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_create_admin_with_the_password_on_stdin(runner, app):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "Boss@Example.org",
            "--role",
            "admin",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin boss@example.org." in result.output
    created = user(app, "boss@example.org")
    assert created.role == "admin" and passwords.verify(created.password_hash, PASSWORD)


def test_create_prompts_twice_for_the_password(runner, app):
    result = runner.invoke(
        args=["users", "create", "--email", "p@example.org"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input
    assert user(app, "p@example.org").role == "player"


def test_password_is_never_an_argument():
    options = {
        opt for param in users_cli.commands["create"].params for opt in param.opts
    }
    assert not any("password" == opt.strip("-") for opt in options)


def test_create_refuses_weak_passwords_and_duplicates(runner, app):
    weak = runner.invoke(
        args=["users", "create", "--email", "w@example.org", "--password-stdin"],
        input="password\n",
    )
    assert weak.exit_code == 1 and "most common passwords" in weak.output
    with app.app_context():
        make_account("dup@example.org")
    dup = runner.invoke(
        args=["users", "create", "--email", "dup@example.org", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert dup.exit_code == 1 and "already exists" in dup.output


def test_set_role_disable_enable_list_and_set_password(runner, app):
    with app.app_context():
        make_account("a@example.org", role="admin")
        make_account("t@example.org", role="player", name="Tee")
    assert (
        runner.invoke(args=["users", "set-role", "t@example.org", "trainer"]).exit_code
        == 0
    )
    assert user(app, "t@example.org").role == "trainer"
    assert runner.invoke(args=["users", "disable", "t@example.org"]).exit_code == 0
    listing = runner.invoke(args=["users", "list"]).output
    assert "t@example.org\ttrainer\tdisabled\tTee" in listing
    assert "a@example.org\tadmin\tactive" in listing
    assert (
        runner.invoke(args=["users", "list", "--role", "admin"]).output.count("\n") == 1
    )
    assert runner.invoke(args=["users", "enable", "t@example.org"]).exit_code == 0
    new = "another fine passphrase"
    result = runner.invoke(
        args=["users", "set-password", "t@example.org", "--password-stdin"],
        input=new + "\n",
    )
    assert result.exit_code == 0
    assert passwords.verify(user(app, "t@example.org").password_hash, new)
    with app.app_context():
        actions = list(
            db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id))
        )
        assert actions == ["user.role", "user.disable", "user.enable", "user.password"]
        assert db.session.scalars(sa.select(AuditEvent.actor_id)).all() == [None] * 4


def test_unknown_account_and_last_admin(runner, app):
    result = runner.invoke(args=["users", "disable", "ghost@example.org"])
    assert (
        result.exit_code == 1 and "No account with the e-mail address" in result.output
    )
    with app.app_context():
        make_account("only@example.org", role="admin")
    result = runner.invoke(args=["users", "set-role", "only@example.org", "player"])
    assert result.exit_code == 1 and "only active administrator" in result.output
