"""Demonstration data: many players and finished attempts, written in bulk.

For trying the app at the size of a large organisation and for the benchmarks in
``bench/``. Players are new rows (accounts without a password, so nobody can sign in
as them, and guests); attempts are finished ones spread over the published quizzes
and the last ``days`` days. Each attempt carries the maximum score every real
attempt of its quiz has (the fair draw), a score, a duration and a pass flag, but
no per-question answers. Best scores and overall totals are computed from the same
attempts, so the leaderboards are exactly what playing them would have produced.

Rows go in with PostgreSQL's ``COPY`` or SQLite's ``executemany`` in batches, in the
caller's transaction: the caller commits, and a failure leaves the database as it
was.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain, islice
from typing import NamedTuple

import sqlalchemy as sa

from . import leaderboard, scoring
from .attempts import fair_quota
from .extensions import db
from .models import (
    Attempt,
    BestScore,
    PlayerTotal,
    Question,
    QuestionRevision,
    Quiz,
    User,
    utcnow,
)

BATCH = 10_000
NO_PASSWORD = None  # demo accounts cannot sign in
FIRST_NAMES = [
    "Ada",
    "Alan",
    "Amara",
    "Anil",
    "Aoife",
    "Ben",
    "Carmen",
    "Chen",
    "Dana",
    "Dmitri",
    "Elif",
    "Emeka",
    "Eva",
    "Farah",
    "Grace",
    "Hana",
    "Ines",
    "Ivan",
    "Jia",
    "Jonas",
    "Kai",
    "Kofi",
    "Lea",
    "Lina",
    "Luis",
    "Mara",
    "Mei",
    "Nadia",
    "Noor",
    "Omar",
    "Pablo",
    "Priya",
    "Quinn",
    "Rafael",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Uma",
    "Vera",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]


class DemoDataError(RuntimeError):
    """The database cannot take demo data (no quizzes to play, say)."""


@dataclass(frozen=True)
class QuizShape:
    id: int
    max_score: float
    pass_mark: int


@dataclass(frozen=True)
class Filled:
    players: int
    attempts: int
    best_scores: int
    totals: int


def quiz_shapes() -> list[QuizShape]:
    """The published quizzes with questions, and the maximum an attempt of each has."""
    shapes = []
    quizzes = db.session.scalars(
        sa.select(Quiz).where(Quiz.is_published.is_(True)).order_by(Quiz.id)
    )
    for quiz in quizzes:
        points = db.session.scalars(
            sa.select(QuestionRevision.points)
            .join(Question, Question.id == QuestionRevision.question_id)
            .where(
                Question.quiz_id == quiz.id,
                Question.is_archived.is_(False),
                QuestionRevision.number == Question.revision,
            )
            .order_by(Question.position)
        ).all()
        if not points:
            continue
        count = min(quiz.questions_per_attempt or len(points), len(points))
        if quiz.shuffle:
            revisions = [_Points(p) for p in points]
            quota = fair_quota(revisions, count)
            top = sum(p * n for p, n in quota.items())
        else:
            top = sum(points[:count])
        shapes.append(QuizShape(quiz.id, float(top), quiz.pass_mark))
    return shapes


@dataclass(frozen=True)
class _Points:
    """Stands in for a revision where only its points matter (``fair_quota``)."""

    points: int


def fill(
    players: int, attempts: int, *, days: int = 60, seed: int | None = None
) -> Filled:
    """Add ``players`` new players and ``attempts`` finished attempts among them."""
    if players < 1 or attempts < 0:
        raise DemoDataError("Give at least one player and no negative attempts.")
    shapes = quiz_shapes()
    if not shapes:
        raise DemoDataError(
            "No published quiz has questions: load the banks first "
            "(flask --app quiz banks load)."
        )
    # Made-up data, repeatable by seed: no secret comes from this generator.
    rng = random.Random(seed)  # nosec B311
    now = utcnow().replace(microsecond=0)
    writer = _writer()
    # Locks in the order a finish takes them: its attempt, then the quiz rows (in id
    # order, as in leaderboard.py). The raised versions make servers drop the boards
    # they cached.
    first_user = writer.reserve_ids(User, players)
    first_attempt = writer.reserve_ids(Attempt, attempts)
    db.session.execute(
        sa.update(Quiz)
        .where(Quiz.id.in_(sorted(shape.id for shape in shapes)))
        .values(board_version=Quiz.board_version + 1, updated_at=Quiz.updated_at)
    )
    user_ids = range(first_user, first_user + players)
    writer.write(User, _users(user_ids, rng, now, days))
    bests: dict[tuple[int, int], _Best] = {}
    writer.write(
        Attempt,
        _attempts(first_attempt, attempts, user_ids, shapes, rng, now, days, bests),
    )
    writer.write(BestScore, _best_rows(bests))
    leaderboard.add_tallies(list(_tallies(bests)))
    totals = _totals(bests)
    writer.write(PlayerTotal, totals)
    return Filled(players, attempts, len(bests), len(totals))


def _users(ids: range, rng: random.Random, now: datetime, days: int) -> Iterator[dict]:
    for user_id in ids:
        name = f"{rng.choice(FIRST_NAMES)} {chr(65 + rng.randrange(26))}. #{user_id}"
        guest = rng.random() < 0.3
        yield {
            "id": user_id,
            "display_name": name,
            "email": None if guest else f"player{user_id}@demo.invalid",
            "password_hash": NO_PASSWORD,
            "role": "player",
            "is_guest": guest,
            "is_disabled": False,
            "session_token": secrets.token_hex(16),
            "created_at": now - timedelta(days=days + 1, seconds=rng.randrange(86400)),
            "last_login_at": None,
        }


def _attempts(first_id, count, user_ids, shapes, rng, now, days, bests):
    """Finished attempts; records each player's best per quiz in ``bests``."""
    span = days * 86400
    for attempt_id in range(first_id, first_id + count):
        # A few keen players play a lot, most play a little.
        user_id = user_ids[int(len(user_ids) * rng.random() ** 2)]
        shape = rng.choice(shapes)
        score = round(shape.max_score * rng.betavariate(5, 2) * 4) / 4
        duration_ms = rng.randrange(20_000, 900_000)
        finished = now - timedelta(seconds=rng.randrange(span))
        row = {
            "id": attempt_id,
            "user_id": user_id,
            "quiz_id": shape.id,
            "started_at": finished - timedelta(milliseconds=duration_ms),
            "deadline": None,
            "finished_at": finished,
            "score": score,
            "max_score": shape.max_score,
            "duration_ms": duration_ms,
            "pass_mark": shape.pass_mark,
            "passed": scoring.has_passed(score, shape.max_score, shape.pass_mark),
        }
        key = (shape.id, user_id)
        rank = (-score, duration_ms, finished)
        if key not in bests or rank < bests[key].rank:
            bests[key] = _Best(rank, attempt_id, score, shape.max_score)
        yield row


