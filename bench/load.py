"""Nothing lost under load: every acknowledged answer is stored once, nothing else is.

For each database (SQLite, PostgreSQL) this builds a fresh database of its own (1,000
demo players, 10,000 finished attempts), serves it with gunicorn (the benchmarks' sync
workers) and lets simulated players loose on it, one thread and one connection each.
Every player signs in as a guest through the form, then plays quiz after quiz the way
a browser does: start, open each question page and pick from the choices it shows,
answer, finish, open the results. Now and then a player sends an answer again later
with another choice (a second tab), sends the same answer twice at once on a second
connection (a double click), finishes early, or answers after finishing.

The client keeps a ledger of what the server acknowledged: an answer redirected back
to its question page is stored, a finish redirected to the results is finished. After
the run it compares the ledger with the database:

- every acknowledged answer has exactly one response row, with the first acknowledged
  choice; there is no response row that was not acknowledged (a 5xx, a refused or a
  lost request leaves nothing);
- every attempt the client saw finish is finished, and every finished attempt's score
  is the sum of its responses' points;
- each player's best score on a quiz is their best finished attempt (higher score,
  then shorter duration, then earlier finish), and their overall total is the sum of
  their best scores.

It exits non-zero on any mismatch, any 5xx and any failed request (connection error or
timeout).

    .venv/bin/python -m bench.load [--db sqlite|postgresql|both] [--seconds 30]
                                   [--connections 32]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import re
import secrets
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa

from bench.common import (
    WORKERS,
    Dataset,
    cpu_seconds,
    ensure_dataset,
    flask_env,
    gunicorn,
)

TIMEOUT = 60  # seconds a request may take before it counts as failed
REPLAY = 0.10  # chance that an acknowledged answer is sent again later, changed
DOUBLE_SUBMIT = 0.05  # chance that an answer is sent twice at once
FINISH_EARLY = 0.03  # chance, before each question, of finishing the attempt now
ANSWER_AFTER_FINISH = 0.5  # chance, after finishing early, of one more answer (refused)
RETRIES = 3  # failed requests for one question before the player abandons the attempt

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CHOICE = re.compile(r'<input type="(radio|checkbox)" name="choice" value="(\d+)"')
PROGRESS = re.compile(r"Question (\d+) of (\d+)</label>")
QUIZ_LINK = re.compile(r'href="/quizzes/([a-z0-9-]+)"')
ATTEMPT = re.compile(r"/attempts/(\d+)")
QUESTION = re.compile(r"/attempts/(\d+)/questions/(\d+)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both"
    )
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print(
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; gunicorn {WORKERS} sync workers; "
        f"{args.connections} players (threads), {args.seconds} s each"
    )
    failed = [kind for kind in kinds if not run(kind, args)]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        raise SystemExit(1)
    print("\nOK: nothing lost, nothing extra")


# --- the client's ledger ---------------------------------------------------------------


@dataclass
class Ledger:
    """What one player sent and what the server acknowledged."""

    name: str
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)  # 5xx: "POST /path 500"
    errors: list[str] = field(default_factory=list)  # connection errors, timeouts
    timeouts: int = 0
    # (attempt id, position) -> the choices of the first acknowledged answer
    answers: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)
    answers_sent: int = 0
    replays: int = 0  # sent again later with another choice, acknowledged
    double_submits: int = 0  # sent twice at once, both acknowledged
    refused: int = 0  # answers after finishing, refused with 409
    failed_answers: set[tuple[int, int]] = field(default_factory=set)
    started: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    surprises: list[str] = field(default_factory=list)  # unexpected statuses


@dataclass
class Reply:
    status: int
    location: str  # path of the Location header, "" without one
    text: str


class Player(threading.Thread):
    """One simulated player: a guest with a browser's session, playing until the end."""

    def __init__(self, port: int, name: str, deadline: float, seed: int):
        super().__init__(daemon=True)
        self.port = port
        self.deadline = deadline
        self.rng = random.Random(seed)
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.ledger = Ledger(name)
        self.main = self._connection()
        self.twin = self._connection()  # the second tab, for double submits
        self.sent_at: dict[http.client.HTTPConnection, float] = {}

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)

    # --- HTTP ---------------------------------------------------------------------------

    def send(self, conn, method: str, path: str, form: dict | None = None) -> bool:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.sent_at[conn] = time.perf_counter()
        try:
            conn.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._failed(conn, method, path, exc)
            return False
        return True

    def receive(self, conn, method: str, path: str) -> Reply | None:
        try:
            response = conn.getresponse()
            text = response.read().decode()
        except (OSError, http.client.HTTPException) as exc:
            self._failed(conn, method, path, exc)
            return None
        ledger = self.ledger
        ledger.requests += 1
        ledger.seconds.append(time.perf_counter() - self.sent_at[conn])
        ledger.statuses[response.status] += 1
        if response.status >= 500:
            ledger.server_errors.append(f"{method} {path} {response.status}")
        for header in response.headers.get_all("Set-Cookie") or ():
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value
        location = urlsplit(response.headers.get("Location", "")).path
        return Reply(response.status, location, text)

    def fetch(self, method: str, path: str, form: dict | None = None) -> Reply | None:
        if not self.send(self.main, method, path, form):
            return None
        return self.receive(self.main, method, path)

    def _failed(self, conn, method: str, path: str, exc: Exception) -> None:
        conn.close()
        self.ledger.requests += 1
        self.ledger.errors.append(f"{method} {path}: {type(exc).__name__} {exc}")
        if isinstance(exc, TimeoutError):
            self.ledger.timeouts += 1

    def surprise(self, what: str, reply: Reply | None) -> None:
        if reply is not None and reply.status < 500:
            self.ledger.surprises.append(f"{what}: {reply.status} {reply.location}")

    def in_time(self) -> bool:
        return time.monotonic() < self.deadline

    # --- playing ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            slugs = self.become_guest()
            while slugs and self.in_time():
                self.play(self.rng.choice(slugs))
        except (AttributeError, ValueError) as exc:  # a page it could not read
            self.ledger.errors.append(f"player stopped: {exc!r}")
        finally:
            self.main.close()
            self.twin.close()

    def become_guest(self) -> list[str]:
        while self.in_time():
            page = self.fetch("GET", "/guest")
            if page is None or page.status != 200:
                self.surprise("guest form", page)
                continue
            self.csrf = CSRF.search(page.text).group(1)
            form = {"display_name": self.ledger.name, "csrf_token": self.csrf}
            reply = self.fetch("POST", "/guest", form)
            if reply is not None and reply.status == 302:
                catalogue = self.fetch("GET", "/")
                if catalogue is not None and catalogue.status == 200:
                    return sorted(set(QUIZ_LINK.findall(catalogue.text)))
            self.surprise("becoming a guest", reply)
        return []

    def play(self, slug: str) -> None:
        """One attempt: start (or resume), answer question by question, finish."""
        reply = self.fetch("POST", f"/quizzes/{slug}/start", {"csrf_token": self.csrf})
        if reply is None or reply.status != 302 or not ATTEMPT.search(reply.location):
            self.surprise(f"start {slug}", reply)
            return
        attempt_id = int(ATTEMPT.search(reply.location).group(1))
        self.ledger.started.add(attempt_id)
        reply = self.fetch("GET", reply.location)
        if reply is None:
            return
        where = QUESTION.search(reply.location)
        if reply.status != 302 or not where:
            if "/results" not in reply.location:
                self.surprise(f"attempt {attempt_id}", reply)
            return
        position, total, failures = int(where.group(2)), None, 0
        while (total is None or position <= total) and self.in_time():
            if failures >= RETRIES:
                return
            if self.rng.random() < FINISH_EARLY:
                self.finish(attempt_id, early=position)
                return
            url = f"/attempts/{attempt_id}/questions/{position}"
            page = self.fetch("GET", url)
            if page is None or page.status != 200:
                self.surprise(url, page)
                failures += 1
                continue
            total = int(PROGRESS.search(page.text).group(2))
            self.csrf = CSRF.search(page.text).group(1)
            inputs = CHOICE.findall(page.text)
            # A page without choices is an answered question: on to the next.
            if inputs and not self.answer(attempt_id, position, url, inputs):
                failures += 1
                continue
            position, failures = position + 1, 0
        if self.in_time():
            self.finish(attempt_id)

    def answer(self, attempt_id: int, position: int, url: str, inputs) -> bool:
        """Answer one question (sometimes twice); True once it is acknowledged."""
        key = (attempt_id, position)
        ids = [int(value) for _, value in inputs]
        chosen = self.pick(inputs[0][0], ids)
        form = {"choice": list(chosen), "csrf_token": self.csrf}
        self.ledger.answers_sent += 1
        if self.rng.random() < DOUBLE_SUBMIT:
            replies = self.at_once(url, form)
            acknowledged = [r for r in replies if self.stored(r, key)]
            if len(acknowledged) == 2:
                self.ledger.double_submits += 1
        else:
            reply = self.fetch("POST", url, form)
            acknowledged = [reply] if self.stored(reply, key) else []
        if not acknowledged:
            self.ledger.failed_answers.add(key)
            return False
        self.ledger.answers.setdefault(key, chosen)
        if self.rng.random() < REPLAY and len(ids) > 1:
            other = self.pick(inputs[0][0], ids, avoid=chosen)
            reply = self.fetch(
                "POST", url, {"choice": list(other), "csrf_token": self.csrf}
            )
            if self.stored(reply, key):
                self.ledger.replays += 1
        return True

    def stored(self, reply: Reply | None, key: tuple[int, int]) -> bool:
        if reply is None or reply.status >= 500:
            return False
        where = QUESTION.search(reply.location)
        if reply.status == 302 and where and tuple(map(int, where.groups())) == key:
            return True
        self.surprise(f"answer {key}", reply)
        return False

    def at_once(self, url: str, form: dict) -> list[Reply | None]:
        """Send the same POST on both connections before reading either reply."""
        sent = [
            conn
            for conn in (self.main, self.twin)
            if self.send(conn, "POST", url, form)
        ]
        return [self.receive(conn, "POST", url) for conn in sent]

    def pick(self, kind: str, ids: list[int], avoid=()) -> tuple[int, ...]:
        while True:
            if kind == "checkbox":
                chosen = self.rng.sample(ids, self.rng.randint(1, len(ids)))
            else:
                chosen = [self.rng.choice(ids)]
            result = tuple(sorted(chosen))
            if result != tuple(avoid):
                return result

    def finish(self, attempt_id: int, early: int | None = None) -> None:
        reply = self.fetch(
            "POST", f"/attempts/{attempt_id}/finish", {"csrf_token": self.csrf}
        )
        if reply is None or reply.status != 302 or "/results" not in reply.location:
            self.surprise(f"finish {attempt_id}", reply)
            return
        self.ledger.finished.add(attempt_id)
        self.fetch("GET", reply.location)
        if early is not None and self.rng.random() < ANSWER_AFTER_FINISH:
            # Too late: refused, and nothing may be stored.
            url = f"/attempts/{attempt_id}/questions/{early}"
            form = {"choice": "1", "csrf_token": self.csrf}
            reply = self.fetch("POST", url, form)
            if reply is not None and reply.status == 409:
                self.ledger.refused += 1
            else:
                self.surprise(f"answer after finish {attempt_id}", reply)


