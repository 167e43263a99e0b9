"""Score tallies, board versions and the per-app standings cache.

Proves that:

- a quiz's score tallies always equal ``SELECT quiz_id, score, count(*) FROM
  best_score GROUP BY quiz_id, score``: after first finishes, better, worse and equal
  attempts, ties, a guest handing their attempts to an account that already has a
  best on the quiz (directly and through the sign-in form), and ``rebuild_best``
  moving or removing a best;
- ranks and totals read from the tallies equal ranks computed by brute force over
  the ``best_score`` rows, on boards full of complete ties, for every player;
- ``quiz.board_version`` goes up whenever a best changes, never for a worse or equal
  attempt, and bumping it leaves ``quiz.updated_at`` alone;
- a cached board is served without a single statement while its version is current,
  and the leaderboard page shows a new best, the new total and the viewer's new rank
  at once; a cached rows fragment never marks another viewer's row as "you"; viewers
  with the same standing share one rendered section of the page;
- cohort boards and last-7-days boards are never served from the cache.
"""

from __future__ import annotations

import itertools
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import current_app
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from quiz import accounts, attempts, cohorts, leaderboard, players
from quiz.cache import VersionedCache
from quiz.extensions import db
from quiz.models import Attempt, BestScore, CohortMember, Quiz, ScoreTally, User
from tests.factories import PASSWORD, make_account, make_player, make_quiz

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------


def record(quiz_id, user_id, score, seconds, finished_at=None, max_score=6.0):
    """A finished attempt with these figures, booked as ``attempts.finish`` does."""
    finished_at = finished_at or datetime.now(UTC)
    attempt = Attempt(
        user_id=user_id,
        quiz_id=quiz_id,
        pass_mark=50,
        score=score,
        max_score=max_score,
        started_at=finished_at - timedelta(seconds=seconds),
        finished_at=finished_at,
        duration_ms=seconds * 1000,
        passed=score * 2 >= max_score,
    )
    db.session.add(attempt)
    db.session.flush()
    leaderboard.record_finished(attempt)
    db.session.commit()
    return attempt


def tallies() -> dict:
    """Score tallies with at least one player: {(quiz_id, score): players}."""
    rows = db.session.execute(
        sa.select(ScoreTally.quiz_id, ScoreTally.score, ScoreTally.players).where(
            ScoreTally.players != 0
        )
    )
    return {(q, s): n for q, s, n in rows}


def grouped_bests() -> dict:
    """The same counts straight from the best scores (the definition of a tally)."""
    rows = db.session.execute(
        sa.select(BestScore.quiz_id, BestScore.score, sa.func.count()).group_by(
            BestScore.quiz_id, BestScore.score
        )
    )
    return {(q, s): n for q, s, n in rows}


def assert_tallies_match() -> None:
    assert tallies() == grouped_bests()


def version(quiz_id: int) -> int:
    return db.session.scalar(sa.select(Quiz.board_version).where(Quiz.id == quiz_id))


def best_of(quiz_id: int, user_id: int) -> BestScore | None:
    return db.session.scalar(
        sa.select(BestScore).where(
            BestScore.quiz_id == quiz_id, BestScore.user_id == user_id
        )
    )


def brute_force_order(quiz_id: int) -> list[int]:
    """User ids in board order, by sorting every best score in Python."""
    rows = db.session.execute(
        sa.select(
            BestScore.user_id,
            BestScore.score,
            BestScore.duration_ms,
            BestScore.finished_at,
        ).where(BestScore.quiz_id == quiz_id)
    ).all()
    rows.sort(key=lambda r: (-r.score, r.duration_ms, r.finished_at, r.user_id))
    return [r.user_id for r in rows]


@contextmanager
def statements():
    """Collect the SQL statements sent to the database inside the block."""
    sent: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield sent
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)


def guests(count: int, prefix: str = "p") -> list[int]:
    ids = [players.create_guest(f"{prefix}{i:02}").id for i in range(count)]
    db.session.commit()
    return ids


# --- tallies ------------------------------------------------------------------------


