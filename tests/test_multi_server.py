"""Two app servers against one PostgreSQL and one Redis behave as one app.

Two gunicorn servers (two workers each) listen on different loopback ports, in front
of a database built by the real migrations, bank loader and ``users create``, and
share one Redis for rate-limit counts. Plain HTTP clients drive them, one cookie jar
per person for both servers, as a browser behind a load balancer would be. Proves:

- an attempt started on one server continues and finishes on the other, and its
  results show on the first;
- failed sign-ins for one account count towards one limit across both servers;
- both servers show the same leaderboards, with the new entry on both;
- signing out on one server ends the account's sessions on the other.

Needs QUIZ_TEST_DATABASE_URL pointing at PostgreSQL (its public schema is dropped
and recreated) and QUIZ_TEST_REDIS_URL (that Redis database is flushed).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.client import HTTPMessage
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa
from limits import parse

from quiz import config
from tests.conftest import POSTGRES_URL, requires_postgres
from tests.test_redis import REDIS_URL
from tests.test_redis import pytestmark as requires_redis

pytestmark = [requires_postgres, requires_redis]

BIN = Path(sys.executable).parent
SECRET_KEY = "multi-server-test-secret-" + "k" * 32
QUIZ = "snowden-procurement"  # no time limit: nothing expires mid-test
PASSWORD = "correct horse battery staple"
PLAYER = "player@example.org"
TARGET = "target@example.org"  # the account whose sign-ins are throttled
HTTP_TIMEOUT = 15
STARTUP_TIMEOUT = 30


# --- the shared database and Redis ------------------------------------------------


def _reset_schema() -> None:
    """Drop everything in the test database's public schema (as conftest does)."""
    engine = sa.create_engine(config.normalise_database_url(POSTGRES_URL))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def _app_env() -> dict[str, str]:
    """The settings both servers and the command line run with; nothing else from
    the caller's QUIZ_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIZ_")}
    env.update(
        QUIZ_ENV="development",  # production cookies are Secure: HTTPS only
        QUIZ_SECRET_KEY=SECRET_KEY,
        QUIZ_DATABASE_URL=POSTGRES_URL,
        QUIZ_RATELIMIT_STORAGE_URI=REDIS_URL,
    )
    return env


def _flask(*args: str, stdin: str | None = None) -> str:
    """Run ``flask --app quiz ...`` as an operator would; return its output."""
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "quiz", *args],
        check=False,  # the assertion below shows the output
        input=stdin,
        capture_output=True,
        text=True,
        env=_app_env(),
        cwd=config.PROJECT_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, (
        f"flask {' '.join(args)} exited {done.returncode}:\n"
        f"{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def shared_stores():
    """A database built by the real migrations, banks and accounts; an empty Redis.

    Both are left empty afterwards: the rest of the suite shares them.
    """
    _reset_schema()
    _flush_redis()
    try:
        _flask("db", "upgrade")
        _flask("banks", "load")
        for email, name in [(PLAYER, "Pat Player"), (TARGET, "Tara Target")]:
            _flask(
                "users",
                "create",
                "--email",
                email,
                "--name",
                name,
                "--password-stdin",
                stdin=PASSWORD + "\n",
            )
        yield
    finally:
        _flush_redis()
        _reset_schema()


# --- the two app servers ----------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(name: str, log: Path) -> Server:
    port = _free_port()
    gunicorn = BIN / "gunicorn"
    assert gunicorn.exists(), f"{gunicorn} is missing: pip install -e . (setup.cfg)"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(gunicorn),
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
                # Each server would otherwise take over the one default control
                # socket (~/.gunicorn/gunicorn.ctl).
                "--no-control-socket",
                "quiz:create_app()",
            ],
            env=_app_env(),
            cwd=config.PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Server(name, port, process, log)


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(server.url + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(
        f"server {server.name} on port {server.port} did not answer "
        f"(exit code {server.process.poll()}):\n{server.output()}"
    )


def _stop(servers: list[Server]) -> None:
    """Stop the servers (gracefully, then by force after 15 seconds)."""
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module")
def servers(shared_stores, tmp_path_factory) -> tuple[Server, Server]:
    """Server A and server B, both serving and both stopped afterwards."""
    logs = tmp_path_factory.mktemp("servers")
    started: list[Server] = []
    try:
        for name in ("A", "B"):
            started.append(_start_server(name, logs / f"{name}.log"))
        for server in started:
            _wait_until_serving(server)
        yield started[0], started[1]
    finally:
        _stop(started)


# --- a browser: one cookie jar for every server --------------------------------------


class _PageParser(HTMLParser):
    """Inputs, the progress bar and leaderboard rows of one page."""

    def __init__(self):
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.progress: dict[str, str | None] = {}
        self.rows: list[list[str]] = []
        self._in_board = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input":
            self.inputs.append(attributes)
        elif tag == "progress":
            self.progress = attributes
        elif tag == "table" and "board" in (attributes.get("class") or "").split():
            self._in_board = True
        elif self._in_board and tag == "tr":
            self.rows.append([])
        elif self._in_board and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_board = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@dataclass
class Page:
    status: int
    url: str
    headers: HTTPMessage
    html: str
    _parsed: _PageParser | None = field(default=None, repr=False)

    @property
    def parsed(self) -> _PageParser:
        if self._parsed is None:
            self._parsed = _PageParser()
            self._parsed.feed(self.html)
        return self._parsed

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def port(self) -> int | None:
        return urlsplit(self.url).port

    def csrf_token(self) -> str:
        tokens = [
            i["value"] for i in self.parsed.inputs if i.get("name") == "csrf_token"
        ]
        assert tokens, f"no form with a CSRF token on {self.url}"
        return tokens[0]

    def choices(self) -> list[str]:
        return [i["value"] for i in self.parsed.inputs if i.get("name") == "choice"]

    def answered(self) -> tuple[int, int]:
        """The progress bar: (questions answered, questions in the attempt)."""
        progress = self.parsed.progress
        return int(progress["value"]), int(progress["max"])

    def board(self) -> list[list[str]]:
        """Leaderboard rows: rank, player, score, ..., as the table shows them."""
        return [row for row in self.parsed.rows if row]

    def points(self) -> float:
        """Points the answer on this question page earned."""
        found = re.search(r'class="points">([\d.]+) of [\d.]+ point', self.html)
        assert found, f"no points shown on {self.url}"
        return float(found.group(1))

    def score(self) -> float:
        """The score on a results page."""
        found = re.search(r"<dt>Score</dt><dd>([\d.]+) / [\d.]+</dd>", self.html)
        assert found, f"no score shown on {self.url}"
        return float(found.group(1))


class Browser:
    """One person's browser: its cookies go to every server on 127.0.0.1."""

    def __init__(self, jar: CookieJar | None = None):
        self.jar = jar if jar is not None else CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar)
        )

    def get(self, url: str) -> Page:
        return self._open(urllib.request.Request(url))

    def post(self, url: str, fields: dict) -> Page:
        data = urlencode(fields, doseq=True).encode()
        return self._open(urllib.request.Request(url, data=data, method="POST"))

    def copy(self) -> Browser:
        """Another browser holding the same cookies as this one does now."""
        jar = CookieJar()
        for cookie in self.jar:
            jar.set_cookie(cookie)
        return Browser(jar)

    def cookies(self) -> dict[str, Cookie]:
        return {cookie.name: cookie for cookie in self.jar}

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self._opener.open(request, timeout=HTTP_TIMEOUT) as response:
                body = response.read().decode()
                return Page(response.status, response.geturl(), response.headers, body)
        except HTTPError as error:
            with error:
                body = error.read().decode()
                return Page(error.code, error.geturl(), error.headers, body)


