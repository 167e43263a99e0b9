"""The committed migrations build the schema the models describe, on this database."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from quiz import changes
from quiz.extensions import db
from quiz.models import include_in_migrations


def test_upgrade_matches_the_models_and_downgrade_cleans_up(app):
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "include_object": include_in_migrations},
            )
            assert compare_metadata(context, db.metadata) == []
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("best_score")}
            assert _change_triggers(conn) == (
                {*changes.WATCHED, "function"}
                if conn.dialect.name == "postgresql"
                else changes.COUNTERS
            )
            counted = conn.execute(sa.select(changes.TABLE_CHANGES)).all()
            assert sorted(counted) == sorted((t, 0) for t in changes.WATCHED)
        assert "ix_best_score_rank" in indexes
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
            assert not _change_triggers(conn)


def _change_triggers(conn) -> set[str]:
    """The tables whose changes PostgreSQL announces (``quiz.changes``), and
    "function" for the function the triggers run; on SQLite, the triggers that
    count changed rows."""
    if conn.dialect.name != "postgresql":
        return set(
            conn.scalars(
                sa.text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND name LIKE 'quiz_count_%'"
                )
            )
        )
    tables = conn.scalars(
        sa.text(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'quiz_notify_change'"
        )
    )
    function = conn.scalar(
        sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'quiz_notify_change'")
    )
    return set(tables) | ({"function"} if function else set())


def test_upgrade_keeps_existing_players_and_attempts(app):
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(revision="0001")
        now = "2026-01-01 12:00:00"
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO quiz (slug, title, theme, description, shuffle, "
                    "time_limit_minutes, pass_mark, is_published, created_at, updated_at) "
                    f"VALUES ('q', 'Q', 'T', 'D', true, 0, 70, true, '{now}', '{now}')"
                )
            )
            conn.execute(
                sa.text(
                    'INSERT INTO "user" (display_name, role, is_guest, created_at) '
                    f"VALUES ('Old Guest', 'player', true, '{now}')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO attempt (user_id, quiz_id, started_at, score, max_score, "
                    f"pass_mark) VALUES (1, 1, '{now}', 0, 0, 70)"
                )
            )
        upgrade()
        with db.engine.connect() as conn:
            token, disabled = conn.execute(
                sa.text('SELECT session_token, is_disabled FROM "user"')
            ).one()
            assert len(token) == 32 and not disabled
            assert conn.execute(sa.text("SELECT count(*) FROM attempt")).scalar() == 1