def test_tallies_follow_first_finishes_better_worse_and_equal_attempts(ctx):
    """Each quiz counts players per best score: a first finish adds one, a better
    score moves the player from the old count to the new, a worse or equal attempt
    (or a faster one with the same score) moves nothing, and ties share a count."""
    quiz, other = make_quiz("alpha"), make_quiz("beta")
    ann, bob, cat = guests(3)
    record(quiz.id, ann, 3, 30, T0)
    record(quiz.id, bob, 3, 30, T0)  # a complete tie with ann
    record(other.id, ann, 3, 10, T0)  # the same score on another quiz
    assert tallies() == {(quiz.id, 3.0): 2, (other.id, 3.0): 1}
    assert_tallies_match()

    record(quiz.id, ann, 5, 40)  # better: ann's tally moves from 3 to 5
    assert tallies() == {(quiz.id, 3.0): 1, (quiz.id, 5.0): 1, (other.id, 3.0): 1}
    assert_tallies_match()

    record(quiz.id, ann, 2, 5)  # worse score: nothing moves
    record(quiz.id, ann, 5, 40)  # equal, later: not better, nothing moves
    record(quiz.id, bob, 3, 20)  # same score, faster: best changes, tally stays
    assert tallies() == {(quiz.id, 3.0): 1, (quiz.id, 5.0): 1, (other.id, 3.0): 1}
    assert best_of(quiz.id, bob).duration_ms == 20_000
    assert_tallies_match()

    record(quiz.id, cat, 1.3333, 10)  # a partial-credit score
    record(quiz.id, cat, 1.3333 + 1.3333, 10)  # and a sum of two of them
    assert (quiz.id, 1.3333) not in tallies()
    assert_tallies_match()
    assert leaderboard.quiz_board(quiz.id).total == 3


@pytest.mark.parametrize(
    ("guest_score", "account_keeps"),
    [(5.0, False), (2.0, True), (4.0, False)],
    ids=["guest-better", "guest-worse", "guest-equal-score-faster"],
)
def test_tallies_follow_a_guest_handing_over_to_an_account(
    ctx, guest_score, account_keeps
):
    """A guest signing in to an account that already has a best on the quiz leaves
    one entry (the better of the two) and no trace of the guest, on every quiz the
    guest played; the tallies lose the guest and follow the account's best; the
    board versions go up and ``updated_at`` stays."""
    quiz, other = make_quiz("alpha"), make_quiz("beta")
    account = make_account("ann@example.org", role="player", name="Ann")
    guest = make_player("Guest")
    bystander = make_player("Bystander")
    record(quiz.id, account.id, 4, 60, T0)
    record(quiz.id, guest.id, guest_score, 30, T0 + timedelta(minutes=1))
    record(other.id, guest.id, 1, 30, T0)
    record(quiz.id, bystander.id, guest_score, 45, T0)  # shares a tally with guest
    before = version(quiz.id), version(other.id)
    updated = db.session.get(Quiz, quiz.id).updated_at
    assert leaderboard.quiz_board(quiz.id).total == 3

    moved = accounts.merge_guest(guest, account)  # as sign-in does, then commit
    db.session.commit()

    assert moved == 2
    assert_tallies_match()
    assert db.session.get(User, guest.id) is None
    best = best_of(quiz.id, account.id)
    assert best.score == (4.0 if account_keeps else guest_score)
    assert best_of(other.id, account.id).score == 1.0
    board = leaderboard.quiz_board(quiz.id, me_id=account.id)
    assert board.total == 2 == len(board.entries)
    assert {e.user_id for e in board.entries} == {account.id, bystander.id}
    assert board.me.rank == brute_force_order(quiz.id).index(account.id) + 1
    assert leaderboard.quiz_board(other.id).total == 1
    assert version(quiz.id) > before[0] and version(other.id) > before[1]
    assert db.session.get(Quiz, quiz.id).updated_at == updated


