"""Leaderboards: standings per quiz and overall, all time or the last 7 days.

A player's entry on a quiz board is their best finished attempt, ordered by:

1. higher score first,
2. then shorter duration,
3. then earlier finish,
4. then lower player id (so the order is total and pages never overlap).

The overall board sums each player's best score per quiz (and the durations of those
best attempts) and orders the totals the same way, the finish being the moment the
total last improved.

All-time boards read the ``best_score`` and ``player_total`` tables, which
``record_finished`` keeps up to date in the transaction that finishes an attempt, so
the top of a board and a player's rank are index look-ups. Last-7-days boards take
each player's best among the attempts finished in the window (an index range on
``attempt(quiz_id, finished_at)``), since a rolling window cannot be kept as a total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from . import scoring
from .cache import cached
from .extensions import db
from .models import Attempt, BestScore, PlayerTotal, Quiz, ScoreTally, User, utcnow
from .reads import HotRead, execute_core

PERIODS = ("all", "week")
# Sums of scores are rounded to the 4 decimals every stored score has, so that equal
# totals compare equal (SQLite's CAST alone does not round).
SCORE_SUM = sa.Numeric(14, 4, asdecimal=False)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Entry:
    rank: int
    user_id: int
    display_name: str
    score: float
    max_score: float
    duration_ms: int
    finished_at: datetime
    quizzes: int = 1

    @property
    def percentage(self) -> float:
        return scoring.percentage(self.score, self.max_score)


@dataclass(frozen=True)
class Board:
    entries: list[Entry]
    total: int
    page: int
    per_page: int
    me: Entry | None
    # Set on a cached all-time page: identifies these standings for caching more.
    key: tuple | None = None

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def me_on_page(self) -> bool:
        return self.me is not None and any(
            e.user_id == self.me.user_id for e in self.entries
        )


# --- bookkeeping when an attempt finishes -------------------------------------------
#
# In Core statements, not through the ORM: a finish is one answer in a handful, and
# loading and flushing objects cost several times the statements themselves. Nothing
# here goes through the ORM's identity map: flush what an attempt changed first.


@dataclass(frozen=True)
class Finished:
    """What the bookkeeping needs of a finished attempt (an ``Attempt`` has it too)."""

    id: int
    quiz_id: int
    user_id: int
    score: float
    max_score: float
    duration_ms: int
    finished_at: datetime


def record_finished(attempt: Finished | Attempt) -> bool:
    """Update the player's best score and overall total; return True for a new best.

    Call with the attempt's row already written (flushed) in this transaction."""
    _lock_board(attempt.quiz_id)
    best = _locked_best(attempt.quiz_id, attempt.user_id)
    if best is not None and _key(best) <= _key(attempt):
        return False
    _store_best(attempt.quiz_id, attempt.user_id, best, attempt)
    refresh_total(attempt.user_id, attempt.finished_at)
    return True


# Everything that changes a best score takes its locks in one order: the quiz row,
# then the best score, then its tallies, then the player's total. Two transactions
# on the same quiz (a finish and a guest handing over to the same account, say)
# therefore queue on the quiz row instead of deadlocking, and each reads the best
# score only once it holds the quiz.

# FOR NO KEY UPDATE on PostgreSQL: it queues board changes as FOR UPDATE would, but
# lets rows that only refer to the quiz be written meanwhile (an attempt started),
# which FOR UPDATE would hold up, and deadlock with if the holder then waits on them.
_LOCK_BOARD = HotRead(
    sa.select(Quiz.id)
    .where(Quiz.id == sa.bindparam("quiz_id"))
    .with_for_update(key_share=True)
)
_LOCKED_BEST = HotRead(
    sa.select(BestScore.score, BestScore.duration_ms, BestScore.finished_at)
    .where(
        BestScore.quiz_id == sa.bindparam("quiz_id"),
        BestScore.user_id == sa.bindparam("user_id"),
    )
    .with_for_update()
)
_quiz = Quiz.__table__
# The standings' version goes up; the quiz itself did not change (no updated_at).
_BOARD_CHANGED = (
    sa.update(_quiz)
    .where(_quiz.c.id == sa.bindparam("quiz_id"))
    .values(board_version=_quiz.c.board_version + 1, updated_at=_quiz.c.updated_at)
)
_best = BestScore.__table__
_DROP_BEST = sa.delete(_best).where(
    _best.c.quiz_id == sa.bindparam("quiz_id"),
    _best.c.user_id == sa.bindparam("user_id"),
)
_total = PlayerTotal.__table__
_user_bests = _best.c.user_id == sa.bindparam("player")
# A player's total, summed from their best scores (read once the total is locked).
_TOTAL_FROM_BESTS = (
    sa.update(_total)
    .where(_total.c.user_id == sa.bindparam("player"))
    .values(
        score=sa.select(
            sa.func.coalesce(
                sa.func.round(sa.cast(sa.func.sum(_best.c.score), SCORE_SUM), 4), 0
            )
        )
        .where(_user_bests)
        .scalar_subquery(),
        duration_ms=sa.select(sa.func.coalesce(sa.func.sum(_best.c.duration_ms), 0))
        .where(_user_bests)
        .scalar_subquery(),
        quizzes=sa.select(sa.func.count())
        .select_from(_best)
        .where(_user_bests)
        .scalar_subquery(),
        finished_at=sa.bindparam("improved_at"),
    )
)