# --- one run ------------------------------------------------------------------------


def run(kind: str, args) -> bool:
    data = ensure_dataset(Dataset(kind, 1_000, 10_000, label="load"), fresh=True)
    tag = secrets.token_hex(3)
    env = flask_env(data.url, QUIZ_RATELIMIT_GUESTS="100000 per hour")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"\n{kind} (database {data.name}, players 'Load {tag} n', seed {seed})")
    with gunicorn("quiz:create_app()", env) as server:
        workers = server.worker_pids()
        server_cpu = cpu_seconds(workers)
        client_cpu = time.process_time()
        started = time.monotonic()
        deadline = started + args.seconds
        players = [
            Player(server.port, f"Load {tag} {n}", deadline, seed + n)
            for n in range(1, args.connections + 1)
        ]
        for player in players:
            player.start()
        for player in players:
            player.join()
        elapsed = time.monotonic() - started
        client_cpu = time.process_time() - client_cpu
        server_cpu = cpu_seconds(workers) - server_cpu
        log_path = server.log_path
    ledgers = [p.ledger for p in players]
    traffic = _traffic(ledgers, elapsed, client_cpu, server_cpu)
    checks = verify(data.url, f"Load {tag} ", ledgers)
    logged = Path(log_path).read_text(errors="replace").count("Traceback")
    print(traffic)
    print(checks.report())
    print(f"server tracebacks logged: {logged} ({log_path})")
    problems = checks.problems + sum(
        len(x.server_errors) + len(x.errors) for x in ledgers
    )
    for ledger in ledgers:
        for line in (ledger.server_errors + ledger.errors)[:3]:
            print(f"  failed: {line}")
        for line in ledger.surprises[:3]:
            print(f"  note: {line}")
    print("result:", "OK" if problems == 0 else "FAILED")
    return problems == 0