def test_signing_in_as_a_guest_hands_the_best_to_the_account_and_the_page_shows_it(
    app, client
):
    """Through the real forms: a guest plays, then signs in to an account that has a
    worse best on the same quiz; the board (viewed and cached before) shows the
    account once, with the guest's score, and the tallies still add up."""
    with app.app_context():
        quiz = make_quiz("alpha")
        account = make_account("ann@example.org", role="player", name="Ann Account")
        record(quiz.id, account.id, 1, 60, T0)
        quiz_id, account_id = quiz.id, account.id
    guest_client = play_as_guest(app, "Gus Guest", right=3)
    page = board_page(client.get("/quizzes/alpha/leaderboard"))
    assert [r.name for r in page.rows] == ["Gus Guest", "Ann Account"]

    response = guest_client.post(
        "/auth/login", data={"email": "ann@example.org", "password": PASSWORD}
    )
    assert response.status_code == 302

    page = board_page(client.get("/quizzes/alpha/leaderboard"))
    assert [(r.rank, r.name, r.score) for r in page.rows] == [(1, "Ann Account", "6")]
    mine = board_page(guest_client.get("/quizzes/alpha/leaderboard"))
    assert [(r.name, r.is_me) for r in mine.rows] == [("Ann Account", True)]
    with app.app_context():
        assert_tallies_match()
        assert best_of(quiz_id, account_id).score == 6.0
        assert leaderboard.player_rank(quiz_id, account_id).rank == 1


def test_rebuild_best_moves_and_removes_a_best_with_its_tally(ctx):
    """Rebuilding a best from the finished attempts moves its tally to the new best
    score, or takes the player off the board and out of the tally when no finished
    attempt is left."""
    quiz = make_quiz()
    ann, bob = guests(2)
    first = record(quiz.id, ann, 2, 10, T0)
    top = record(quiz.id, ann, 5, 10, T0 + timedelta(minutes=1))
    record(quiz.id, bob, 5, 20, T0)
    assert tallies() == {(quiz.id, 5.0): 2}

    # The best attempt no longer counts as finished: the best falls back to the next.
    top.finished_at = None
    db.session.flush()
    leaderboard.rebuild_best(quiz.id, ann)
    db.session.commit()
    assert best_of(quiz.id, ann).attempt_id == first.id
    assert tallies() == {(quiz.id, 2.0): 1, (quiz.id, 5.0): 1}
    assert_tallies_match()

    # No finished attempt is left (one open attempt per quiz, so the other goes):
    # the player leaves the board and the tally.
    before = version(quiz.id)
    db.session.delete(top)
    db.session.flush()
    first.finished_at = None
    db.session.flush()
    leaderboard.rebuild_best(quiz.id, ann)
    db.session.commit()
    assert best_of(quiz.id, ann) is None
    assert tallies() == {(quiz.id, 5.0): 1}
    assert_tallies_match()
    assert version(quiz.id) > before
    board = leaderboard.quiz_board(quiz.id, me_id=ann)
    assert board.total == 1 and board.me is None
    assert leaderboard.player_rank(quiz.id, bob).rank == 1


# --- ranks and totals ------------------------------------------------------------------

SCORES = (0.0, 1.3333, 2.6667, 4.0, 6.0)
SECONDS = (10, 20)
FINISHES = (T0, T0 + timedelta(minutes=1))
PLAYERS = 40

attempt_plan = st.tuples(
    st.sampled_from(SCORES), st.sampled_from(SECONDS), st.sampled_from(FINISHES)
)


def check_ranks(quiz_id: int, user_ids: list[int]) -> None:
    """Every way of reading a rank agrees with the brute-force order."""
    expected = brute_force_order(quiz_id)
    rank = {user_id: i + 1 for i, user_id in enumerate(expected)}
    assert leaderboard.quiz_board(quiz_id).total == len(expected)
    assert leaderboard.quiz_board(quiz_id, version=version(quiz_id)).total == len(
        expected
    )
    pages, page = [], 1
    while True:
        board = leaderboard.quiz_board(quiz_id, page=page, per_page=7)
        pages += board.entries
        if page >= board.pages:
            break
        page += 1
    assert [e.user_id for e in pages] == expected
    assert [e.rank for e in pages] == list(range(1, len(expected) + 1))
    v = version(quiz_id)
    for user_id in user_ids:
        want = rank.get(user_id)
        mine = leaderboard.player_rank(quiz_id, user_id)
        assert (mine and mine.rank) == want, user_id
        for cached_version in (None, v):
            board = leaderboard.quiz_board(
                quiz_id, per_page=7, me_id=user_id, version=cached_version
            )
            assert (board.me and board.me.rank) == want, (user_id, cached_version)