def _upserts(insert) -> dict[str, sa.Insert]:
    """The INSERT ... ON CONFLICT statements, with one dialect's ``insert``."""
    tally = insert(ScoreTally)
    best = insert(BestScore)
    total = insert(PlayerTotal)
    return {
        "tally": tally.on_conflict_do_update(
            index_elements=[ScoreTally.quiz_id, ScoreTally.score],
            set_={"players": ScoreTally.players + tally.excluded.players},
        ),
        "best": best.on_conflict_do_update(
            index_elements=[BestScore.quiz_id, BestScore.user_id],
            set_={
                name: best.excluded[name]
                for name in (
                    "attempt_id",
                    "score",
                    "max_score",
                    "duration_ms",
                    "finished_at",
                )
            },
        ),
        # Creates the player's total or locks it; the figures follow, from the bests.
        "lock total": total.on_conflict_do_update(
            index_elements=[PlayerTotal.user_id],
            set_={"finished_at": total.excluded.finished_at},
        ),
    }


_UPSERTS = {
    "sqlite": _upserts(sqlite_dialect.insert),
    "postgresql": _upserts(postgresql.insert),
}


def _upsert(kind: str) -> sa.Insert:
    return _UPSERTS[db.session.get_bind().dialect.name][kind]


def _lock_board(quiz_id: int) -> None:
    """Lock the quiz's standings (its row) until the transaction ends."""
    _LOCK_BOARD.first(quiz_id=quiz_id)


def lock_boards(quiz_ids: Iterable[int]) -> None:
    """Lock several quizzes' standings up front, in quiz-id order: a transaction
    that changes more than one board takes them in that order, before any other
    lock the changes take."""
    for quiz_id in sorted(set(quiz_ids)):
        _lock_board(quiz_id)


def _locked_best(quiz_id: int, user_id: int):
    """The player's best on the quiz (score, duration_ms, finished_at), locked."""
    return _LOCKED_BEST.first(quiz_id=quiz_id, user_id=user_id)


def _store_best(quiz_id: int, user_id: int, best, attempt: Finished | Attempt) -> None:
    """Make ``attempt`` the player's best on the quiz in place of ``best`` (None: the
    first). The caller holds the quiz's lock and ``best``'s."""
    execute_core(_BOARD_CHANGED, {"quiz_id": quiz_id})
    if best is None or best.score != attempt.score:  # else the same tally stands
        changes = [{"quiz_id": quiz_id, "score": attempt.score, "players": 1}]
        if best is not None:
            changes.insert(0, {"quiz_id": quiz_id, "score": best.score, "players": -1})
        add_tallies(changes)
    execute_core(
        _upsert("best"),
        {
            "quiz_id": quiz_id,
            "user_id": user_id,
            "attempt_id": attempt.id,
            "score": attempt.score,
            "max_score": attempt.max_score,
            "duration_ms": attempt.duration_ms,
            "finished_at": attempt.finished_at,
        },
    )


def _drop_best(quiz_id: int, user_id: int, best) -> None:
    """Take the player's ``best`` off the quiz's board (its locks held)."""
    execute_core(_BOARD_CHANGED, {"quiz_id": quiz_id})
    add_tallies([{"quiz_id": quiz_id, "score": best.score, "players": -1}])
    execute_core(_DROP_BEST, {"quiz_id": quiz_id, "user_id": user_id})


def remove_bests(user_id: int) -> None:
    """Take a player off every quiz board (their attempts are moving elsewhere)."""
    db.session.flush()
    quiz_ids = db.session.scalars(
        sa.select(BestScore.quiz_id)
        .where(BestScore.user_id == user_id)
        .order_by(BestScore.quiz_id)
    ).all()
    for quiz_id in quiz_ids:
        _lock_board(quiz_id)
        best = _locked_best(quiz_id, user_id)
        if best is not None:
            _drop_best(quiz_id, user_id, best)


def add_tallies(rows: list[dict]) -> None:
    """Add ``players`` to the tally of each (``quiz_id``, ``score``)."""
    if rows:
        execute_core(_upsert("tally"), rows)


