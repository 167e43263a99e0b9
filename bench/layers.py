"""What a page costs before its content: the app's layers, one at a time.

Serves, with the same gunicorn settings as the other benchmarks, the bare-Flask
ceiling, the floor of a form's write (``bench.floor``), and the quiz app with probe
views added in this module only (the app itself has no such routes), on the
1,000,000-attempt database. Every form's POST sends a prepared answer's body (its
choice and CSRF token) with its guest's cookie, as in ``bench.pages``.

First the floor, a bare Flask app with no session, CSRF check, ORM or pool:

- ``POST /floor/post/<attempt>/<position>``: the form read, and a redirect;
- ``POST /floor/write/<attempt>/<position>``: the same, plus one row written into
  ``bench_probe_write`` with the database driver alone.

Then the app. A page, up to the real leaderboard, signed in as the same guest; like
the play pages, these probes read without a transaction:

- ``/probe/ok``: "ok" through every hook of the app (session cookie, the security
  headers, CSRF and rate-limit checks, database session teardown), not signed in;
- ``/probe/signed-in``: the same, signed in (the session checked against the
  player's row, as on every page);
- ``/probe/layout``: the site's layout (``base.html``) with a one-line page, signed
  in: what any page costs before its own content;
- the quiz leaderboard.

Then a form's POST, up to answering a question, with the session of a guest with
open attempts:

- ``POST /probe/post/<attempt>/<position>``: the CSRF check, the player's session,
  and the redirect that answering sends, with no database work;
- ``POST /probe/write/<attempt>/<position>``: the same, plus the smallest write
  transaction, run as answering runs its own: one INSERT (into a table of its own,
  ``bench_probe_write``, made in the bench databases only and emptied at the start
  of each run) in a ``core_transaction`` (a pooled connection, no ORM session),
  begun with ``BEGIN IMMEDIATE`` on SQLite, sent with the COMMIT
  (``HotWrite.send``: on PostgreSQL with the BEGIN too, in one round trip);
- answering the question itself (``bench.pages``).

The ceiling stays served and is measured again after each figure: a figure's ratio
is to the mean of the ceilings either side of it (``bench.common.Ceiling``). Under
each figure, the CPU time per request of the workers (and of PostgreSQL).

    .venv/bin/python -m bench.layers [--db sqlite|postgresql|both] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bench import players
from bench.common import (
    BOARD_QUIZ,
    WORK,
    WORKERS,
    Ceiling,
    CpuMeter,
    Dataset,
    Served,
    ensure_dataset,
    flask_env,
    gunicorn,
)

ANSWERS = WORK / "answers.lua"

PROBE_PAGE = """{% extends "base.html" %}{% block title %}Probe{% endblock %}
{% block content %}<p>Probe.</p>{% endblock %}"""


# The write probe's table: in the bench databases only, never in the app's schema.
PROBE_WRITES = sa.Table(
    "bench_probe_write",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("attempt_id", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)


def create_app():
    """The quiz app with the probe views (``gunicorn 'bench.layers:create_app()'``)."""
    from flask import Blueprint, redirect, url_for
    from flask_login import current_user, login_required

    from quiz import create_app as create_quiz_app
    from quiz.play import _read_only_pages as read_only_pages
    from quiz.reads import HotWrite, core_transaction
    from quiz.security import leaves_player_unchanged

    app = create_quiz_app()
    page = app.jinja_env.from_string(PROBE_PAGE)

    def ok() -> str:
        return "ok"

    def signed_in() -> str:
        return "ok" if current_user.is_authenticated else "anonymous"

    def layout() -> str:
        context: dict = {}
        app.update_template_context(context)  # what render_template adds
        return page.render(context)

    # Read like the play pages: in autocommit, without a transaction.
    probes = Blueprint("probe", __name__, url_prefix="/probe")
    probes.before_request(read_only_pages)
    probes.add_url_rule("/ok", "ok", ok)
    probes.add_url_rule("/signed-in", "signed_in", signed_in)
    probes.add_url_rule("/layout", "layout", layout)
    app.register_blueprint(probes)

    # Forms' POSTs, as answering is served (see the module's notes).
    record = HotWrite(sa.insert(PROBE_WRITES), columns=("attempt_id", "position"))

    def posted(attempt_id: int, position: int):
        return redirect(
            url_for("play.question", attempt_id=attempt_id, position=position)
        )

    def written(attempt_id: int, position: int):
        with core_transaction():
            record.send(attempt_id=attempt_id, position=position)
        return posted(attempt_id, position)

    forms = Blueprint("probe_forms", __name__, url_prefix="/probe")
    for name, view in (("post", posted), ("write", written)):
        forms.add_url_rule(
            f"/{name}/<int:attempt_id>/<int:position>",
            name,
            leaves_player_unchanged(login_required(view)),
            methods=["POST"],
        )
    app.register_blueprint(forms)
    return app


def probe_script(answers: list[tuple[str, str, str]], probe: str) -> Path:
    """A wrk script posting the prepared answers' forms to a probe instead: this
    module's (``post``, ``write``) or ``bench.floor``'s (``floor/post``,
    ``floor/write``)."""
    prefix = f"/{probe}/" if probe.startswith("floor/") else f"/probe/{probe}/"
    moved = [
        (
            path.replace("/attempts/", prefix).replace("/questions/", "/"),
            cookie,
            body,
        )
        for path, cookie, body in answers
    ]
    name = probe.replace("/", "-")
    return players.answer_script(moved, WORK / f"probe-{name}.lua")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both"
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print(
        f"Machine: {os.cpu_count()} cores; gunicorn {WORKERS} sync workers; "
        f"wrk 2 threads, {args.connections} connections, {args.seconds} s each"
    )
    for kind in kinds:
        run(kind, args)


def run(kind: str, args) -> None:
    data = ensure_dataset(Dataset(kind, 100_000, 1_000_000))
    measure = {"seconds": args.seconds, "connections": args.connections}
    postgres = kind == "postgresql"
    print(f"\n{kind}")
    app = players.local_app(data.url)
    client, player = players.guest(app, "Layers Player")
    players.play_through(app, client, player, BOARD_QUIZ)
    answers = players.open_answers(app, players.ANSWERS_PER_SECOND * args.seconds)
    with data_engine(data.url) as engine, engine.begin() as connection:
        PROBE_WRITES.create(connection, checkfirst=True)
        connection.execute(PROBE_WRITES.delete())  # the last run's rows
    with gunicorn("bench.bare:app", flask_env(data.url)) as bare:
        ceiling = Ceiling(bare, measure)
        with gunicorn("bench.floor:app", flask_env(data.url)) as floor:
            cpu = CpuMeter(floor.worker_pids(), postgres=postgres)
            served = Served(floor, cpu, ceiling)
            for label, probe in (
                ("bare Flask POST, redirect", "floor/post"),
                ("+ one INSERT, driver alone", "floor/write"),
            ):
                script = probe_script(answers, probe)
                served.measure(label, "/", script=script, script_args=("2",), **measure)
        with gunicorn("bench.layers:create_app()", flask_env(data.url)) as server:
            cpu = CpuMeter(server.worker_pids(), postgres=postgres)
            measure_app(Served(server, cpu, ceiling), player, answers, measure)
        print(ceiling.summary())


def measure_app(served: Served, player, answers, measure: dict) -> None:
    """The app's figures, layer by layer (see the module's notes)."""
    served.measure("app hooks, not signed in", "/probe/ok", **measure)
    for label, path in (
        ("+ signed in", "/probe/signed-in"),
        ("+ the layout", "/probe/layout"),
        ("the quiz leaderboard", f"/quizzes/{BOARD_QUIZ}/leaderboard"),
    ):
        served.measure(label, path, headers=player.headers, **measure)
    for label, script in (
        ("POST, signed in, redirect", probe_script(answers, "post")),
        ("+ a write transaction", probe_script(answers, "write")),
        ("answering a question", players.answer_script(answers, ANSWERS)),
    ):
        served.measure(label, "/", script=script, script_args=("2",), **measure)


@contextmanager
def data_engine(url: str):
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
