"""The SQL each page costs stays fixed, whatever the cart or the order history holds.

A listener on the engine's ``before_cursor_execute`` event sees every statement
sent to the database. Each page of a buyer's journey must send the same fixed
number of them for a cart of 1 line and of 20, and for a shop with 10 past
orders and with 10,000: no query per cart line, per order item or per event,
and no lookup that reads the whole orders table.
"""

from contextlib import contextmanager

import pytest
from sqlalchemy import event, insert, inspect, update

from models import Order, OrderItem, OrderStatus, PaymentEvent, Product, db

# What each page costs, in statements. Catalog: one SELECT of the product rows;
# the first visit (and the first after a product changed) loads the products
# again to render their cards (see cards.product_cards). Cart: one SELECT.
# Checkout: read the cart's products, insert the order and its items (one
# INSERT for all), lock the products and reserve the stock (one SELECT ... FOR
# NO KEY UPDATE and one UPDATE for all), insert the first two timeline steps
# (order created, the request to Khalti), commit; then, with Khalti's answer,
# move the order to awaiting_payment and insert two steps (the answer, the new
# status), commit. No reload: objects are not expired by a commit.
# Return: find the order by pidx; after the lookup, move it to paid and insert
# three steps (the callback, the lookup's answer, the new status), commit.
# Order page: the order, its items, its events.
STATEMENTS = {
    "catalog, first visit": 2,
    "catalog": 1,
    "cart": 1,
    "checkout": 8,
    "return": 4,
    "order page": 3,
}
# On SQLite each transaction also sends its own BEGIN (see
# database.allow_concurrent_sqlite): one per page, two for checkout and return;
# and checkout locks no rows (SQLite has one writer at a time, and no FOR
# UPDATE), so its SELECT ... FOR NO KEY UPDATE is not sent.
STATEMENTS_BY_DATABASE = {
    "postgresql": STATEMENTS,
    "sqlite": {
        "catalog, first visit": 3,
        "catalog": 2,
        "cart": 2,
        "checkout": 9,
        "return": 6,
        "order page": 4,
    },
}


def database_name(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


@contextmanager
def recorded_statements(app):
    """Collect (sql, parameters) for every statement sent to the database."""
    statements = []

    def note(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", note)


def add_products(app, count: int) -> None:
    """Add `count` products beyond the sample catalog, so carts can be long."""
    with app.app_context():
        db.session.execute(
            insert(Product),
            [
                {
                    "slug": f"extra-{n}",
                    "name": f"Extra item {n}",
                    "description": "Bench filler.",
                    "price_paisa": 100_00,
                    "stock": 1000,
                }
                for n in range(count)
            ],
        )
        db.session.commit()


def add_past_orders(app, count: int) -> None:
    """Fill the order history quickly: paid orders, each with an item and events."""
    with app.app_context():
        product_id = db.session.scalar(db.select(Product.id).limit(1))
        db.session.execute(
            insert(Order),
            [
                {
                    "purchase_order_id": f"past-{n}",
                    "pidx": f"past-pidx-{n}",
                    "status": OrderStatus.PAID,
                    "customer_name": "Past Buyer",
                    "customer_email": "past@example.com",
                    "customer_phone": "9812345678",
                    "total_paisa": 200_00,
                }
                for n in range(count)
            ],
        )
        order_ids = db.session.scalars(db.select(Order.id)).all()
        db.session.execute(
            insert(OrderItem),
            [
                {
                    "order_id": order_id,
                    "product_id": product_id,
                    "name": "Jordan Air",
                    "unit_price_paisa": 200_00,
                    "quantity": 1,
                }
                for order_id in order_ids
            ],
        )
        db.session.execute(
            insert(PaymentEvent),
            [
                {"order_id": order_id, "kind": kind}
                for order_id in order_ids
                for kind in ("order_created", "status:paid")
            ],
        )
        db.session.commit()


def buyer_journey(shop, lines: int) -> dict[str, list]:
    """Buy one of each of the first `lines` products; return each page's statements."""
    with shop.app.app_context():
        product_ids = db.session.scalars(
            db.select(Product.id).order_by(Product.id).limit(lines)
        ).all()
    for product_id in product_ids:
        added = shop.client.post(
            "/cart/add", data={"product_id": product_id, "quantity": 1}
        )
        assert added.status_code == 303

    statements = {}

    def visit(page_name, request):
        with recorded_statements(shop.app) as sent:
            response = request()
        statements[page_name] = sent
        return response

    assert (
        visit("catalog, first visit", lambda: shop.client.get("/")).status_code == 200
    )
    assert visit("catalog", lambda: shop.client.get("/")).status_code == 200
    cart = visit("cart", lambda: shop.client.get("/cart"))
    assert cart.text.count('<tr data-product-id="') == lines
    assert visit("checkout", shop.checkout).status_code == 303

    order = shop.latest_order()
    return_url = shop.sandbox.pay(order.payment_url)
    assert visit("return", lambda: shop.come_back(return_url)).status_code == 303
    page = visit(
        "order page", lambda: shop.client.get(f"/orders/{order.purchase_order_id}")
    )
    assert 'data-order-status="paid"' in page.text
    items = page.text.split('<table class="order-items stacked">')[1].split("</table>")[
        0
    ]
    assert items.count('<tr><th scope="row"') == lines
    return statements


@pytest.fixture
def big_shop(app, shop):
    """The shop with 20 more products than the sample catalog."""
    add_products(app, 20)
    return shop


@pytest.mark.parametrize("past_orders", [10, 10_000])
@pytest.mark.parametrize("lines", [1, 20])
def test_each_page_sends_a_fixed_number_of_statements(big_shop, lines, past_orders):
    add_past_orders(big_shop.app, past_orders)

    statements = buyer_journey(big_shop, lines)

    counts = {page: len(sent) for page, sent in statements.items()}
    assert counts == STATEMENTS_BY_DATABASE[database_name(big_shop.app)]


def test_on_sqlite_only_transactions_that_write_wait_for_the_write_lock(big_shop):
    # BEGIN IMMEDIATE takes SQLite's one write lock up front (see
    # database.allow_concurrent_sqlite). The return's first transaction only
    # reads the order before the lookup: it must not queue behind writers.
    if database_name(big_shop.app) != "sqlite":
        pytest.skip("SQLite's BEGIN statements")

    statements = buyer_journey(big_shop, 3)

    def begins(page):
        return [sql for sql, _ in statements[page] if sql.startswith("BEGIN")]

    assert begins("catalog") == ["BEGIN"]
    assert begins("checkout") == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]
    assert begins("return") == ["BEGIN", "BEGIN IMMEDIATE"]
    assert begins("order page") == ["BEGIN"]


def test_order_lookups_use_an_index_not_a_table_scan(big_shop):
    if database_name(big_shop.app) != "sqlite":
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN")
    add_past_orders(big_shop.app, 10_000)

    statements = buyer_journey(big_shop, 3)

    with big_shop.app.app_context():
        connection = db.session.connection()
        for page in ("return", "order page"):
            for sql, parameters in statements[page]:
                plan = connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {sql}", parameters
                ).all()
                # A SELECT of subqueries alone reads no table: SCAN CONSTANT ROW.
                scans = [
                    step.detail
                    for step in plan
                    if step.detail.startswith("SCAN")
                    and step.detail != "SCAN CONSTANT ROW"
                ]
                assert not scans, (page, sql)