def refresh_total(user_id: int, improved_at: datetime) -> None:
    """Recompute a player's overall total from their best scores, under a row lock.

    Two statements: on PostgreSQL, a statement that waited for the lock still reads
    the best scores as they were when it began."""
    execute_core(
        _upsert("lock total"),
        {
            "user_id": user_id,
            "score": 0.0,
            "duration_ms": 0,
            "quizzes": 0,
            "finished_at": improved_at,
        },
    )
    execute_core(_TOTAL_FROM_BESTS, {"player": user_id, "improved_at": improved_at})


def _key(row) -> tuple:
    """Sort key of an attempt or best score: smaller is better."""
    return (-row.score, row.duration_ms, row.finished_at)


# --- reading boards -------------------------------------------------------------------


def quiz_board(
    quiz_id: int,
    *,
    period: str = "all",
    page: int = 1,
    per_page: int = 20,
    me_id: int | None = None,
    among: sa.Select | None = None,
    version: int | None = None,
) -> Board:
    """One page of a quiz's standings, plus the given player's own entry.

    ``among`` (a select of user ids) limits the board to those players, e.g. the
    members of a cohort; ordering and tie-breaks stay the same. Given the quiz's
    ``board_version``, the all-time board's page and ranks come from this process's
    cache while that version is current.
    """
    if period != "all" or among is not None:
        return _board(_quiz_source(quiz_id, period, among), page, per_page, me_id)
    tally = _QuizTally(quiz_id)
    if version is None:
        return _board(_quiz_source(quiz_id, "all"), page, per_page, me_id, tally)
    # Pages past the end show the last page: one cache entry for all of them.
    total = cached(("total", quiz_id, version), tally.total)
    page = min(max(1, page), max(1, math.ceil(total / per_page)))
    key = ("board", quiz_id, version, page, per_page)
    board = cached(
        key,
        lambda: replace(
            _board(_quiz_source(quiz_id, "all"), page, per_page, None, tally, total),
            key=key,
        ),
    )
    if me_id is None:
        return board
    me = next((e for e in board.entries if e.user_id == me_id), None)
    if me is None:
        me = cached(
            ("me", quiz_id, version, me_id),
            lambda: _my_entry(_quiz_source(quiz_id, "all"), me_id, tally),
        )
    return replace(board, me=me)


def overall_board(
    *, period: str = "all", page: int = 1, per_page: int = 20, me_id: int | None = None
) -> Board:
    """One page of the overall standings, plus the given player's own entry."""
    return _board(_overall_source(period), page, per_page, me_id)


def player_rank(quiz_id: int, user_id: int) -> Entry | None:
    """A player's all-time entry (with rank) on one quiz, or None if not ranked."""
    return _my_entry(_quiz_source(quiz_id, "all"), user_id, _QuizTally(quiz_id))


def _quiz_source(
    quiz_id: int, period: str, among: sa.Select | None = None
) -> sa.Subquery:
    if period == "all":
        statement = sa.select(
            BestScore.user_id,
            BestScore.score,
            BestScore.max_score,
            BestScore.duration_ms,
            BestScore.finished_at,
            sa.literal(1).label("quizzes"),
        ).where(BestScore.quiz_id == quiz_id)
        if among is not None:
            statement = statement.where(BestScore.user_id.in_(among))
        return statement.subquery("standings")
    condition = Attempt.quiz_id == quiz_id
    if among is not None:
        condition = sa.and_(condition, Attempt.user_id.in_(among))
    best = _week_bests(condition)
    return sa.select(
        best.c.user_id,
        best.c.score,
        best.c.max_score,
        best.c.duration_ms,
        best.c.finished_at,
        sa.literal(1).label("quizzes"),
    ).subquery("standings")


def _overall_source(period: str) -> sa.Subquery:
    if period == "all":
        return (
            sa.select(
                PlayerTotal.user_id,
                PlayerTotal.score,
                sa.literal(0.0).label("max_score"),
                PlayerTotal.duration_ms,
                PlayerTotal.finished_at,
                PlayerTotal.quizzes,
            )
            .where(PlayerTotal.quizzes > 0)
            .subquery("standings")
        )
    best = _week_bests(sa.true())
    return (
        sa.select(
            best.c.user_id,
            sa.type_coerce(
                sa.func.round(sa.cast(sa.func.sum(best.c.score), SCORE_SUM), 4),
                sa.Float,
            ).label("score"),
            sa.literal(0.0).label("max_score"),
            sa.func.sum(best.c.duration_ms).label("duration_ms"),
            sa.func.max(best.c.finished_at).label("finished_at"),
            sa.func.count().label("quizzes"),
        )
        .group_by(best.c.user_id)
        .subquery("standings")
    )


