"""table change counts, for rows kept by the app servers on SQLite

Row-level triggers count, per table, the rows changed in the tables whose rows the
app servers keep between requests; on SQLite the servers read the counts to know
what changed (PostgreSQL announces changes instead: migration 0007).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 01:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("user", "quiz", "attempt", "best_score", "content_version")
EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade():
    table = op.create_table(
        "table_change",
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_table_change")),
    )
    op.bulk_insert(table, [{"table_name": name, "changes": 0} for name in TABLES])
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        for event in EVENTS:
            trigger = f"quiz_count_{name}_{event.lower()}"
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            op.execute(
                f'CREATE TRIGGER {trigger} AFTER {event} ON "{name}" BEGIN '
                f"UPDATE table_change SET changes = changes + 1 "
                f"WHERE table_name = '{name}'; END"
            )


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in TABLES:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS quiz_count_{name}_{event.lower()}")
    op.drop_table("table_change")
