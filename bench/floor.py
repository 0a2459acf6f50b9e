"""The floors: the least the catalog, a checkout and a return can cost.

Not the shop, and not a way to write one: a yardstick for `make bench`. It
does only the work that issue 9 says must stay, on the shop's own stack
(Flask, Flask-WTF's CSRF check, a signed session, SQLAlchemy, requests
through the shop's Khalti client) with every shortcut a real shop could not
take: SQLAlchemy Core and plain SQL instead of the ORM, no form validation
beyond the CSRF token, no log lines, no templates, no error handling.

Per checkout POST, as the shop: read the cart's prices; insert the order,
its items and a timeline step, take the stock with a conditional UPDATE,
commit; call initiate (with only the fields Khalti requires); store the
pidx with a conditional UPDATE and a timeline step, commit; note the order
in the session; redirect to Khalti. On PostgreSQL the product rows are
locked in id order first, as the shop does. Its tables are its own
(floor_*), in the database the shop uses.

Per return (GET /return?pidx=...), as the shop: find the order by its pidx,
commit before asking Khalti, call lookup, then in one transaction record the
callback and the answer and change the status with a conditional UPDATE
(only to paid here, for Completed at the order's total); redirect.

Per catalog page (GET /), as the shop: read every visible product of the
shop's own product table, and draw each with its name, description, price,
stock and an add-to-cart form carrying the buyer's CSRF token, escaped by
Jinja; no layout around them.
"""

import json
import os
import secrets
import threading

from flask import Flask, redirect, render_template_string, request, session
from flask_wtf.csrf import CSRFProtect, generate_csrf
from sqlalchemy import create_engine, event, text

import khalti

TABLES = """
CREATE TABLE floor_products (id INTEGER PRIMARY KEY, price INTEGER,
    stock INTEGER);
CREATE TABLE floor_orders (id SERIAL PRIMARY KEY, token VARCHAR(32)
    UNIQUE, status VARCHAR(32), total INTEGER, pidx VARCHAR(64) UNIQUE);
CREATE TABLE floor_items (id SERIAL PRIMARY KEY, order_id INTEGER,
    product_id INTEGER, price INTEGER, quantity INTEGER);
CREATE TABLE floor_events (id SERIAL PRIMARY KEY, order_id INTEGER,
    kind VARCHAR(64), data TEXT);
"""
CART = {1: 1, 2: 1, 3: 1}  # product id: quantity, 3 lines like the bench's cart

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "")
CSRFProtect(app)
engine = create_engine(os.environ.get("DATABASE_URL", "sqlite://"))
sqlite = engine.dialect.name == "sqlite"
clients = threading.local()


def khalti_client() -> khalti.KhaltiClient:
    """This thread's Khalti client, as the shop keeps one per thread."""
    if not hasattr(clients, "client"):
        clients.client = khalti.KhaltiClient(
            os.environ.get("KHALTI_SECRET_KEY", ""),
            os.environ.get("KHALTI_BASE_URL", khalti.SANDBOX_BASE_URL),
        )
    return clients.client


if sqlite:

    @event.listens_for(engine, "connect")
    def configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=15000")

    @event.listens_for(engine, "begin")
    def begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_tables(url: str) -> None:
    """The floor's tables and 3 products; run once, before it is served."""
    floor_engine = create_engine(url)
    with floor_engine.begin() as connection:
        for statement in TABLES.split(";")[:-1]:
            if floor_engine.dialect.name == "sqlite":
                statement = statement.replace("SERIAL", "INTEGER")
            connection.exec_driver_sql(statement)
        connection.execute(
            text("INSERT INTO floor_products VALUES (:id, :price, 1000000000)"),
            [{"id": n, "price": 10000 * n} for n in CART],
        )
    floor_engine.dispose()


CATALOG = """{% for id, name, description, price, stock in products %}
<li><h2>{{ name }}</h2><p>{{ description }}</p><p>Rs {{ price // 100 }}.{{
"%02d" % (price % 100) }}</p><p>{{ stock }} in stock</p><form method="post"
action="/cart/add"><input type="hidden" name="csrf_token" value="{{ token }}">
<input type="hidden" name="product_id" value="{{ id }}"><input name="quantity"
type="number" value="1" min="1" max="{{ stock }}"><button>Add</button></form></li>
{% endfor %}"""


@app.get("/")
def catalog():
    """The catalog floor; its CSRF token also serves the checkout floor."""
    with engine.connect() as connection:
        products = connection.execute(
            text(
                "SELECT id, name, description, price_paisa, stock FROM product"
                " WHERE visible ORDER BY id"
            )
        ).all()
    return render_template_string(CATALOG, products=products, token=generate_csrf())


@app.post("/checkout")
def checkout():
    token = request.form["checkout_token"]
    with engine.begin() as connection:
        prices = dict(
            connection.execute(
                text("SELECT id, price FROM floor_products WHERE id IN (1, 2, 3)")
            ).all()
        )
        total = sum(prices[n] * quantity for n, quantity in CART.items())
        order_id = connection.scalar(
            text(
                "INSERT INTO floor_orders (token, status, total)"
                " VALUES (:token, 'created', :total) RETURNING id"
            ),
            {"token": token, "total": total},
        )
        connection.execute(
            text(
                "INSERT INTO floor_items (order_id, product_id, price, quantity)"
                " VALUES (:order, :product, :price, :quantity)"
            ),
            [
                {"order": order_id, "product": n, "price": prices[n], "quantity": q}
                for n, q in CART.items()
            ],
        )
        if not sqlite:
            connection.execute(
                text(
                    "SELECT id FROM floor_products WHERE id IN (1, 2, 3)"
                    " ORDER BY id FOR NO KEY UPDATE"
                )
            )
        connection.execute(
            text(
                "UPDATE floor_products SET stock = stock - 1"
                " WHERE id IN (1, 2, 3) AND stock >= 1"
            )
        )
        payload = {
            "return_url": request.host_url + "return",
            "website_url": request.host_url,
            "amount": total,
            "purchase_order_id": secrets.token_urlsafe(12),
            "purchase_order_name": "Floor order",
        }
        record(connection, order_id, "initiate_request", payload)
    payment = khalti_client().initiate(payload)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE floor_orders SET status = 'awaiting_payment', pidx = :pidx"
                " WHERE id = :order AND status = 'created'"
            ),
            {"pidx": payment.pidx, "order": order_id},
        )
        record(connection, order_id, "initiate_response", payment.raw)
    session["orders"] = [*session.get("orders", [])[-19:], order_id]
    return redirect(payment.payment_url, code=303)


@app.get("/return")
def payment_return():
    pidx = request.args["pidx"]
    with engine.begin() as connection:
        order_id, total = connection.execute(
            text("SELECT id, total FROM floor_orders WHERE pidx = :pidx"),
            {"pidx": pidx},
        ).one()
    lookup = khalti_client().lookup(pidx)
    with engine.begin() as connection:
        record(connection, order_id, "callback", request.args.to_dict())
        record(connection, order_id, "lookup_response", lookup.raw)
        if lookup.status == "Completed" and lookup.total_amount == total:
            connection.execute(
                text(
                    "UPDATE floor_orders SET status = 'paid'"
                    " WHERE id = :order AND status = 'awaiting_payment'"
                ),
                {"order": order_id},
            )
    return redirect(f"/orders/{order_id}", code=303)


def record(connection, order_id: int, kind: str, data: dict) -> None:
    connection.execute(
        text("INSERT INTO floor_events (order_id, kind, data) VALUES (:o, :k, :d)"),
        {"o": order_id, "k": kind, "d": json.dumps(data)},
    )
