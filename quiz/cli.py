"""Command-line interface: ``flask --app quiz banks check|load``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from . import banks, config, sqlite
from .extensions import db

banks_cli = AppGroup("banks", help="Check and load question bank files.")


def init_app(app: Flask) -> None:
    app.cli.add_command(banks_cli)


def _parse_or_exit(paths: tuple[str, ...]) -> list[banks.BankData]:
    try:
        return banks.parse_files(paths or [config.QUESTIONS_DIR])
    except banks.BankError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        count = len(exc.problems)
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
        report = banks.sync_banks(parsed)
        db.session.commit()
    for bank in parsed:
        status = "new" if bank.slug in report.new_banks else "synced"
        click.echo(f"{bank.slug}: {status}, {report.summary(bank.slug)}")
