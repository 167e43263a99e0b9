"""Command-line interface: ``flask --app quiz banks ...``, ``users ...``, ``attempts ...``,
``export ...``, ``demo-data`` and ``check-deploy``."""

from __future__ import annotations

import getpass
import sys
import time
from datetime import date

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from . import (
    accounts,
    attempts,
    audit,
    banks,
    config,
    demo,
    events,
    exports,
    reports,
    sqlite,
)
from .extensions import db
from .models import ROLES, Cohort, Quiz, User
from .paging import parse_day

banks_cli = AppGroup("banks", help="Check and load question bank files.")
users_cli = AppGroup("users", help="Create and manage accounts.")
attempts_cli = AppGroup("attempts", help="Housekeeping of players' attempts.")


def init_app(app: Flask) -> None:
    # check-deploy is a plugin command (setup.cfg), so it runs when the app itself
    # would refuse to start.
    app.cli.add_command(banks_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(export_cli)
    app.cli.add_command(demo_data_command)
    app.cli.add_command(attempts_cli)


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
    events.log(
        "bank-load", banks=",".join(b.slug for b in parsed), by=getpass.getuser()
    )
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


@attempts_cli.command("finish-expired")
def finish_expired_command() -> None:
    """Finish every open attempt whose time is up, with the answers given in time.

    Run it every few minutes (cron, a systemd timer): an attempt whose player left
    when the time ran out then counts on the leaderboards and in trainers' reports.
    """
    finished, failed = 0, ()
    while True:
        sweep = attempts.close_expired(limit=attempts.EXPIRED_BATCH, skip=failed)
        finished += sweep.finished
        failed += sweep.failed
        if sweep.stopped or sweep.finished + len(sweep.failed) < attempts.EXPIRED_BATCH:
            break  # stopped, or none left but those others hold or that failed
    click.echo(f"Finished {finished} attempt(s) whose time was up.")
    problems = []
    if failed:
        listed = ", ".join(map(str, failed))
        problems.append(f"attempt(s) {listed} could not be finished (the log says why)")
    if sweep.stopped:
        problems.append(f"the sweep stopped: {sweep.stopped}")
    if problems:
        raise click.ClickException("; ".join(problems) + ". The next run tries again.")


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


export_cli = AppGroup("export", help="Export attempts or answers for scheduled jobs.")


def _day(value: str | None, *, next_day: bool = False):
    if not value:
        return None
    try:
        return parse_day(value, next_day=next_day)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-27.") from None


def _export(kind, fmt, cohort_name, cohort_id, quiz_slug, since, until, output, bom):
    cohort = quiz = None
    if cohort_name:
        found = db.session.scalars(
            sa.select(Cohort).where(Cohort.name == cohort_name)
        ).all()
        if not found:
            raise click.ClickException(f"No cohort named {cohort_name!r}.")
        if len(found) > 1:
            ids = ", ".join(str(c.id) for c in found)
            raise click.ClickException(
                f"{len(found)} cohorts are named {cohort_name!r} (ids {ids}); "
                "name one with --cohort-id."
            )
        cohort = found[0]
    if cohort_id is not None:
        cohort = db.session.get(Cohort, cohort_id)
        if cohort is None:
            raise click.ClickException(f"No cohort with the id {cohort_id}.")
    if quiz_slug:
        quiz = db.session.scalar(sa.select(Quiz).where(Quiz.slug == quiz_slug))
        if quiz is None:
            raise click.ClickException(f"No quiz with the id {quiz_slug!r}.")
    filters = reports.Filters.of(cohort, quiz, _day(since), _day(until, next_day=True))
    header, rows = reports.EXPORTS[kind]
    if output is None:
        output = exports.export_filename(kind, filters.scope, date.today(), fmt)
    with open(output, "wb") as handle:
        if fmt == "csv":
            handle.writelines(exports.csv_bytes(header, rows(filters), bom=bom))
        else:
            exports.write_xlsx(handle, header, rows(filters), sheet=kind)
    db.session.rollback()  # end the read transaction, so the audit write can lock
    with sqlite.write_intent():
        audit.record(
            None,
            f"export.{kind}",
            "export",
            fmt,
            f"Exported {kind} to {output}",
            filters=filters.describe(),
            by=getpass.getuser(),
        )
        db.session.commit()
    click.echo(f"Wrote {output}")


def _export_command(kind: str):
    @export_cli.command(kind)
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["csv", "xlsx"]),
        default="csv",
        show_default=True,
    )
    @click.option(
        "--cohort", "cohort_name", help="Only members of the cohort with this name."
    )
    @click.option(
        "--cohort-id", type=int, help="Only members of the cohort with this id."
    )
    @click.option("--quiz", "quiz_slug", help="Only this quiz (its id).")
    @click.option("--since", help="Attempts started on or after this day (YYYY-MM-DD).")
    @click.option(
        "--until", help="Attempts started on or before this day (YYYY-MM-DD)."
    )
    @click.option(
        "--output",
        type=click.Path(dir_okay=False),
        help="File to write (default: a dated name in this folder).",
    )
    @click.option(
        "--bom", is_flag=True, help="Start a CSV with a byte-order mark (Excel)."
    )
    def command(fmt, cohort_name, cohort_id, quiz_slug, since, until, output, bom):
        _export(kind, fmt, cohort_name, cohort_id, quiz_slug, since, until, output, bom)

    command.__doc__ = f"Export {kind} (one row per {kind[:-1]}) as CSV or XLSX."
    return command


export_attempts = _export_command("attempts")
export_responses = _export_command("responses")


@click.command("demo-data")
@click.option("--players", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--attempts", type=click.IntRange(min=0), default=10000, show_default=True
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Spread the attempts over this many past days.",
)
@click.option("--seed", type=int, help="Seed for repeatable data.")
@with_appcontext
def demo_data_command(players: int, attempts: int, days: int, seed: int | None):
    """Add made-up players and finished attempts (for trying and measuring the app).

    Never on a production database: the players and scores are invented.
    """
    if current_app.config["ENV"] == "production":
        raise click.ClickException("demo-data refuses to run with QUIZ_ENV=production.")
    started = time.perf_counter()
    try:
        with sqlite.write_intent():
            filled = demo.fill(players, attempts, days=days, seed=seed)
            db.session.commit()
    except demo.DemoDataError as exc:
        raise click.ClickException(str(exc)) from None
    seconds = time.perf_counter() - started
    click.echo(
        f"Added {filled.players:,} players and {filled.attempts:,} finished attempts "
        f"({filled.best_scores:,} best scores, {filled.totals:,} totals) "
        f"in {seconds:.1f} s."
    )


@click.command("check-deploy")
def check_deploy_command() -> None:
    """Report whether the QUIZ_* settings are safe for production, without starting.

    Exits 1 and names every unsafe setting, exactly as a production start would.
    """
    settings = config.deployment_settings(str(config.PROJECT_ROOT / "instance"))
    problems = config.check_production(settings)
    if settings.get("ENV") != "production":
        click.echo(
            f"Note: QUIZ_ENV is {settings.get('ENV')!r}; checked as for production."
        )
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} setting(s) unsafe for production.")
    click.echo("OK: these settings are safe for production.")
