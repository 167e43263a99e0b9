"""Rows per second of the attempts CSV export, against the database's own CSV dump.

For each database (SQLite, PostgreSQL) on 100,000 players and 1,000,000 attempts,
this serves the app with one gunicorn sync worker, signs in as an admin and downloads
``/trainer/export/attempts.csv`` (every attempt), timed from the request to the last
byte. The baseline, in the same run, is the database's command-line client writing
the export's own SQL statement as CSV:

- SQLite: ``sqlite3 -csv <file> "<statement>" > /dev/null``;
- PostgreSQL: ``psql --csv -c "<statement>"`` and ``COPY (<statement>) TO STDOUT``.

It prints rows/s, MB, seconds, the ratio app/CLI and the worker's peak resident set
size (VmHWM). With one worker the peak is the export's worker.

    .venv/bin/python -m bench.export [--db sqlite|postgresql|both] [--runs 1]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench import players
from bench.common import (
    POSTGRES_SERVER,
    SECRET_KEY,
    Dataset,
    ensure_dataset,
    flask_env,
    gunicorn,
    log,
)
from quiz import accounts, create_app, reports, sqlite
from quiz.extensions import db

PLAYERS = 100_000
ATTEMPTS = 1_000_000
EXPORT_PATH = "/trainer/export/attempts.csv"
ADMIN_EMAIL = "bench-admin@bench.invalid"
ADMIN_PASSWORD = "bench export admin password"
TARGET_RATIO = 0.4
TARGET_PEAK_MB = 100


@dataclass(frozen=True)
class Download:
    rows: int
    bytes: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both"
    )
    parser.add_argument("--runs", type=int, default=1, help="measurements per database")
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print(
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; gunicorn 1 sync worker; "
        f"{PLAYERS:,} players, {ATTEMPTS:,} attempts"
    )
    for kind in kinds:
        run(kind, args.runs)


def run(kind: str, runs: int) -> None:
    data = ensure_dataset(Dataset(kind, PLAYERS, ATTEMPTS))
    app = create_app({"DATABASE_URL": data.url, "SECRET_KEY": SECRET_KEY})
    cookie = admin_cookie(app)
    with app.app_context():
        sql = str(
            reports.attempt_statement(reports.Filters()).compile(
                dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}
            )
        )
    baselines = cli_commands(data, sql)
    print(f"\n{kind}")
    ratios = []
    with gunicorn("quiz:create_app()", flask_env(data.url), workers=1) as server:
        before = worker_rss_mb(server)
        for number in range(1, runs + 1):
            label = f"run {number}: " if runs > 1 else ""
            cli = {name: timed(command) for name, command in baselines.items()}
            log(f"{kind}: downloading {EXPORT_PATH}")
            got = download(server.url + EXPORT_PATH, cookie)
            print(
                f"{label}app GET {EXPORT_PATH:<28} {got.rows:>9,} rows "
                f"{got.bytes / 1e6:6.1f} MB {got.seconds:6.2f} s "
                f"{got.rows_per_second:8,.0f} rows/s"
            )
            for name, seconds in cli.items():
                ratio = seconds / got.seconds  # the same rows: rates compare as times
                ratios.append(ratio)
                print(
                    f"{label}{name:<49} {seconds:6.2f} s "
                    f"{got.rows / seconds:8,.0f} rows/s  app/CLI {ratio:4.2f}x"
                )
        peak = server.peak_rss_mb()
    print(
        f"worker RSS {before:.1f} MB before the export, peak (VmHWM) {peak:.1f} MB: "
        f"{'under' if peak < TARGET_PEAK_MB else 'NOT under'} {TARGET_PEAK_MB} MB"
    )
    if kind == "sqlite":
        met = "met" if min(ratios) >= TARGET_RATIO else "NOT met"
        print(f"app/CLI >= {TARGET_RATIO}x: {met}")


def worker_rss_mb(server) -> float:
    """The resident set size of the (single) worker now (VmRSS), in MB."""
    pid = server.worker_pids()[0]
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def admin_cookie(app) -> str:
    """Sign in as the bench admin (created once) through /auth/login; the Cookie value.

    The sign-in runs in this process, so the server's worker never hashes a password
    and its peak memory is the export's.
    """
    with app.app_context():
        if accounts.find_by_email(ADMIN_EMAIL) is None:
            with sqlite.write_intent():
                accounts.create_account(
                    "Bench Admin", ADMIN_EMAIL, ADMIN_PASSWORD, "admin"
                )
                db.session.commit()
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token = players.CSRF.search(page).group(1)
    response = client.post(
        "/auth/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, response.status_code
    return f"session={client.get_cookie('session').value}"


def cli_commands(data: Dataset, sql: str) -> dict[str, list[str]]:
    """The baseline commands: the database's client writing ``sql`` as CSV."""
    if data.kind == "sqlite":
        return {
            "sqlite3 -csv (same SQL)": ["sqlite3", "-csv", str(data.sqlite_path), sql]
        }
    url = "postgresql://" + POSTGRES_SERVER.split("://", 1)[1] + "/" + data.name
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url]
    return {
        "psql --csv -c (same SQL)": [*psql, "--csv", "-c", sql],
        "psql COPY (same SQL) TO STDOUT WITH CSV": [
            *psql,
            "-c",
            f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)",
        ],
    }


def timed(command: list[str]) -> float:
    """Seconds ``command`` takes with its output going to /dev/null."""
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def download(url: str, cookie: str) -> Download:
    """GET ``url`` and read it to the end; data rows are lines after the header.

    The demo data has no line breaks inside cells, so lines are rows.
    """
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    connection.request("GET", parts.path, headers={"Cookie": cookie})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"GET {parts.path}: {response.status} {response.reason}")
    lines = size = 0
    while chunk := response.read(1 << 20):
        lines += chunk.count(b"\n")
        size += len(chunk)
    seconds = time.perf_counter() - started
    connection.close()
    return Download(lines - 1, size, seconds)


if __name__ == "__main__":
    main()
