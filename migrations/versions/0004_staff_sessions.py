"""Staff sessions that end, disabled accounts, one-time passwords

session_version is part of every staff session cookie: raising it (logout,
a new password, disabling) ends every session of that account at once, on
every server. Existing accounts start active, at version 0, with the
password they have.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 05:14:12.535084

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "session_version", sa.Integer(), server_default="0", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "must_change_password",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )


def downgrade():
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")
        batch_op.drop_column("active")
        batch_op.drop_column("session_version")
