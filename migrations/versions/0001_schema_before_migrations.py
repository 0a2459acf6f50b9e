"""The schema as it was before migrations

The tables `flask init-db` made with create_all() until migrations came.
A database made that way has no alembic_version table: `flask init-db`
recognises it and marks it as this revision (see database.py) instead of
running this script on it.

Revision ID: 0001
Revises:
Create Date: 2026-12-06 04:40:49.410453

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_order_id", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "created",
                "awaiting_payment",
                "pending",
                "needs_review",
                "paid",
                "partially_refunded",
                "refunded",
                "canceled",
                "expired",
                "failed",
                name="orderstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("customer_name", sa.String(length=100), nullable=False),
        sa.Column("customer_email", sa.String(length=254), nullable=False),
        sa.Column("customer_phone", sa.String(length=10), nullable=False),
        sa.Column("total_paisa", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("checkout_token", sa.String(length=32), nullable=True),
        sa.Column("pidx", sa.String(length=64), nullable=True),
        sa.Column("payment_url", sa.String(length=500), nullable=True),
        sa.Column("expires_at", sa.String(length=40), nullable=True),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("orders_pkey")),
        sa.UniqueConstraint("checkout_token", name=op.f("orders_checkout_token_key")),
        sa.UniqueConstraint("pidx", name=op.f("orders_pidx_key")),
        sa.UniqueConstraint(
            "purchase_order_id", name=op.f("orders_purchase_order_id_key")
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_paisa", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("product_pkey")),
        sa.UniqueConstraint("slug", name=op.f("product_slug_key")),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("staff_pkey")),
        sa.UniqueConstraint("email", name=op.f("staff_email_key")),
    )
    op.create_table(
        "order_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("unit_price_paisa", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("order_items_order_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("order_items_product_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("order_items_pkey")),
    )
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_items_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "payment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("payment_events_order_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("payment_events_pkey")),
    )
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_events_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("amount_paisa", sa.Integer(), nullable=False),
        sa.Column("staff_email", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "requested",
                "succeeded",
                "failed",
                "unknown",
                name="refundstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("khalti_answer", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("refunds_order_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("refunds_pkey")),
        sa.UniqueConstraint("token", name=op.f("refunds_token_key")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            "one_refund_in_flight_per_order",
            ["order_id"],
            unique=True,
            sqlite_where=sa.text("state = 'requested'"),
            postgresql_where=sa.text("state = 'requested'"),
        )


def downgrade():
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(
            "one_refund_in_flight_per_order",
            sqlite_where=sa.text("state = 'requested'"),
            postgresql_where=sa.text("state = 'requested'"),
        )
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_events_order_id"))

    op.drop_table("payment_events")
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_items_order_id"))

    op.drop_table("order_items")
    op.drop_table("staff")
    op.drop_table("product")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_created_at"))

    op.drop_table("orders")
