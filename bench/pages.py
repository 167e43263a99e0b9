"""Requests per second of the busiest pages, against the bare-Flask ceiling.

For each database (SQLite, PostgreSQL) this serves, with the same gunicorn settings:
the bare Flask app (the ceiling), then the quiz app on 100,000 players with 10,000
and with 1,000,000 finished attempts. wrk measures, signed in as a ranked player:

- the leaderboard page of a quiz (top 20 plus the player's own rank),
- the catalogue,
- answering a question: a POST with its CSRF token, each one a first answer to a
  question of a real open attempt.

The ceiling stays served and is measured again after each figure: a figure's ratio
is to the mean of the ceilings either side of it (``bench.common.Ceiling``). Under
each figure: the CPU time per request of the workers (and of PostgreSQL), a steadier
measure than requests/s on a shared machine.

    .venv/bin/python -m bench.pages [--db sqlite|postgresql|both] [--seconds 10]
"""

from __future__ import annotations

import argparse
import platform

from bench import players
from bench.common import (
    BOARD_QUIZ,
    WORK,
    WORKERS,
    Ceiling,
    CpuMeter,
    Dataset,
    Served,
    WrkResult,
    ensure_dataset,
    flask_env,
    gunicorn,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both"
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--players", type=int, default=100_000)
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print(
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} cores; gunicorn {WORKERS} sync workers; "
        f"wrk 2 threads, {args.connections} connections, {args.seconds} s each"
    )
    for kind in kinds:
        run(kind, args)


def run(kind: str, args) -> None:
    small = ensure_dataset(Dataset(kind, args.players, 10_000))
    large = ensure_dataset(Dataset(kind, args.players, 1_000_000))
    measure = {"seconds": args.seconds, "connections": args.connections}
    print(f"\n{kind}")
    postgres = kind == "postgresql"
    results: dict[str, WrkResult] = {}
    with gunicorn("bench.bare:app", flask_env(small.url)) as bare:
        ceiling = Ceiling(bare, measure)
        for data in (small, large):
            label = f"{data.attempts:,} attempts"
            app = players.local_app(data.url)
            client, player = players.guest(app, "Bench Player")
            players.play_through(app, client, player, BOARD_QUIZ)
            headers = player.headers
            if data is large:  # made before the server starts, not while it serves
                script, planned = answer_script(app, measure)
            with gunicorn("quiz:create_app()", flask_env(data.url)) as server:
                cpu = CpuMeter(server.worker_pids(), postgres=postgres)
                served = Served(server, cpu, ceiling)
                results[f"leaderboard {data.attempts}"] = served.measure(
                    f"leaderboard, {label}",
                    f"/quizzes/{BOARD_QUIZ}/leaderboard",
                    headers=headers,
                    **measure,
                )
                if data is large:
                    served.measure(
                        f"catalogue, {label}", "/", headers=headers, **measure
                    )
                    answering = served.measure(
                        f"answering, {label}",
                        "/",
                        script=script,
                        script_args=("2",),
                        **measure,
                    )
                    fresh = min(answering.requests, planned)
                    print(f"{'':34} {fresh:,} first answers of {planned:,} prepared")
        print(ceiling.summary())
    ratio = results["leaderboard 1000000"].p50_ms / results["leaderboard 10000"].p50_ms
    print(f"leaderboard p50 at 1,000,000 / at 10,000 attempts: {ratio:.2f}x")


def answer_script(app, measure: dict):
    """Prepare open attempts and write their answers into a wrk script; return the
    script and the number of answers prepared."""
    answers = players.open_answers(app, players.ANSWERS_PER_SECOND * measure["seconds"])
    return players.answer_script(answers, WORK / "answers.lua"), len(answers)


if __name__ == "__main__":
    main()