def _traffic(ledgers: list[Ledger], elapsed: float, client_cpu, server_cpu) -> str:
    statuses = sum((x.statuses for x in ledgers), Counter())
    requests = sum(x.requests for x in ledgers)
    seconds = sorted(s for x in ledgers for s in x.seconds)
    p50 = statistics.median(seconds) * 1000 if seconds else 0.0
    p99 = seconds[int(len(seconds) * 0.99)] * 1000 if seconds else 0.0
    by_status = "  ".join(f"{code} {n:,}" for code, n in sorted(statuses.items()))
    server_5xx = sum(len(x.server_errors) for x in ledgers)
    errors = sum(len(x.errors) for x in ledgers)
    timeouts = sum(x.timeouts for x in ledgers)
    acknowledged = sum(len(x.answers) for x in ledgers)
    lines = [
        (
            f"requests        {requests:,} in {elapsed:.1f} s = "
            f"{requests / elapsed:,.0f} req/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms"
        ),
        f"  by status     {by_status}",
        (
            f"  5xx {server_5xx}, errors {errors} (timeouts {timeouts}), other "
            f"unexpected replies {sum(len(x.surprises) for x in ledgers)}"
        ),
        (
            f"  CPU: gunicorn workers {server_cpu / elapsed:.2f} cores, "
            f"load generator {client_cpu / elapsed:.2f} cores"
        ),
        (
            f"answers sent    {sum(x.answers_sent for x in ledgers):,}; "
            f"acknowledged {acknowledged:,} (+ replays "
            f"{sum(x.replays for x in ledgers):,}, double submits "
            f"{sum(x.double_submits for x in ledgers):,}, refused after finish "
            f"{sum(x.refused for x in ledgers):,})"
        ),
        (
            f"attempts        started {sum(len(x.started) for x in ledgers):,}, "
            f"seen finished {sum(len(x.finished) for x in ledgers):,}"
        ),
    ]
    return "\n".join(lines)


