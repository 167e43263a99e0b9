"""best scores by player, for totals

A player's overall total is recomputed from their best scores whenever one improves;
without this index that read scanned every best score of every player.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 14:00:00

"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(op.f("ix_best_score_user_id"), "best_score", ["user_id"])


def downgrade():
    op.drop_index(op.f("ix_best_score_user_id"), table_name="best_score")
