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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from . import scoring
from .cache import cached
from .extensions import db
from .models import Attempt, BestScore, PlayerTotal, Quiz, ScoreTally, User, utcnow

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


def record_finished(attempt: Attempt) -> bool:
    """Update the player's best score and overall total; return True for a new best."""
    _lock_board(attempt.quiz_id)
    best = _locked_best(attempt.quiz_id, attempt.user_id)
    if best is not None and _key(best) <= _key(attempt):
        return False
    _store_best(best, attempt)
    refresh_total(attempt.user_id, attempt.finished_at)
    return True


# Everything that changes a best score takes its locks in one order: the quiz row,
# then the best score, then its tallies, then the player's total. Two transactions
# on the same quiz (a finish and a guest handing over to the same account, say)
# therefore queue on the quiz row instead of deadlocking, and each reads the best
# score only once it holds the quiz.


def _lock_board(quiz_id: int) -> None:
    """Lock the quiz's standings (its row) until the transaction ends."""
    db.session.execute(sa.select(Quiz.id).where(Quiz.id == quiz_id).with_for_update())


def _board_changed(quiz_id: int) -> None:
    """Mark every cached copy of the quiz's standings stale (under its lock)."""
    db.session.execute(
        sa.update(Quiz)
        .where(Quiz.id == quiz_id)
        .values(board_version=Quiz.board_version + 1, updated_at=Quiz.updated_at)
        .execution_options(synchronize_session=False)
    )


def _locked_best(quiz_id: int, user_id: int) -> BestScore | None:
    return db.session.scalar(
        sa.select(BestScore)
        .where(BestScore.quiz_id == quiz_id, BestScore.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _store_best(best: BestScore | None, attempt: Attempt) -> None:
    """Make ``attempt`` the player's best on its quiz (creating the row if needed).
    The caller holds the quiz's lock and ``best``'s."""
    _board_changed(attempt.quiz_id)
    if best is not None:
        _tally(attempt.quiz_id, best.score, -1)
    _tally(attempt.quiz_id, attempt.score, +1)
    if best is None:
        best = BestScore(quiz_id=attempt.quiz_id, user_id=attempt.user_id)
        db.session.add(best)
    best.attempt_id = attempt.id
    best.score = attempt.score
    best.max_score = attempt.max_score
    best.duration_ms = attempt.duration_ms
    best.finished_at = attempt.finished_at
    db.session.flush()


def remove_bests(user_id: int) -> None:
    """Take a player off every quiz board (their attempts are moving elsewhere)."""
    quiz_ids = db.session.scalars(
        sa.select(BestScore.quiz_id)
        .where(BestScore.user_id == user_id)
        .order_by(BestScore.quiz_id)
    ).all()
    for quiz_id in quiz_ids:
        _lock_board(quiz_id)
        best = _locked_best(quiz_id, user_id)
        if best is not None:
            _board_changed(quiz_id)
            _tally(quiz_id, best.score, -1)
            db.session.delete(best)
    db.session.flush()


def _tally(quiz_id: int, score: float, change: int) -> None:
    """Count one more (or one fewer) player with this best score on the quiz."""
    add_tallies([{"quiz_id": quiz_id, "score": score, "players": change}])


def add_tallies(rows: list[dict]) -> None:
    """Add ``players`` to the tally of each (``quiz_id``, ``score``)."""
    if not rows:
        return
    statement = _insert(ScoreTally)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[ScoreTally.quiz_id, ScoreTally.score],
            set_={"players": ScoreTally.players + statement.excluded.players},
        ),
        rows,
    )


def refresh_total(user_id: int, improved_at: datetime) -> None:
    """Recompute a player's overall total from their best scores, under a row lock."""
    _insert_ignore(
        PlayerTotal,
        user_id=user_id,
        score=0.0,
        duration_ms=0,
        quizzes=0,
        finished_at=improved_at,
    )
    total = db.session.scalar(
        sa.select(PlayerTotal).where(PlayerTotal.user_id == user_id).with_for_update()
    )
    scores = db.session.execute(
        sa.select(BestScore.score, BestScore.duration_ms).where(
            BestScore.user_id == user_id
        )
    ).all()
    total.score = round(sum(s for s, _ in scores), 4)
    total.duration_ms = sum(d for _, d in scores)
    total.quizzes = len(scores)
    total.finished_at = improved_at


def _key(row) -> tuple:
    """Sort key of an attempt or best score: smaller is better."""
    return (-row.score, row.duration_ms, row.finished_at)


def _insert_ignore(model, **values) -> None:
    """INSERT that does nothing when the primary key exists (SQLite and PostgreSQL)."""
    db.session.execute(_insert(model).values(**values).on_conflict_do_nothing())


def _insert(model):
    """An INSERT with the database's ON CONFLICT clauses (SQLite and PostgreSQL)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite_dialect.insert(model)


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
    _lock_board(quiz_id)
    best = _locked_best(quiz_id, user_id)
    best_attempt = db.session.scalar(
        sa.select(Attempt)
        .where(
            Attempt.quiz_id == quiz_id,
            Attempt.user_id == user_id,
            Attempt.finished_at.is_not(None),
        )
        .order_by(Attempt.score.desc(), Attempt.duration_ms, Attempt.finished_at)
        .limit(1)
    )
    if best_attempt is not None:
        _store_best(best, best_attempt)
    elif best is not None:
        _board_changed(quiz_id)
        _tally(quiz_id, best.score, -1)
        db.session.delete(best)