# --- comparing with the database -----------------------------------------------------


@dataclass
class Checks:
    rows: int = 0
    missing: int = 0
    wrong_choice: int = 0
    unexpected: int = 0
    duplicated: int = 0
    attempts: int = 0
    finished: int = 0
    not_finished: int = 0
    wrong_score: int = 0
    bests: int = 0
    wrong_best: int = 0
    totals: int = 0
    wrong_total: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return (
            self.missing
            + self.wrong_choice
            + self.unexpected
            + self.duplicated
            + self.not_finished
            + self.wrong_score
            + self.wrong_best
            + self.wrong_total
        )

    def note(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)

    def report(self) -> str:
        lines = [
            (
                f"response rows   {self.rows:,} found; missing {self.missing}, "
                f"wrong choice {self.wrong_choice}, unexpected {self.unexpected}, "
                f"duplicated {self.duplicated}"
            ),
            (
                f"attempts        {self.attempts:,} in the database, "
                f"{self.finished:,} finished; seen finished but open "
                f"{self.not_finished}, score not the sum of its points "
                f"{self.wrong_score}"
            ),
            (
                f"best scores     {self.bests:,} rows; disagreeing with the attempts "
                f"{self.wrong_best}"
            ),
            (
                f"player totals   {self.totals:,} rows; not the sum of the best "
                f"scores {self.wrong_total}"
            ),
        ]
        lines += [f"  mismatch: {example}" for example in self.examples]
        return "\n".join(lines)


