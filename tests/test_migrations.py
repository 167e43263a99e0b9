"""The committed migrations build the schema the models describe, on this database."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

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
        assert "ix_best_score_rank" in indexes
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
