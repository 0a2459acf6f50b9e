"""Schema migrations: a new database, and a live one made before migrations.

tests/schema_before_migrations/ holds, for each database, the schema exactly
as `flask init-db` made it with create_all() before the shop had migrations
(dumped from a database made that way). A merchant who installed that
release upgrades with `flask init-db` and loses nothing.
"""

from pathlib import Path

import pytest
from conftest import STAFF_PASSWORD, BackOffice, Shop
from sqlalchemy import create_engine, func, select, text
from werkzeug.security import generate_password_hash

from models import Order, OrderStatus, Product, Refund, Staff, db

SCHEMAS = Path(__file__).parent / "schema_before_migrations"
LEGACY_STAFF = "owner@example.com"


def run(app, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


# Last release's deploy/README.md had merchants add the checkout token's
# column by hand, as a unique index rather than create_all()'s constraint.
CHECKOUT_TOKEN_BY_HAND = {
    "sqlite": ("\tUNIQUE (checkout_token), \n", ""),
    "postgresql": (
        "ALTER TABLE ONLY public.orders\n"
        "    ADD CONSTRAINT orders_checkout_token_key UNIQUE (checkout_token);\n",
        "",
    ),
}
TOKEN_INDEX_BY_HAND = (
    "CREATE UNIQUE INDEX uq_orders_checkout_token ON orders (checkout_token);\n"
)


def make_database_before_migrations(url: str, token_by_hand: bool = False) -> None:
    """The old init-db's tables, then a live shop's rows, in plain SQL."""
    engine = create_engine(url)
    schema = (SCHEMAS / f"{engine.dialect.name}.sql").read_text()
    if token_by_hand:
        old, new = CHECKOUT_TOKEN_BY_HAND[engine.dialect.name]
        assert old in schema
        schema = schema.replace(old, new) + TOKEN_INDEX_BY_HAND
    connection = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            connection.executescript(schema)
        else:
            connection.cursor().execute(schema)
        connection.commit()
    finally:
        connection.close()
    with engine.begin() as connection:
        fill_like_a_live_shop(connection)
    engine.dispose()


def fill_like_a_live_shop(connection) -> None:
    connection.execute(
        text(
            "INSERT INTO product (slug, name, description, price_paisa, stock)"
            " VALUES ('jordan-air', 'Jordan Air', 'Shoes', 20000, 5),"
            " ('dslr-camera', 'DSLR Camera', 'A camera', 50000, 3)"
        )
    )
    orders = [
        ("REF-PAID", "paid", 20000, "pidx-1", "txn-1"),
        ("REF-PART", "partially_refunded", 50000, "pidx-2", "txn-2"),
        ("REF-OPEN", "awaiting_payment", 20000, "pidx-3", None),
        ("REF-GONE", "canceled", 50000, "pidx-4", None),
    ]
    for reference, status, total, pidx, transaction in orders:
        connection.execute(
            text(
                "INSERT INTO orders (purchase_order_id, status, customer_name,"
                " customer_email, customer_phone, total_paisa, created_at, pidx,"
                " transaction_id) VALUES (:ref, :status, 'Sita Sharma',"
                " 'sita@example.com', '9812345678', :total, '2026-11-01 10:00:00',"
                " :pidx, :txn)"
            ),
            {
                "ref": reference,
                "status": status,
                "total": total,
                "pidx": pidx,
                "txn": transaction,
            },
        )
        connection.execute(
            text(
                "INSERT INTO order_items (order_id, product_id, name,"
                " unit_price_paisa, quantity) SELECT orders.id, product.id,"
                " 'Jordan Air', :total, 1 FROM orders, product"
                " WHERE purchase_order_id = :ref AND slug = 'jordan-air'"
            ),
            {"ref": reference, "total": total},
        )
        connection.execute(
            text(
                "INSERT INTO payment_events (order_id, created_at, kind, data)"
                " SELECT id, '2026-11-01 10:00:00', 'order_created', '{}'"
                " FROM orders WHERE purchase_order_id = :ref"
            ),
            {"ref": reference},
        )
    connection.execute(
        text(
            "INSERT INTO refunds (order_id, token, amount_paisa, staff_email, reason,"
            " state, created_at) SELECT id, 'old-token', 10000, :email, 'Scratched',"
            " 'succeeded', '2026-11-02 09:00:00' FROM orders"
            " WHERE purchase_order_id = 'REF-PART'"
        ),
        {"email": LEGACY_STAFF},
    )
    connection.execute(
        text(
            "INSERT INTO staff (email, password_hash, created_at)"
            " VALUES (:email, :hash, '2026-10-01 08:00:00')"
        ),
        {"email": LEGACY_STAFF, "hash": generate_password_hash(STAFF_PASSWORD)},
    )


def test_init_db_makes_a_new_database_that_matches_the_models(make_app):
    app = make_app(create_tables=False)

    output = run(app, "init-db")

    assert "7 sample products added" in output
    # `flask db check` fails unless the migrations make what the models describe.
    run(app, "db", "check")
    assert "0 sample products added" in run(app, "init-db")


def test_init_db_leaves_a_catalog_the_merchant_emptied_of_samples_alone(make_app):
    app = make_app(create_tables=False)
    run(app, "init-db")
    with app.app_context():
        db.session.execute(db.update(Product).values(stock=0))
        db.session.commit()

    assert "0 sample products added" in run(app, "init-db")


@pytest.mark.parametrize("token_by_hand", [False, True])
def test_a_database_made_before_migrations_is_upgraded_and_keeps_everything(
    make_app, database_url, khalti_sandbox, token_by_hand
):
    make_database_before_migrations(database_url, token_by_hand)
    app = make_app(create_tables=False)

    output = run(app, "init-db")

    assert "marked as revision 0001, then upgraded" in output
    assert "0 sample products added" in output
    run(app, "db", "check")
    with app.app_context():
        statuses = dict(
            db.session.execute(select(Order.purchase_order_id, Order.status)).all()
        )
        assert statuses == {
            "REF-PAID": OrderStatus.PAID,
            "REF-PART": OrderStatus.PARTIALLY_REFUNDED,
            "REF-OPEN": OrderStatus.AWAITING_PAYMENT,
            "REF-GONE": OrderStatus.CANCELED,
        }
        assert db.session.scalar(select(func.count(Refund.id))) == 1
        assert db.session.scalar(select(Staff.email)) == LEGACY_STAFF

    # The old staff account logs in, and sees the old orders and refund.
    client = app.test_client()
    office = BackOffice(app, client)
    assert office.log_in(email=LEGACY_STAFF).status_code == 303
    page = client.get("/admin/orders/REF-PART")
    assert page.status_code == 200
    assert "Scratched" in page.text

    # A buyer buys, with ids that follow the old rows', and staff refund it.
    shop = Shop(app, client, khalti_sandbox)
    order = shop.buy(("dslr-camera", 1))
    assert order.status == OrderStatus.PAID
    assert order.id == 5
    assert shop.stock("dslr-camera") == 2
    refunded = office.refund(order, amount="100.00", reason="Late")
    assert refunded.status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.PARTIALLY_REFUNDED


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_schema_files_are_the_old_init_dbs_dumps(dialect):
    # A guard on the fixture itself: the tables the upgrade test starts from.
    schema = (SCHEMAS / f"{dialect}.sql").read_text()
    for table in ("product", "orders", "order_items", "payment_events", "staff"):
        assert f"TABLE {table}" in schema or f"TABLE public.{table}" in schema
    assert "alembic_version" not in schema