def _sign_in(browser: Browser, server: Server, email: str, password: str) -> Page:
    form = browser.get(server.url + "/auth/login")
    return browser.post(
        server.url + "/auth/login",
        {"csrf_token": form.csrf_token(), "email": email, "password": password},
    )


def _is_signed_in(browser: Browser, server: Server) -> bool:
    page = browser.get(server.url + "/auth/account")
    assert page.status == 200, page.html
    return page.path == "/auth/account"  # otherwise sent to the sign-in page


def _plays_signed_in(browser: Browser, server: Server) -> bool:
    """Whether the catalogue shows the account signed in: a play page, which checks
    the session against the player's row as the server keeps it (quiz.changes)."""
    page = browser.get(server.url + "/")
    assert page.status == 200, page.html
    return "Sign out" in page.html


def _start_quiz(browser: Browser, server: Server) -> Page:
    """Start an attempt; the page is its first question."""
    quiz = browser.get(f"{server.url}/quizzes/{QUIZ}")
    assert quiz.status == 200, quiz.html
    return browser.post(
        f"{server.url}/quizzes/{QUIZ}/start", {"csrf_token": quiz.csrf_token()}
    )


def _answer(browser: Browser, server: Server, question: Page) -> Page:
    """Answer the question page with its first choice, on ``server``; the page that
    comes back shows the feedback."""
    return browser.post(
        server.url + question.path,
        {"csrf_token": question.csrf_token(), "choice": question.choices()[0]},
    )


