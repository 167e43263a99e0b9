"""What a page costs before its content: the app's layers, one at a time.

Serves, with the same gunicorn settings as the other benchmarks, the bare-Flask
ceiling and the quiz app with three probe views added in this module only (the app
itself has no such routes), then the real leaderboard, all signed in as the same
guest on the 1,000,000-attempt database:

Like the play pages, the probes read without a transaction.

- ``/probe/ok``: "ok" through every hook of the app (session cookie, the security
  headers, CSRF and rate-limit checks, database session teardown), not signed in;
- ``/probe/signed-in``: the same, signed in (the session checked against the
  player's row, as on every page);
- ``/probe/layout``: the site's layout (``base.html``) with a one-line page, signed
  in: what any page costs before its own content;
- the quiz leaderboard.

    .venv/bin/python -m bench.layers [--db sqlite|postgresql|both] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os

from bench import players
from bench.common import (
    BOARD_QUIZ,
    WORKERS,
    Dataset,
    ensure_dataset,
    flask_env,
    gunicorn,
    row,
    wrk,
)

PROBE_PAGE = """{% extends "base.html" %}{% block title %}Probe{% endblock %}
{% block content %}<p>Probe.</p>{% endblock %}"""


def create_app():
    """The quiz app with the probe views (``gunicorn 'bench.layers:create_app()'``)."""
    from flask import Blueprint
    from flask_login import current_user

    from quiz import create_app as create_quiz_app
    from quiz.play import _read_only_pages as read_only_pages

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
    return app


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
    print(f"\n{kind}")
    with gunicorn("bench.bare:app", flask_env(data.url)) as bare:
        ceiling = wrk(bare.url + "/", **measure)
    print(row("bare Flask (ceiling)", ceiling, None))
    app = players.local_app(data.url)
    client, player = players.guest(app, "Layers Player")
    players.play_through(app, client, player, BOARD_QUIZ)
    with gunicorn("bench.layers:create_app()", flask_env(data.url)) as server:
        anonymous = wrk(server.url + "/probe/ok", **measure)
        print(row("app hooks, not signed in", anonymous, ceiling))
        for label, path in (
            ("+ signed in", "/probe/signed-in"),
            ("+ the layout", "/probe/layout"),
            ("the quiz leaderboard", f"/quizzes/{BOARD_QUIZ}/leaderboard"),
        ):
            result = wrk(server.url + path, headers=player.headers, **measure)
            print(row(label, result, ceiling))


if __name__ == "__main__":
    main()
