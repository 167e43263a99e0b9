"""score tallies and board versions, for fast ranks and cached standings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 12:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "score_tally",
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("players", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["quiz_id"], ["quiz.id"], name=op.f("fk_score_tally_quiz_id_quiz")
        ),
        sa.PrimaryKeyConstraint("quiz_id", "score", name=op.f("pk_score_tally")),
    )
    op.execute(
        "INSERT INTO score_tally (quiz_id, score, players) "
        "SELECT quiz_id, score, count(*) FROM best_score GROUP BY quiz_id, score"
    )
    with op.batch_alter_table("quiz", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("board_version", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("quiz", schema=None) as batch_op:
        batch_op.drop_column("board_version")
    op.drop_table("score_tally")
