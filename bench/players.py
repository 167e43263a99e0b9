"""Players for the benchmarks, made through the app's own routes in this process.

Each player is a guest signed in through ``/guest`` with the test client of an app
that has the servers' secret key, so its session cookie and CSRF token are valid on
every server of the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.common import SECRET_KEY
from quiz import create_app
from quiz.extensions import db
from quiz.models import AttemptItem, Quiz

# Sent by the bench's clients (wrk scripts too): Flask-Login ties a session to the
# browser that signed in, and a different one would make every request rewrite it.
USER_AGENT = "quiz-bench"
ANSWER_LUA = Path(__file__).with_name("answer.lua")
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class Player:
    name: str
    cookie: str  # the Cookie header value
    csrf_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie, "User-Agent": USER_AGENT}


def local_app(url: str):
    """The app in this process, on the bench database, with rate limits off."""
    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET_KEY,
            "RATELIMIT_ENABLED": False,
        }
    )


def guest(app, name: str):
    """A signed-in guest: the test client and the ``Player`` it stands for."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = USER_AGENT
    page = client.get("/guest").get_data(as_text=True)
    token = CSRF.search(page).group(1)
    response = client.post("/guest", data={"display_name": name, "csrf_token": token})
    assert response.status_code == 302, response.status_code
    client.get("/")  # shows (and so clears) the welcome message kept in the session
    cookie = client.get_cookie("session")
    return client, Player(name, f"session={cookie.value}", token)


def published_slugs(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(
            sa.select(Quiz.slug).where(Quiz.is_published.is_(True)).order_by(Quiz.id)
        ).all()


def start(client, player: Player, slug: str) -> int:
    """Start (or resume) an attempt; return its id."""
    response = client.post(
        f"/quizzes/{slug}/start", data={"csrf_token": player.csrf_token}
    )
    assert response.status_code == 302, response.status_code
    return int(re.search(r"/attempts/(\d+)", response.headers["Location"]).group(1))


def first_choices(app, attempt_id: int) -> list[tuple[int, int]]:
    """(position, a choice id) for every question of an attempt."""
    with app.app_context():
        items = db.session.execute(
            sa.select(AttemptItem.position, AttemptItem.choice_order)
            .where(AttemptItem.attempt_id == attempt_id)
            .order_by(AttemptItem.position)
        ).all()
    return [(position, order[0]) for position, order in items]


def play_through(app, client, player: Player, slug: str) -> int:
    """Start, answer every question and finish an attempt; return its id."""
    attempt_id = start(client, player, slug)
    for position, choice in first_choices(app, attempt_id):
        client.post(
            f"/attempts/{attempt_id}/questions/{position}",
            data={"choice": choice, "csrf_token": player.csrf_token},
        )
    response = client.post(
        f"/attempts/{attempt_id}/finish", data={"csrf_token": player.csrf_token}
    )
    assert response.status_code == 302, response.status_code
    return attempt_id


# First answers to prepare per second of a run: more than the app answers, so that
# every request of the run is a first answer (a replay only reads).
ANSWERS_PER_SECOND = 2500


def open_answers(app, count: int) -> list[tuple[str, str, str]]:
    """At least ``count`` first answers to questions of real open attempts, as
    (path, cookie, form body): guests start every quiz and answer nothing yet.

    Ordered question 1 of every attempt, then question 2 of every attempt, and so on:
    requests in flight at once are different players' answers, as in real use,
    rather than one player's answers queueing for that attempt's row lock.
    """
    slugs = published_slugs(app)
    attempts = []
    total = 0
    while total < count:
        client, player = guest(app, f"Answer Bench {len(attempts)}")
        for slug in slugs:
            attempt_id = start(client, player, slug)
            answers = [
                (
                    f"/attempts/{attempt_id}/questions/{position}",
                    player.cookie,
                    f"choice={choice}&csrf_token={player.csrf_token}",
                )
                for position, choice in first_choices(app, attempt_id)
            ]
            attempts.append(answers)
            total += len(answers)
    longest = max(len(answers) for answers in attempts)
    return [
        answers[position]
        for position in range(longest)
        for answers in attempts
        if position < len(answers)
    ]


def answer_script(answers: list[tuple[str, str, str]], path: Path) -> Path:
    """A wrk script that posts each answer once (bench/answer.lua does the posting)."""
    table = "\n".join(
        f'{{"{target}", "{cookie}", "{body}"}},' for target, cookie, body in answers
    )
    path.write_text(f"answers = {{\n{table}\n}}\n" + ANSWER_LUA.read_text())
    return path
