"""Products staff can edit: visible, picture, a change history

A product can be hidden (visible, true for every existing product), carry
a picture (a file name under the instance folder), and have no slug (only
the sample products have one, which names their drawing). Each change
staff make is a product_changes row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 05:03:13.251309

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "product_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("staff_email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("product_changes_product_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("product_changes_pkey")),
    )
    with op.batch_alter_table("product_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_product_changes_product_id"), ["product_id"], unique=False
        )

    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("visible", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("picture", sa.String(length=64), nullable=True))
        batch_op.alter_column(
            "slug", existing_type=sa.VARCHAR(length=64), nullable=True
        )


def downgrade():
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.alter_column(
            "slug", existing_type=sa.VARCHAR(length=64), nullable=False
        )
        batch_op.drop_column("picture")
        batch_op.drop_column("visible")

    with op.batch_alter_table("product_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_changes_product_id"))

    op.drop_table("product_changes")