def verify(url: str, name_prefix: str, ledgers: list[Ledger]) -> Checks:
    """Compare the ledgers with the database: responses, attempts, best scores."""
    from quiz.models import Attempt, BestScore, PlayerTotal, Response, User

    acknowledged = {k: v for x in ledgers for k, v in x.answers.items()}
    seen_finished = set().union(*(x.finished for x in ledgers))
    failed = set().union(*(x.failed_answers for x in ledgers))
    checks = Checks()
    engine = sa.create_engine(url)
    users = sa.select(User.id).where(User.display_name.startswith(name_prefix))
    attempt_ids = sa.select(Attempt.id).where(Attempt.user_id.in_(users))
    with engine.connect() as conn:
        responses = conn.execute(
            sa.select(
                Response.attempt_id, Response.position, Response.chosen, Response.points
            ).where(Response.attempt_id.in_(attempt_ids))
        ).all()
        attempts = conn.execute(
            sa.select(
                Attempt.id,
                Attempt.user_id,
                Attempt.quiz_id,
                Attempt.finished_at,
                Attempt.score,
                Attempt.duration_ms,
            ).where(Attempt.user_id.in_(users))
        ).all()
        bests = conn.execute(
            sa.select(
                BestScore.quiz_id,
                BestScore.user_id,
                BestScore.attempt_id,
                BestScore.score,
                BestScore.duration_ms,
                BestScore.finished_at,
            ).where(BestScore.user_id.in_(users))
        ).all()
        totals = conn.execute(
            sa.select(
                PlayerTotal.user_id, PlayerTotal.score, PlayerTotal.quizzes
            ).where(PlayerTotal.user_id.in_(users))
        ).all()
    engine.dispose()

    # Responses: exactly the acknowledged answers, once each, with the first choice.
    checks.rows = len(responses)
    stored = defaultdict(list)
    points = defaultdict(float)
    for row in responses:
        stored[(row.attempt_id, row.position)].append(tuple(sorted(row.chosen)))
        points[row.attempt_id] += row.points
    for key, rows in stored.items():
        if len(rows) > 1:
            checks.duplicated += len(rows) - 1
            checks.note(f"attempt {key[0]} question {key[1]}: {len(rows)} rows")
        if key not in acknowledged:
            checks.unexpected += 1
            after = " after a failed request" if key in failed else ""
            checks.note(f"attempt {key[0]} question {key[1]}: not acknowledged{after}")
    for key, chosen in acknowledged.items():
        if key not in stored:
            checks.missing += 1
            checks.note(f"attempt {key[0]} question {key[1]}: acknowledged, no row")
        elif stored[key][0] != chosen:
            checks.wrong_choice += 1
            checks.note(
                f"attempt {key[0]} question {key[1]}: chose {chosen}, "
                f"stored {stored[key][0]}"
            )

    # Attempts: finished when seen finished; the score is the sum of the points.
    checks.attempts = len(attempts)
    finished_in_db = {a.id: a for a in attempts if a.finished_at is not None}
    checks.finished = len(finished_in_db)
    for attempt_id in seen_finished - finished_in_db.keys():
        checks.not_finished += 1
        checks.note(f"attempt {attempt_id}: finished for the client, open in the db")
    for attempt in finished_in_db.values():
        if abs(attempt.score - round(points[attempt.id], 4)) > 1e-6:
            checks.wrong_score += 1
            checks.note(
                f"attempt {attempt.id}: score {attempt.score}, points sum "
                f"{points[attempt.id]}"
            )

    # Best scores: each player's best finished attempt per quiz; totals their sum.
    best_of: dict[tuple[int, int], tuple] = {}
    for a in finished_in_db.values():
        key = (-a.score, a.duration_ms, a.finished_at)
        place = (a.quiz_id, a.user_id)
        if place not in best_of or key < best_of[place]:
            best_of[place] = key
    checks.bests = len(bests)
    recorded = {(b.quiz_id, b.user_id): b for b in bests}
    for place in best_of.keys() | recorded.keys():
        best = recorded.get(place)
        expected = best_of.get(place)
        got = best and (-best.score, best.duration_ms, best.finished_at)
        attempt = best and finished_in_db.get(best.attempt_id)
        if (
            got != expected
            or attempt is None
            or (-attempt.score, attempt.duration_ms, attempt.finished_at) != got
        ):
            checks.wrong_best += 1
            checks.note(
                f"best of user {place[1]} on quiz {place[0]}: {got} != {expected}"
            )
    per_user = defaultdict(list)
    for b in bests:
        per_user[b.user_id].append(b.score)
    checks.totals = len(totals)
    by_user = {t.user_id: t for t in totals}
    for user_id in per_user.keys() | by_user.keys():
        total = by_user.get(user_id)
        scores = per_user.get(user_id, [])
        if (
            total is None
            or abs(total.score - round(sum(scores), 4)) > 1e-6
            or total.quizzes != len(scores)
        ):
            checks.wrong_total += 1
            checks.note(f"total of user {user_id}: {total} vs best scores {scores}")
    return checks


if __name__ == "__main__":
    main()