def test_pidx_and_purchase_order_id_are_unique_so_indexed(app):
    # Both SQLite and PostgreSQL back a unique constraint with an index.
    with app.app_context():
        unique = inspect(db.engine).get_unique_constraints("orders")
    assert {tuple(constraint["column_names"]) for constraint in unique} >= {
        ("pidx",),
        ("purchase_order_id",),
    }


# --- The one-statement stock reservation is still all or nothing ------------


def stocks(shop) -> dict[str, int]:
    with shop.app.app_context():
        return dict(db.session.execute(db.select(Product.slug, Product.stock)).all())


@contextmanager
def sold_elsewhere(app, slug: str, left: int):
    """Just before checkout reserves stock, another buyer leaves only `left` of `slug`.

    The other buyer's UPDATE runs on the shop's own connection, inside its
    transaction, right before the reservation: the race, made certain.
    """

    def other_buyer(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE product SET stock=(product.stock -"):
            conn.execute(update(Product).where(Product.slug == slug).values(stock=left))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", other_buyer)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", other_buyer)


def test_one_line_sold_out_meanwhile_sells_nothing_and_names_it(shop):
    for slug in ("jordan-air", "dslr-camera", "dhaka-topi"):
        assert shop.add(slug, 2).status_code == 303
    before = stocks(shop)

    with sold_elsewhere(shop.app, "dslr-camera", left=1):
        page = shop.checkout()

    assert page.status_code == 409
    assert "Sorry, DSLR Camera just sold out." in page.text
    # The rollback undid the whole transaction, the other buyer's UPDATE too.
    assert stocks(shop) == before
    assert shop.latest_order() is None


def test_a_canceled_order_puts_every_line_back(shop):
    before = stocks(shop)
    order = shop.start(("jordan-air", 2), ("dslr-camera", 1), ("dhaka-topi", 3))
    assert stocks(shop)["dhaka-topi"] == before["dhaka-topi"] - 3

    page = shop.come_back(shop.sandbox.cancel(order.payment_url))

    assert page.status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.CANCELED
    assert stocks(shop) == before
