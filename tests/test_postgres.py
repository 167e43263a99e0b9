"""PostgreSQL-only checks (skipped on SQLite with the reason shown by ``pytest -ra``)."""

import sqlalchemy as sa

from quiz import leaderboard
from quiz.extensions import db
from tests.conftest import requires_postgres
from tests.factories import make_player, make_quiz

pytestmark = requires_postgres


def test_top_of_a_board_and_a_rank_are_index_lookups(ctx):
    quiz = make_quiz()
    player = make_player()
    source = leaderboard._quiz_source(quiz.id, "all")
    top = (
        sa.select(source)
        .order_by(*leaderboard._order(source))
        .limit(20)
        .compile(db.engine, compile_kwargs={"literal_binds": True})
    )
    with db.engine.connect() as conn:
        # Penalise every other plan: a Sort node remains only if the index cannot
        # deliver the board's order by itself.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(sa.text(f"SET {setting} = off"))
        plan = "\n".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN {top}")))
    assert "ix_best_score_rank" in plan
    assert "Sort" not in plan  # the index already gives the board's order
    assert leaderboard.quiz_board(quiz.id, me_id=player.id).me is None


def test_database_is_postgresql(ctx):
    assert db.engine.dialect.name == "postgresql"
    assert (
        db.session.scalar(sa.text("SELECT current_setting('server_version_num')::int"))
        > 0
    )


def test_times_read_back_in_utc_whatever_the_session_time_zone(app):
    from datetime import UTC, datetime

    from quiz.models import Attempt

    with app.app_context():
        quiz, player = make_quiz(), make_player()
        noon = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        db.session.add(
            Attempt(user_id=player.id, quiz_id=quiz.id, pass_mark=50, started_at=noon)
        )
        db.session.commit()
        db.session.execute(sa.text("SET TIME ZONE 'America/New_York'"))
        started = db.session.scalar(sa.select(Attempt.started_at))
        assert started == noon and started.tzinfo == UTC
        assert started.strftime("%H:%M") == "12:00"
