"""Pay again links the new order to the one it pays for

orders.retry_of_id names the canceled, expired or failed order that "Pay
again" placed this one for; empty for every other order. On SQLite, adding
the foreign key copies the table (batch mode).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 05:20:55.080071

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_of_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_orders_retry_of_id"), ["retry_of_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("orders_retry_of_id_fkey"), "orders", ["retry_of_id"], ["id"]
        )


def downgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("orders_retry_of_id_fkey"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_orders_retry_of_id"))
        batch_op.drop_column("retry_of_id")
