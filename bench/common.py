"""What the benchmarks share: databases filled with demo data, gunicorn servers, wrk.

Every figure is measured against a baseline taken in the same run on the same
machine, so a slow or busy machine moves both and the ratio stays meaningful.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORK = Path(
    os.environ.get("BENCH_DIR", Path(tempfile.gettempdir()) / "quiz-bench")
).resolve()
SECRET_KEY = "bench-secret-key-" + "b" * 40
POSTGRES_SERVER = os.environ.get(
    "BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")

# The quiz whose leaderboard the benchmarks read (a shipped bank).
BOARD_QUIZ = "source-code-demands"

# Same gunicorn settings for the ceiling and for the app: sync workers, one per core.
WORKERS = int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 2))


@dataclass(frozen=True)
class Dataset:
    """A database of a given size: ``kind`` is "sqlite" or "postgresql"."""

    kind: str
    players: int
    attempts: int
    label: str = "bench"  # keeps one benchmark's databases apart from another's

    @property
    def name(self) -> str:
        return f"quiz_{self.label}_{self.players}_{self.attempts}"

    @property
    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{WORK / (self.name + '.sqlite')}"
        return f"{POSTGRES_SERVER}/{self.name}"

    @property
    def sqlite_path(self) -> Path:
        return WORK / (self.name + ".sqlite")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def flask_env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QUIZ_DATABASE_URL=url,
        QUIZ_SECRET_KEY=SECRET_KEY,
        QUIZ_ENV="development",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def flask(url: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "quiz", *args],
        env=flask_env(url),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def ensure_dataset(data: Dataset, *, fresh: bool = False) -> Dataset:
    """Create, migrate and fill the database once; later runs reuse it (``fresh``:
    build it again from nothing)."""
    WORK.mkdir(parents=True, exist_ok=True)
    marker = WORK / (data.name + f".{data.kind}.json")
    if marker.exists() and not fresh:
        flask(data.url, "db", "upgrade")  # a kept database follows new migrations
        return data
    marker.unlink(missing_ok=True)
    if data.kind == "sqlite":
        # The -wal and -shm files too: an old write-ahead log must not meet a new file.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{data.sqlite_path}{suffix}").unlink(missing_ok=True)
    else:
        _recreate_postgres_database(data.name)
    log(
        f"Filling {data.kind} with {data.players:,} players, {data.attempts:,} attempts"
    )
    flask(data.url, "db", "upgrade")
    flask(data.url, "banks", "load")
    started = time.perf_counter()
    out = flask(
        data.url,
        "demo-data",
        f"--players={data.players}",
        f"--attempts={data.attempts}",
        "--seed=1",
    )
    log(out.strip())
    marker.write_text(
        json.dumps({"seconds": round(time.perf_counter() - started, 1), "out": out})
    )
    return data


def _recreate_postgres_database(name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(
        f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A gunicorn master on loopback; ``url`` is its base address."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def peak_rss_mb(self) -> float:
        """The largest peak resident set size among the workers (VmHWM), in MB."""
        peaks = []
        for pid in self.worker_pids():
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peaks.append(int(match.group(1)) / 1024)
        return max(peaks, default=0.0)


@contextmanager
def gunicorn(app: str, env: dict[str, str], workers: int = WORKERS, port: int = 0):
    """Serve ``app`` (a gunicorn app spec) with sync workers until the block ends."""
    port = port or free_port()
    WORK.mkdir(parents=True, exist_ok=True)
    log_path = WORK / f"gunicorn-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{port}",
                "--backlog",
                "2048",
                "--timeout",
                "120",
                # Several servers on one host: gunicorn's default control socket
                # (~/.gunicorn/gunicorn.ctl) would be shared and removed by each.
                "--no-control-socket",
                app,
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port, log_path)
    try:
        _wait_until_serving(server, workers)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(server: Server, workers: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log_path.read_text()}")
        try:
            with urllib.request.urlopen(server.url + "/", timeout=5):
                pass
            if len(server.worker_pids()) >= workers:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start:\n{server.log_path.read_text()}")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors plus responses other than 2xx/3xx


def wrk(
    url: str,
    *,
    seconds: int = 10,
    connections: int = 8,
    threads: int = 2,
    script: Path | None = None,
    headers: dict[str, str] | None = None,
    script_args: tuple[str, ...] = (),
) -> WrkResult:
    """Run wrk against ``url`` and read its summary and latency distribution."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, url, *(["--", *script_args] if script_args else [])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(out: str) -> WrkResult:
    requests, seconds = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out).group(1, 2)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkResult(int(requests), float(seconds), rps, p50, p99, errors)