def _week_bests(condition) -> sa.Subquery:
    """Each player's best attempt per quiz among those finished in the last 7 days."""
    since = utcnow() - WEEK
    ranked = (
        sa.select(
            Attempt.user_id,
            Attempt.quiz_id,
            Attempt.score,
            Attempt.max_score,
            Attempt.duration_ms,
            Attempt.finished_at,
            sa.func.row_number()
            .over(
                partition_by=(Attempt.user_id, Attempt.quiz_id),
                order_by=(
                    Attempt.score.desc(),
                    Attempt.duration_ms,
                    Attempt.finished_at,
                ),
            )
            .label("place"),
        )
        .where(
            condition, Attempt.finished_at.is_not(None), Attempt.finished_at >= since
        )
        .subquery("ranked")
    )
    return sa.select(ranked).where(ranked.c.place == 1).subquery("week_best")


def _order(source: sa.Subquery) -> tuple:
    c = source.c
    return (c.score.desc(), c.duration_ms, c.finished_at, c.user_id)


class _QuizTally:
    """Counts for a quiz's all-time board from its score tallies, without counting
    the players one by one."""

    def __init__(self, quiz_id: int):
        self.quiz_id = quiz_id

    def total(self) -> int:
        return db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ScoreTally.players), 0)).where(
                ScoreTally.quiz_id == self.quiz_id
            )
        )

    def ahead(self, source: sa.Subquery, row) -> int:
        """Players with a higher score, plus those tied on score who rank higher."""
        higher = db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ScoreTally.players), 0)).where(
                ScoreTally.quiz_id == self.quiz_id, ScoreTally.score > row.score
            )
        )
        c = source.c
        tied_ahead = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(source)
            .where(c.score == row.score, _better_tie(c, row))
        )
        return higher + tied_ahead


def _board(
    source: sa.Subquery,
    page: int,
    per_page: int,
    me_id: int | None,
    tally: _QuizTally | None = None,
    total: int | None = None,
) -> Board:
    if total is None and tally is not None:
        total = tally.total()
    elif total is None:
        total = db.session.scalar(sa.select(sa.func.count()).select_from(source))
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    offset = (page - 1) * per_page
    rows = db.session.execute(
        sa.select(source, User.display_name)
        .join(User, User.id == source.c.user_id)
        .order_by(*_order(source))
        .limit(per_page)
        .offset(offset)
    ).all()
    entries = [_entry(row, offset + i + 1) for i, row in enumerate(rows)]
    me = None
    if me_id is not None:
        me = next((e for e in entries if e.user_id == me_id), None)
        me = me or _my_entry(source, me_id, tally)
    return Board(entries, total, page, per_page, me)


def _my_entry(
    source: sa.Subquery, user_id: int, tally: _QuizTally | None = None
) -> Entry | None:
    row = db.session.execute(
        sa.select(source, User.display_name)
        .join(User, User.id == source.c.user_id)
        .where(source.c.user_id == user_id)
    ).first()
    if row is None:
        return None
    if tally is not None:
        return _entry(row, tally.ahead(source, row) + 1)
    c = source.c
    better = sa.or_(
        c.score > row.score, sa.and_(c.score == row.score, _better_tie(c, row))
    )
    ahead = db.session.scalar(
        sa.select(sa.func.count()).select_from(source).where(better)
    )
    return _entry(row, ahead + 1)


def _better_tie(c, row):
    """Among equal scores: shorter time, then earlier finish, then lower player id."""
    return sa.or_(
        c.duration_ms < row.duration_ms,
        sa.and_(
            c.duration_ms == row.duration_ms,
            sa.or_(
                c.finished_at < row.finished_at,
                sa.and_(c.finished_at == row.finished_at, c.user_id < row.user_id),
            ),
        ),
    )


def _entry(row, rank: int) -> Entry:
    return Entry(
        rank=rank,
        user_id=row.user_id,
        display_name=row.display_name,
        score=float(row.score),
        max_score=float(row.max_score or 0.0),
        duration_ms=int(row.duration_ms),
        finished_at=row.finished_at,
        quizzes=int(row.quizzes),
    )


def rebuild_best(quiz_id: int, user_id: int) -> None:
    """Recompute a player's best score on a quiz from their finished attempts."""
    db.session.flush()
    _lock_board(quiz_id)
    best = _locked_best(quiz_id, user_id)
    best_attempt = db.session.execute(
        sa.select(
            Attempt.id,
            Attempt.quiz_id,
            Attempt.user_id,
            Attempt.score,
            Attempt.max_score,
            Attempt.duration_ms,
            Attempt.finished_at,
        )
        .where(
            Attempt.quiz_id == quiz_id,
            Attempt.user_id == user_id,
            Attempt.finished_at.is_not(None),
        )
        .order_by(Attempt.score.desc(), Attempt.duration_ms, Attempt.finished_at)
        .limit(1)
    ).first()
    if best_attempt is not None:
        _store_best(quiz_id, user_id, best, best_attempt)
    elif best is not None:
        _drop_best(quiz_id, user_id, best)