def _attempt_id(page: Page) -> int:
    found = re.match(r"/attempts/(\d+)/", page.path)
    assert found, f"not an attempt page: {page.url}"
    return int(found.group(1))


def _soon(check, within: float = 5.0) -> bool:
    """Whether ``check()`` holds now or within ``within`` seconds: for what one
    server learns of the other's commits from PostgreSQL's notifications."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- the tests ----------------------------------------------------------------------


def test_an_attempt_continues_and_finishes_on_the_other_server(servers):
    a, b = servers
    browser = Browser()

    signed_in = _sign_in(browser, a, PLAYER, PASSWORD)
    assert signed_in.status == 200 and signed_in.port == a.port
    assert "Signed in as Pat Player" in signed_in.html
    # Cookies belong to the host, not the port: the session A set is sent to B too.
    session = browser.cookies()["session"]
    assert session.domain == "127.0.0.1" and session.port is None
    assert _is_signed_in(browser, b)

    first = _start_quiz(browser, a)
    assert first.status == 200 and first.port == a.port
    assert first.path.endswith("/questions/1"), first.url
    attempt = _attempt_id(first)
    answered, total = first.answered()
    assert answered == 0 and total > 2

    feedback_1 = _answer(browser, a, first)
    assert feedback_1.status == 200 and feedback_1.port == a.port
    assert feedback_1.path == f"/attempts/{attempt}/questions/1"
    assert feedback_1.answered() == (1, total)

    # B resumes the attempt at the first unanswered question.
    resumed = browser.get(f"{b.url}/attempts/{attempt}")
    assert resumed.status == 200 and resumed.port == b.port
    assert resumed.path == f"/attempts/{attempt}/questions/2"
    assert resumed.answered() == (1, total)

    feedback_2 = _answer(browser, b, resumed)
    assert feedback_2.status == 200 and feedback_2.port == b.port
    assert feedback_2.path == f"/attempts/{attempt}/questions/2"
    assert feedback_2.answered() == (2, total)
    assert f"Question 2 of {total}" in feedback_2.html

    # A shows B's answer at once; its "finish now" form is accepted by B (both
    # servers sign sessions and CSRF tokens with the same key).
    on_a = browser.get(f"{a.url}/attempts/{attempt}/questions/2")
    assert on_a.answered() == (2, total) and on_a.points() == feedback_2.points()
    finished = browser.post(
        f"{b.url}/attempts/{attempt}/finish", {"csrf_token": on_a.csrf_token()}
    )
    assert finished.status == 200 and finished.port == b.port
    assert finished.path == f"/attempts/{attempt}/results"

    results = browser.get(f"{a.url}/attempts/{attempt}/results")
    assert results.status == 200 and results.path == f"/attempts/{attempt}/results"
    assert results.score() == pytest.approx(
        feedback_1.points() + feedback_2.points(), abs=0.01
    )
    assert results.html.count("Not answered, so the answer stays hidden") == total - 2
    assert "Your rank" in results.html


def test_failed_sign_ins_count_towards_one_limit_across_servers(servers):
    a, b = servers
    # The servers run with the default limit (no QUIZ_RATELIMIT_* in _app_env).
    limit = parse(config.defaults("")["RATELIMIT_SIGNIN_ACCOUNT"]).amount
    attacker = Browser()
    alternating = [servers[i % 2] for i in range(limit)]

    for server in alternating:
        page = _sign_in(attacker, server, TARGET, "not the password")
        assert page.status == 200, f"refused early on {server.name}"
        assert "The e-mail address or password is not right." in page.html

    # Each server has seen only about half the failures, yet both refuse now, even
    # the right password: the limit counts the account's attempts on both together.
    for server in (b, a):
        for password in ("not the password", PASSWORD):
            refused = _sign_in(attacker, server, TARGET, password)
            assert refused.status == 429, f"{server.name} allowed another attempt"
            assert int(refused.headers["Retry-After"]) > 0
    assert not _is_signed_in(attacker, a)


def test_both_servers_show_the_same_leaderboards(servers):
    a, b = servers
    browser = Browser()
    guest = browser.get(b.url + "/guest")
    welcome = browser.post(
        b.url + "/guest",
        {"csrf_token": guest.csrf_token(), "display_name": "Gus Guest"},
    )
    assert welcome.status == 200 and "Welcome, Gus Guest" in welcome.html
    first = _start_quiz(browser, b)
    attempt = _attempt_id(first)
    _answer(browser, a, first)
    # Both servers' workers cache the board as it is before the finish; the finish
    # on A must make every one of those copies stale.
    for server in (a, b):
        for _ in range(4):
            page = browser.get(f"{server.url}/quizzes/{QUIZ}/leaderboard")
            assert not any("Gus Guest" in row[1] for row in page.board())
    finished = browser.post(
        f"{a.url}/attempts/{attempt}/finish", {"csrf_token": first.csrf_token()}
    )
    assert finished.path == f"/attempts/{attempt}/results"

    # B hears of the finish from PostgreSQL (quiz.changes): within milliseconds.
    for board in (f"/quizzes/{QUIZ}/leaderboard", "/leaderboard"):
        for period in ("all", "week"):

            def agree(board=board, period=period):
                on_a = browser.get(f"{a.url}{board}?period={period}")
                on_b = browser.get(f"{b.url}{board}?period={period}")
                assert on_a.status == on_b.status == 200
                players = [row[1] for row in on_a.board()]
                assert "Gus Guest you" in players, f"{board}?{period}: {players}"
                return on_a.board() == on_b.board()

            assert _soon(agree), f"{board}?period={period} differs"


def test_signing_out_on_one_server_ends_the_session_on_the_other(servers):
    a, b = servers
    laptop, phone = Browser(), Browser()
    assert _sign_in(laptop, a, PLAYER, PASSWORD).status == 200
    assert _sign_in(phone, b, PLAYER, PASSWORD).status == 200
    assert _is_signed_in(laptop, b) and _is_signed_in(phone, a)
    # Both servers' workers keep the account's row for the catalogue.
    for _ in range(4):
        assert _plays_signed_in(phone, a) and _plays_signed_in(phone, b)
    old_laptop_cookies = laptop.copy()

    home = laptop.get(b.url + "/")
    signed_out = laptop.post(b.url + "/auth/logout", {"csrf_token": home.csrf_token()})
    assert "You are signed out on every device." in signed_out.html

    # The account's session token changed in the database both servers read; A
    # hears of it from PostgreSQL (quiz.changes) within milliseconds.
    assert _soon(lambda: not _plays_signed_in(phone, a))
    assert _soon(lambda: not _plays_signed_in(phone, b))  # and B's other worker
    assert not _is_signed_in(phone, a)
    assert not _is_signed_in(phone, b)
    assert not _is_signed_in(old_laptop_cookies, a)