def row(label: str, result: WrkResult, ceiling_rps: float | None) -> str:
    ratio = f"{result.rps / ceiling_rps:5.2f}x" if ceiling_rps else "    - "
    return (
        f"{label:<34} {result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
        f"p99 {result.p99_ms:7.2f} ms  {ratio}  errors {result.errors}"
    )


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (all of them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU time per request of the app's workers (and of PostgreSQL), over a run.

    PostgreSQL starts a process per connection, and the pools connect during the run:
    its processes are listed again at the end, a new one counted from zero."""

    def __init__(self, worker_pids: list[int], *, postgres: bool = True):
        self.workers = worker_pids
        self.postgres = postgres

    def start(self) -> None:
        self.app = cpu_seconds(self.workers)
        self.db = {pid: cpu_seconds([pid]) for pid in self._database_pids()}

    def per_request(self, requests: int) -> str:
        app = cpu_seconds(self.workers) - self.app
        db = sum(
            cpu_seconds([pid]) - self.db.get(pid, 0.0) for pid in self._database_pids()
        )
        app, db = (seconds / max(1, requests) * 1000 for seconds in (app, db))
        if not self.postgres:
            return f"CPU per request: app {app:.2f} ms"
        if db < 0.005:  # nothing measurable: the page asked the database nothing
            return f"CPU per request: app {app:.2f} ms, PostgreSQL {db:.2f} ms"
        return (
            f"CPU per request: app {app:.2f} ms, PostgreSQL {db:.2f} ms "
            f"({app / db:.0f} app cores per database core)"
        )

    def _database_pids(self) -> list[int]:
        return postgres_pids() if self.postgres else []


class Ceiling:
    """The bare-Flask ceiling, served for a whole run and measured again after each
    of the app's figures (``Served``): a figure's ratio is to the mean of the last
    ceiling measured before it and the one measured right after it, so that a busy
    spell on a shared machine weighs on both sides of the ratio, not on one."""

    def __init__(self, server: Server, measure: dict):
        self.server = server
        self.measure = measure
        self.runs: list[WrkResult] = []

    def take(self) -> tuple[WrkResult, str]:
        """Measure the ceiling now: its result, and its lines to print (with the CPU
        time per request of the bare workers)."""
        cpu = CpuMeter(self.server.worker_pids(), postgres=False)
        cpu.start()
        result = wrk(self.server.url + "/", **self.measure)
        used = cpu.per_request(result.requests)
        self.runs.append(result)
        return result, f"{row('bare Flask (ceiling)', result, None)}\n{'':34} {used}"

    def latest(self) -> WrkResult:
        """The last ceiling measured; the first is measured (and printed) now."""
        if not self.runs:
            print(self.take()[1])
        return self.runs[-1]

    def summary(self) -> str:
        rates = [result.rps for result in self.runs]
        return (
            f"ceiling over the run: {min(rates):,.0f} to {max(rates):,.0f} req/s "
            f"in {len(rates)} measures"
        )


@dataclass
class Served:
    """wrk against one server, each figure printed with its CPU time per request
    and its ratio to the ceilings measured either side of it (``Ceiling``)."""

    server: Server
    cpu: CpuMeter
    ceiling: Ceiling

    def measure(self, label: str, target: str, **options) -> WrkResult:
        before = self.ceiling.latest()
        self.cpu.start()
        result = wrk(self.server.url + target, **options)
        used = self.cpu.per_request(result.requests)
        after, lines = self.ceiling.take()  # the ratio needs it; printed below
        print(row(label, result, (before.rps + after.rps) / 2))
        print(f"{'':34} {used}")
        print(lines)
        return result
