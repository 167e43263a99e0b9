"""Command-line interface: ``flask --app quiz banks ...`` and ``users ...``."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from . import accounts, audit, banks, config, sqlite
from .extensions import db
from .models import ROLES, User

banks_cli = AppGroup("banks", help="Check and load question bank files.")
users_cli = AppGroup("users", help="Create and manage accounts.")


def init_app(app: Flask) -> None:
    app.cli.add_command(banks_cli)
    app.cli.add_command(users_cli)


def _parse_or_exit(paths: tuple[str, ...]) -> list[banks.BankData]:
    try:
        return banks.parse_files(paths or [config.QUESTIONS_DIR])
    except banks.BankError as exc:
        _fail(exc)


def _fail(error: banks.BankError):
    for problem in error.problems:
        click.echo(str(problem), err=True)
    count = len(error.problems)
    raise click.ClickException(
        f"{count} problem{'s' if count != 1 else ''} found; nothing was loaded."
    ) from None


@banks_cli.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def check_command(paths: tuple[str, ...]) -> None:
    """Validate bank files (default: the questions/ folder) without writing anything."""
    parsed = _parse_or_exit(paths)
    for bank in parsed:
        click.echo(f"{bank.file}: ok, {len(bank.questions)} questions ({bank.slug})")


@banks_cli.command("load")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def load_command(paths: tuple[str, ...]) -> None:
    """Sync bank files into the database; if any file has a problem, load nothing."""
    parsed = _parse_or_exit(paths)
    with sqlite.write_intent():
        try:
            report = banks.sync_banks(parsed)
        except banks.BankError as exc:
            db.session.rollback()
            _fail(exc)
        db.session.commit()
    for bank in parsed:
        status = "new" if bank.slug in report.new_banks else "synced"
        click.echo(f"{bank.slug}: {status}, {report.summary(bank.slug)}")


def _read_password(from_stdin: bool) -> str:
    """A password from a hidden prompt (typed twice) or the first line of stdin."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _user(email: str) -> User:
    user = accounts.find_by_email(email)
    if user is None:
        raise click.ClickException(f"No account with the e-mail address {email}.")
    return user


def _commit_or_fail(change) -> None:
    with sqlite.write_intent():
        try:
            change()
        except accounts.AccountError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from None
        db.session.commit()


password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of a prompt.",
)


@users_cli.command("create")
@click.option(
    "--email", required=True, help="The account's e-mail address (its sign-in)."
)
@click.option(
    "--name", "display_name", help="Display name (default: the part before @)."
)
@click.option("--role", type=click.Choice(ROLES), default="player", show_default=True)
@password_stdin
def create_user(
    email: str, display_name: str | None, role: str, password_stdin: bool
) -> None:
    """Create an account. The password is asked for, never taken as an argument."""
    password = _read_password(password_stdin)
    name = (display_name or email.split("@")[0])[:40]

    def create():
        user = accounts.create_account(name, email, password, role)
        audit.record(
            None, "user.create", "user", user.id, f"Created {role} {user.email}"
        )

    _commit_or_fail(create)
    click.echo(f"Created {role} {accounts.normalise_email(email)}.")


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def set_role(email: str, role: str) -> None:
    """Give an account another role (player, trainer or admin)."""
    user = _user(email)
    _commit_or_fail(lambda: accounts.set_role(None, user, role))
    click.echo(f"{user.email} is now {role}.")


@users_cli.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable an account and end all its sessions."""
    user = _user(email)
    _commit_or_fail(lambda: accounts.set_disabled(None, user, True))
    click.echo(f"Disabled {user.email}.")


@users_cli.command("enable")
@click.argument("email")
def enable(email: str) -> None:
    """Enable a disabled account."""
    user = _user(email)
    _commit_or_fail(lambda: accounts.set_disabled(None, user, False))
    click.echo(f"Enabled {user.email}.")


@users_cli.command("set-password")
@click.argument("email")
@password_stdin
def set_password(email: str, password_stdin: bool) -> None:
    """Set a new password for an account (ends its sessions)."""
    user = _user(email)
    password = _read_password(password_stdin)
    _commit_or_fail(lambda: accounts.set_password(None, user, password))
    click.echo(f"New password set for {user.email}.")


@users_cli.command("list")
@click.option("--role", type=click.Choice(ROLES), help="Only accounts with this role.")
def list_users(role: str | None) -> None:
    """List accounts: e-mail, role, status, display name."""
    for user in db.session.scalars(accounts.search(role=role)):
        status = "disabled" if user.is_disabled else "active"
        click.echo(f"{user.email}\t{user.role}\t{status}\t{user.display_name}")
