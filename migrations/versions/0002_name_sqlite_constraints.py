"""Give databases made before migrations the constraints 0001 names

- The checkout token's uniqueness: a database upgraded by hand with the SQL
  that deploy/README.md gave last release has a unique index,
  uq_orders_checkout_token, where create_all() made a unique constraint.
- SQLite: create_all() left its unique constraints unnamed, so no later
  migration could refer to one. Each table that has one is copied with the
  naming convention's names (Alembic's batch mode: SQLite cannot rename a
  constraint in place). PostgreSQL named them itself, with the very names
  the convention gives.
On a database that 0001 made, nothing changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 05:05:00

"""

import sqlalchemy as sa
from alembic import op

from database import db

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    orders_indexes = {index["name"] for index in sa.inspect(bind).get_indexes("orders")}
    if "uq_orders_checkout_token" in orders_indexes:
        with op.batch_alter_table("orders") as batch_op:
            batch_op.drop_index("uq_orders_checkout_token")
            batch_op.create_unique_constraint(
                "orders_checkout_token_key", ["checkout_token"]
            )
    if bind.dialect.name == "sqlite":
        name_unnamed_unique_constraints(sa.inspect(bind))


def name_unnamed_unique_constraints(inspector):
    for table in inspector.get_table_names():
        constraints = inspector.get_unique_constraints(table)
        if any(constraint["name"] is None for constraint in constraints):
            with op.batch_alter_table(
                table,
                recreate="always",
                naming_convention=db.metadata.naming_convention,
            ):
                pass


def downgrade():
    # The constraints and their names do no harm on the way down.
    pass