class _Best(NamedTuple):
    """A player's best attempt at a quiz so far: ``rank`` sorts best first."""

    rank: tuple
    attempt_id: int
    score: float
    max_score: float

    @property
    def duration_ms(self) -> int:
        return self.rank[1]

    @property
    def finished_at(self) -> datetime:
        return self.rank[2]


def _best_rows(bests: dict) -> Iterator[dict]:
    for (quiz_id, user_id), best in bests.items():
        yield {
            "quiz_id": quiz_id,
            "user_id": user_id,
            "attempt_id": best.attempt_id,
            "score": best.score,
            "max_score": best.max_score,
            "duration_ms": best.duration_ms,
            "finished_at": best.finished_at,
        }


def _tallies(bests: dict) -> Iterator[dict]:
    """How many players have each best score on each quiz."""
    counts = Counter((quiz_id, best.score) for (quiz_id, _), best in bests.items())
    for (quiz_id, score), players in counts.items():
        yield {"quiz_id": quiz_id, "score": score, "players": players}


def _totals(bests: dict) -> list[dict]:
    """Each player's sum of best scores; the total last improved at the latest best."""
    totals: dict[int, dict] = {}
    for (_, user_id), best in bests.items():
        total = totals.setdefault(
            user_id,
            {
                "user_id": user_id,
                "score": 0.0,
                "duration_ms": 0,
                "quizzes": 0,
                "finished_at": best.finished_at,
            },
        )
        total["score"] += best.score
        total["duration_ms"] += best.duration_ms
        total["quizzes"] += 1
        total["finished_at"] = max(total["finished_at"], best.finished_at)
    for total in totals.values():
        total["score"] = round(total["score"], 4)
    return list(totals.values())


def _batches(rows: Iterable[dict], size: int = BATCH) -> Iterator[list[dict]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _writer() -> _Writer:
    if db.session.get_bind().dialect.name == "postgresql":
        return _PostgresWriter()
    return _Writer()


class _Writer:
    """Batched inserts through SQLAlchemy Core, in the session's transaction (SQLite:
    begun with BEGIN IMMEDIATE, so no other writer runs until it ends)."""

    def reserve_ids(self, model, count: int) -> int:
        """The first of ``count`` unused ids for new rows of ``model``."""
        return (db.session.scalar(sa.select(sa.func.max(model.id))) or 0) + 1

    def write(self, model, rows: Iterable[dict]) -> None:
        table = model.__table__
        for batch in _batches(rows):
            db.session.execute(table.insert(), batch)


class _PostgresWriter(_Writer):
    """``COPY ... FROM STDIN`` on the session's connection."""

    def reserve_ids(self, model, count: int) -> int:
        """Take ``count`` ids from the table's sequence, under a lock that keeps
        other inserts out until the transaction ends (ids never collide)."""
        name = model.__tablename__
        db.session.execute(sa.text(f'LOCK TABLE "{name}" IN SHARE ROW EXCLUSIVE MODE'))
        sequence = sa.func.pg_get_serial_sequence(f'"{name}"', "id")
        after_rows = (db.session.scalar(sa.select(sa.func.max(model.id))) or 0) + 1
        first = max(db.session.scalar(sa.select(sa.func.nextval(sequence))), after_rows)
        if count:
            db.session.execute(sa.select(sa.func.setval(sequence, first + count - 1)))
        return first

    def write(self, model, rows: Iterable[dict]) -> None:
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return
        names = list(first)  # the columns given; others take their defaults
        columns = ", ".join(f'"{name}"' for name in names)
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            copy_sql = f'COPY "{model.__tablename__}" ({columns}) FROM STDIN'
            with cursor.copy(copy_sql) as copy:
                for row in chain([first], rows):
                    copy.write_row([_pg_value(row[name]) for name in names])


def _pg_value(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
