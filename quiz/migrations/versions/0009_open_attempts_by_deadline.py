"""open attempts by deadline, for finishing those whose time is up

Attempts left open when their time ran out are finished by a sweep (trainers'
pages, ``flask --app quiz attempts finish-expired``); this partial index holds only
open attempts with a time limit, so finding the expired ones reads no other row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 15:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OPEN_WITH_DEADLINE = sa.text("finished_at IS NULL AND deadline IS NOT NULL")


def upgrade():
    op.create_index(
        "ix_attempt_open_deadline",
        "attempt",
        ["deadline"],
        sqlite_where=OPEN_WITH_DEADLINE,
        postgresql_where=OPEN_WITH_DEADLINE,
    )


def downgrade():
    op.drop_index("ix_attempt_open_deadline", table_name="attempt")