def test_tallied_ranks_equal_brute_force_ranks_on_a_board_of_ties(ctx):
    """~40 players, a few scores, two durations, two finish times (so many complete
    ties), players improving, getting worse and not playing at all."""
    user_ids = guests(PLAYERS)
    slugs = itertools.count()

    all_tied = [[(4.0, 10, T0)]] * PLAYERS

    # No shrinking: a failure shows its (40-player) example at once, not minutes later.
    @settings(
        max_examples=5,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    @given(
        plans=st.lists(
            st.lists(attempt_plan, max_size=3), min_size=PLAYERS, max_size=PLAYERS
        )
    )
    @example(plans=all_tied)
    def check(plans):
        quiz = make_quiz(f"quiz-{next(slugs)}")
        for user_id, plan in zip(user_ids, plans, strict=True):
            for score, seconds, finished_at in plan:
                record(quiz.id, user_id, score, seconds, finished_at)
        assert_tallies_match()
        check_ranks(quiz.id, user_ids)

    check()


# --- board versions ---------------------------------------------------------------------


def test_board_version_goes_up_only_when_a_best_changes(ctx):
    """Every change to a best (first finish, higher score, faster, earlier finish)
    makes cached standings stale; a worse or equal attempt does not, and the quiz
    itself does not count as edited."""
    quiz = make_quiz()
    ann, bob = guests(2)
    updated = db.session.get(Quiz, quiz.id).updated_at
    versions = [version(quiz.id)]

    def changed() -> bool:
        versions.append(version(quiz.id))
        return versions[-1] > versions[-2]

    record(quiz.id, ann, 3, 30, T0)
    assert changed()  # first finish
    record(quiz.id, ann, 4, 30, T0)
    assert changed()  # higher score
    record(quiz.id, ann, 4, 20, T0)
    assert changed()  # same score, faster
    record(quiz.id, ann, 4, 20, T0 - timedelta(minutes=1))
    assert changed()  # same score and time, earlier finish
    record(quiz.id, ann, 2, 5)
    assert not changed()  # worse
    record(quiz.id, ann, 4, 20, T0)
    assert not changed()  # equal
    record(quiz.id, bob, 1, 99)
    assert changed()  # another player's first finish
    assert db.session.get(Quiz, quiz.id).updated_at == updated


def test_board_version_is_per_quiz(ctx):
    """A finish on one quiz leaves other quizzes' cached boards valid."""
    alpha, beta = make_quiz("alpha"), make_quiz("beta")
    (ann,) = guests(1)
    before = version(beta.id)
    record(alpha.id, ann, 3, 30)
    assert version(beta.id) == before


# --- the cache ----------------------------------------------------------------------


def test_a_cached_board_is_served_without_queries_while_its_version_is_current(ctx):
    """While the version is current, a board and a viewer's own entry (on the page,
    off it, or absent) come from the cache with no query at all, equal to what the
    database gives; a new best means a new version, read afresh."""
    quiz = make_quiz()
    ids = guests(30)
    for i, user_id in enumerate(ids):
        record(quiz.id, user_id, 6 - i * 0.125, 10, T0)
    v = version(quiz.id)
    on_page, off_page, absent = ids[0], ids[-1], guests(1, "absent")[0]

    first = leaderboard.quiz_board(quiz.id, version=v)
    assert first.key is not None and len(first.entries) == 20
    with statements() as sent:
        again = leaderboard.quiz_board(quiz.id, version=v)
    assert sent == [] and again == first
    for me_id in (on_page, off_page, absent):
        mine = leaderboard.quiz_board(quiz.id, version=v, me_id=me_id)
        with statements() as sent:
            assert leaderboard.quiz_board(quiz.id, version=v, me_id=me_id) == mine
        assert sent == [], me_id
        assert mine.entries == first.entries
        uncached = leaderboard.quiz_board(quiz.id, me_id=me_id)
        assert mine.me == uncached.me and mine.total == uncached.total == 30
    assert leaderboard.quiz_board(quiz.id, version=v, me_id=absent).me is None
    assert leaderboard.quiz_board(quiz.id, version=v, me_id=off_page).me.rank == 30

    record(quiz.id, absent, 6, 1)  # a new best on top: a new version
    new = version(quiz.id)
    assert new > v
    with statements() as sent:
        fresh = leaderboard.quiz_board(quiz.id, version=new, me_id=off_page)
    assert sent  # read afresh
    assert fresh.total == 31 and fresh.entries[0].user_id == absent
    assert fresh.me.rank == 31 == brute_force_order(quiz.id).index(off_page) + 1
    # The old version's standings stay what they were (only a stale key reads them).
    assert leaderboard.quiz_board(quiz.id, version=v) == first


def test_cohort_and_week_boards_are_not_served_from_the_cache(ctx):
    """The cohort board and the week board change without a new board version (a new
    member, a worse attempt that is this week's best): they must be read afresh even
    when given the version."""
    quiz = make_quiz()
    trainer = make_account("tia@example.org", role="trainer", name="Tia")
    cohort = cohorts.create(trainer, "Finance")
    ann, bob, cat = guests(3)
    db.session.add(CohortMember(cohort_id=cohort.id, user_id=ann))
    db.session.commit()
    now = datetime.now(UTC)
    record(quiz.id, ann, 5, 10, now - timedelta(days=1))
    record(quiz.id, bob, 6, 10, now - timedelta(days=30))
    record(quiz.id, cat, 2, 10, now - timedelta(days=30))
    v = version(quiz.id)
    members = cohorts.member_ids(cohort)

    def among_board():
        return leaderboard.quiz_board(quiz.id, among=members, version=v, me_id=bob)

    def week_board():
        return leaderboard.quiz_board(quiz.id, period="week", version=v, me_id=bob)

    assert [e.user_id for e in among_board().entries] == [ann]
    assert among_board().me is None
    assert [e.user_id for e in week_board().entries] == [ann]
    all_time = leaderboard.quiz_board(quiz.id, version=v)
    assert [e.user_id for e in all_time.entries] == [bob, ann, cat]

    # Bob joins the cohort: no best changed, so no new version.
    db.session.add(CohortMember(cohort_id=cohort.id, user_id=bob))
    db.session.commit()
    assert version(quiz.id) == v
    board = among_board()
    assert [e.user_id for e in board.entries] == [bob, ann]
    assert board.total == 2 and board.me.rank == 1

    # Bob plays worse than his best: all-time unchanged, but it is his week's best.
    record(quiz.id, bob, 3, 10, now - timedelta(hours=1))
    assert version(quiz.id) == v
    board = week_board()
    assert [(e.user_id, e.score) for e in board.entries] == [(ann, 5.0), (bob, 3.0)]
    assert board.me.rank == 2 and board.total == 2
    assert leaderboard.quiz_board(quiz.id, version=v) == all_time

    # Cat improves to 4 (a new version): the cohort board still leaves Cat out, and
    # given the stale version it reads the database anyway.
    record(quiz.id, cat, 4, 10, now)
    assert version(quiz.id) > v
    assert [e.user_id for e in among_board().entries] == [bob, ann]
    assert [e.user_id for e in week_board().entries] == [ann, cat, bob]


# --- the leaderboard page --------------------------------------------------------------


class Row:
    def __init__(self, html: str):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", html, re.DOTALL)
        self.rank = int(cells[0])
        self.is_me = 'class="is-me"' in html
        self.tagged = '<span class="tag">you</span>' in cells[1]
        self.name = re.sub(r"<[^>]+>|\byou\b", "", cells[1]).strip()
        self.score = cells[2].split("/")[0].strip()


class Page:
    def __init__(self, html: str):
        self.html = html
        tbody = re.search(r"<tbody>(.*?)</tbody>", html, re.DOTALL)
        rows = re.findall(r"<tr(.*?)</tr>", tbody.group(1), re.DOTALL) if tbody else []
        self.rows = [Row("<tr" + r) for r in rows]
        found = re.search(r"Your rank: <strong>(\d+)</strong> of (\d+)", html)
        self.my_rank = (int(found.group(1)), int(found.group(2))) if found else None
        found = re.search(r"Page (\d+) of (\d+)", html)
        self.pages = int(found.group(2)) if found else 1

    @property
    def marked(self) -> list[str]:
        return [r.name for r in self.rows if r.is_me or r.tagged]


def board_page(response) -> Page:
    assert response.status_code == 200
    return Page(response.get_data(as_text=True))


def correct_choices(app, attempt_id: int, position: int) -> list[int]:
    with app.app_context():
        attempt = db.session.get(Attempt, attempt_id)
        item = attempts.review_item(attempt, position)
        return [c.id for c in item.choices if c.is_correct]


def play_as_guest(app, name: str, right: int):
    """A new browser: become a guest, play alpha answering ``right`` of its three
    questions right (1, 4 or 6 points of 6), finish. Returns the signed-in client."""
    client = app.test_client()
    assert client.post("/guest", data={"display_name": name}).status_code == 302
    location = client.post("/quizzes/alpha/start").headers["Location"]
    attempt_id = int(re.search(r"/attempts/(\d+)", location).group(1))
    for position in range(1, right + 1):
        client.post(
            f"/attempts/{attempt_id}/questions/{position}",
            data={"choice": correct_choices(app, attempt_id, position)},
        )
    assert client.post(f"/attempts/{attempt_id}/finish").status_code == 302
    return client


@pytest.fixture
def seeded(app):
    """Quiz alpha, pages of two, two earlier players on it: Sam (5 points), Sue (4)."""
    app.config["LEADERBOARD_PAGE_SIZE"] = 2
    with app.app_context():
        quiz = make_quiz("alpha")
        sam, sue = make_player("Sam Seed"), make_player("Sue Seed")
        record(quiz.id, sam.id, 5, 50, T0)
        record(quiz.id, sue.id, 4, 50, T0)
        return quiz.id


def rows_key(key) -> bool:
    """A cache key of a board's rendered rows."""
    return key[0] == "fragment" and key[-1][0] == "rows"


@pytest.fixture
def cache_calls(monkeypatch):
    """Every use of the standings cache: (key, computed on this call)."""
    calls = []
    original = VersionedCache.get

    def spy(self, key, compute, **options):
        computed = []

        def tracked():
            computed.append(True)
            return compute()

        value = original(self, key, tracked, **options)
        calls.append((key, bool(computed)))
        return value

    monkeypatch.setattr(VersionedCache, "get", spy)
    return calls


def test_the_page_shows_a_new_best_the_new_total_and_my_new_rank_at_once(
    app, client, seeded, cache_calls
):
    """Right after another player's new best the page shows that player, the new
    total and the viewer's new rank, though the page was cached before; a worse
    attempt changes nothing."""
    viewer = play_as_guest(app, "Vic Viewer", right=1)  # 1 point: rank 3 of 3
    page = board_page(viewer.get("/quizzes/alpha/leaderboard"))
    assert [r.name for r in page.rows] == ["Sam Seed", "Sue Seed"]
    assert page.my_rank == (3, 3) and page.pages == 2 and page.marked == []
    anonymous = board_page(client.get("/quizzes/alpha/leaderboard"))
    assert [r.name for r in anonymous.rows] == ["Sam Seed", "Sue Seed"]
    assert any(rows_key(key) and not computed for key, computed in cache_calls)

    play_as_guest(app, "Nia Newcomer", right=3)  # 6 points, fastest: rank 1

    page = board_page(viewer.get("/quizzes/alpha/leaderboard"))
    assert [(r.rank, r.name, r.score) for r in page.rows] == [
        (1, "Nia Newcomer", "6"),
        (2, "Sam Seed", "5"),
    ]
    assert page.my_rank == (4, 4) and page.marked == []
    anonymous = board_page(client.get("/quizzes/alpha/leaderboard"))
    assert [r.name for r in anonymous.rows] == ["Nia Newcomer", "Sam Seed"]
    assert anonymous.pages == 2 and anonymous.my_rank is None
    last = board_page(viewer.get("/quizzes/alpha/leaderboard?page=2"))
    assert [(r.rank, r.name) for r in last.rows] == [(3, "Sue Seed"), (4, "Vic Viewer")]
    assert last.marked == ["Vic Viewer"] and last.my_rank is None
    quiz_page = viewer.get("/quizzes/alpha").get_data(as_text=True)
    assert "Nia Newcomer" in quiz_page

    # A worse attempt by the newcomer changes nothing on the page.
    with app.app_context():
        nia = db.session.scalar(
            sa.select(User.id).where(User.display_name == "Nia Newcomer")
        )
        before = version(seeded)
        record(seeded, nia, 0, 1)
        assert version(seeded) == before
    again = board_page(viewer.get("/quizzes/alpha/leaderboard"))
    assert [(r.rank, r.name, r.score) for r in again.rows] == [
        (1, "Nia Newcomer", "6"),
        (2, "Sam Seed", "5"),
    ]
    assert again.my_rank == (4, 4)


def test_a_cached_rows_fragment_never_marks_another_viewers_row(
    app, client, seeded, cache_calls
):
    """Two signed-in guests and an anonymous visitor view the same pages: the rows
    cached for a viewer who is not on the page carry no "you" tag, and each signed-in
    player sees only their own row marked, before and after the cache is filled."""
    ann = play_as_guest(app, "Ann Able", right=3)  # 6 points: rank 1, page 1
    bob = play_as_guest(app, "Bob Baker", right=1)  # 1 point: rank 4, page 2

    seen = board_page(ann.get("/quizzes/alpha/leaderboard"))
    assert seen.marked == ["Ann Able"] and seen.my_rank is None
    for viewer, expected_rank in ((bob, (4, 4)), (client, None), (bob, (4, 4))):
        page = board_page(viewer.get("/quizzes/alpha/leaderboard"))
        assert [r.name for r in page.rows] == ["Ann Able", "Sam Seed"]
        assert page.marked == [] and 'class="tag">you<' not in page.html
        assert page.my_rank == expected_rank
    rows_uses = [computed for key, computed in cache_calls if rows_key(key)]
    assert rows_uses and rows_uses[0] and not all(rows_uses)  # cached, then served

    # Ann on the page after the fragment was cached: her own row, and only hers.
    seen = board_page(ann.get("/quizzes/alpha/leaderboard"))
    assert seen.marked == ["Ann Able"]
    assert board_page(bob.get("/quizzes/alpha/leaderboard?page=2")).marked == [
        "Bob Baker"
    ]
    assert board_page(ann.get("/quizzes/alpha/leaderboard?page=2")).marked == []

    # The quiz page's short board (five rows, all four players) marks each viewer.
    for viewer, marked in ((ann, ["Ann Able"]), (client, []), (bob, ["Bob Baker"])):
        page = Page(viewer.get("/quizzes/alpha").get_data(as_text=True))
        assert page.marked == marked


def test_each_app_has_its_own_cache(app, app_config):
    """Tests (and servers) do not share cached standings: the cache is per app."""
    from quiz import create_app

    other = create_app(app_config)
    assert other.extensions["quiz.cache"] is not app.extensions["quiz.cache"]
    with other.app_context():
        db.engine.dispose()


def test_pages_past_the_end_share_the_last_pages_cache_entry(ctx):
    quiz = make_quiz()
    for i, user_id in enumerate(guests(25)):
        record(quiz.id, user_id, 6 - i * 0.125, 10, T0)
    v = version(quiz.id)
    last = leaderboard.quiz_board(quiz.id, version=v, page=2)
    cache = current_app.extensions["quiz.cache"]
    entries = len(cache._items)
    for page in (3, 10, 99_999, 2**31 - 1):
        with statements() as sent:
            board = leaderboard.quiz_board(quiz.id, version=v, page=page)
        assert sent == [] and board == last and board.page == 2
    assert len(cache._items) == entries
    assert leaderboard.quiz_board(quiz.id, version=v, page=0).page == 1


def section_key(key) -> bool:
    """A cache key of a leaderboard page's rendered section."""
    return key[0] == "fragment" and key[-1][0] == "section"


def test_viewers_with_the_same_standing_share_the_rendered_section(
    app, client, seeded, cache_calls
):
    """A visitor and a guest who are not on the board get one rendered section; a
    ranked viewer gets their own rank line; a new quiz title shows at once."""
    guest = app.test_client()
    guest.post("/guest", data={"display_name": "Gil Guest"})
    guest.get("/")  # shows the welcome message
    first = board_page(client.get("/quizzes/alpha/leaderboard"))
    second = board_page(guest.get("/quizzes/alpha/leaderboard"))
    assert [r.name for r in first.rows] == [r.name for r in second.rows]
    assert first.my_rank is None and second.my_rank is None
    assert [computed for key, computed in cache_calls if section_key(key)] == [
        True,
        False,
    ]
    viewer = play_as_guest(app, "Vic Viewer", right=1)  # 1 point: rank 3 of 3
    assert board_page(viewer.get("/quizzes/alpha/leaderboard")).my_rank == (3, 3)
    assert board_page(client.get("/quizzes/alpha/leaderboard")).my_rank is None
    with app.app_context():
        db.session.get(Quiz, seeded).title = "Alpha, retitled"
        db.session.commit()
    assert "Alpha, retitled" in client.get("/quizzes/alpha/leaderboard").text
