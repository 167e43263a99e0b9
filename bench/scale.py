"""What shared state costs: one app server against two, on one PostgreSQL and Redis.

On the PostgreSQL database with 100,000 players and 1,000,000 attempts, with the same
total number of gunicorn workers, wrk measures the leaderboard page and answering
for:

- one server, rate limits in process memory (nothing shared but the database),
- one server, rate limits in Redis,
- two servers (half the workers each), rate limits in Redis: two wrk processes, one
  per server, each with half the connections; their requests add up.

All on this one machine, so two servers cannot add capacity here; the ratio shows
the cost of running as several servers. Under each figure: the CPU time the app's
workers and PostgreSQL's processes spent per request, which says how many app cores
one database core can serve once they run on machines of their own.

    .venv/bin/python -m bench.scale [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from bench import players
from bench.common import (
    BOARD_QUIZ,
    REDIS_URL,
    WORK,
    WORKERS,
    CpuMeter,
    Dataset,
    WrkResult,
    ensure_dataset,
    flask_env,
    gunicorn,
    row,
    wrk,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    data = ensure_dataset(Dataset("postgresql", 100_000, 1_000_000))
    app = players.local_app(data.url)
    client, player = players.guest(app, "Scale Player")
    players.play_through(app, client, player, BOARD_QUIZ)
    print(
        f"PostgreSQL, {data.attempts:,} attempts; {WORKERS} workers in all; "
        f"wrk {args.connections} connections in all, {args.seconds} s each"
    )
    setups = (
        ("one server, memory limits", 1, "memory://"),
        ("one server, Redis limits", 1, REDIS_URL),
        ("two servers, Redis limits", 2, REDIS_URL),
    )
    results = {}
    for label, servers, store in setups:
        env = flask_env(data.url, QUIZ_RATELIMIT_STORAGE_URI=store)
        with ExitStack() as stack:
            started = [
                stack.enter_context(
                    gunicorn("quiz:create_app()", env, WORKERS // servers)
                )
                for _ in range(servers)
            ]
            urls = [server.url for server in started]
            cpu = CpuMeter([pid for s in started for pid in s.worker_pids()])
            threads = 1 if servers > 1 else 2
            measure = {"seconds": args.seconds, "threads": threads}
            cpu.start()
            board = _together(
                [f"{url}/quizzes/{BOARD_QUIZ}/leaderboard" for url in urls],
                [{"headers": player.headers, **measure}] * servers,
                args.connections,
            )
            board_cpu = cpu.per_request(board.requests)
            answers = players.open_answers(
                app, players.ANSWERS_PER_SECOND * args.seconds
            )
            scripts = [
                players.answer_script(answers[i::servers], WORK / f"answers-{i}.lua")
                for i in range(servers)
            ]
            cpu.start()
            answering = _together(
                [url + "/" for url in urls],
                [
                    {"script": script, "script_args": (str(threads),), **measure}
                    for script in scripts
                ],
                args.connections,
            )
            answer_cpu = cpu.per_request(answering.requests)
        results[label] = (board, answering)
        print(row(f"leaderboard, {label}", board, None))
        print(f"{'':34} {board_cpu}")
        print(row(f"answering, {label}", answering, None))
        print(f"{'':34} {answer_cpu}")
    base_board, base_answer = results["one server, memory limits"]
    two_board, two_answer = results["two servers, Redis limits"]
    print(
        f"two servers / one server: leaderboard {two_board.rps / base_board.rps:.2f}x, "
        f"answering {two_answer.rps / base_answer.rps:.2f}x"
    )


def _together(urls: list[str], options: list[dict], connections: int) -> WrkResult:
    """Run one wrk per server at once and add their figures up."""
    share = max(1, connections // len(urls))
    with ThreadPoolExecutor(len(urls)) as pool:
        runs = [
            pool.submit(wrk, url, connections=share, **extra)
            for url, extra in zip(urls, options, strict=True)
        ]
        results = [run.result() for run in runs]
    if len(results) == 1:
        return results[0]
    return WrkResult(
        requests=sum(r.requests for r in results),
        seconds=max(r.seconds for r in results),
        rps=sum(r.rps for r in results),
        p50_ms=max(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
