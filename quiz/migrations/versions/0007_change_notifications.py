"""change notifications, for rows kept by the app servers (PostgreSQL only)

Statement-level triggers announce (NOTIFY quiz_changes, '<table>') every committed
change to the tables whose rows the app servers keep between requests.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 19:30:00

"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("user", "quiz", "attempt", "best_score", "content_version")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION quiz_notify_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('quiz_changes', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(f'DROP TRIGGER IF EXISTS quiz_notify_change ON "{table}"')
        op.execute(
            f"CREATE TRIGGER quiz_notify_change AFTER INSERT OR UPDATE OR DELETE OR "
            f'TRUNCATE ON "{table}" FOR EACH STATEMENT '
            f"EXECUTE FUNCTION quiz_notify_change()"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f'DROP TRIGGER IF EXISTS quiz_notify_change ON "{table}"')
    op.execute("DROP FUNCTION IF EXISTS quiz_notify_change()")
