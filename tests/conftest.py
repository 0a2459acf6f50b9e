"""Fixtures: the Khalti sandbox served over real HTTP, and a fresh shop per test.

The shop reaches the sandbox exactly as it would reach Khalti: through
KHALTI_BASE_URL, over HTTP. Nothing in `requests` is mocked.
"""

import os
import re
import secrets
import threading
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import create_engine, update
from sqlalchemy.orm import selectinload
from werkzeug.serving import make_server

import app as shop_module
import sandbox
from models import Order, Product, db, seed_catalog

# Anonymous traffic's limits, raised for tests that buy over and over.
ROOMY_LIMITS = {
    "CHECKOUT_RATE_LIMIT": "100000 per minute",
    "MAX_UNPAID_ORDERS": 100_000,
    "MAX_UNITS_PER_PRODUCT": 100_000,
}

SANDBOX_CREDENTIALS = {"mobile": "9800000001", "mpin": "1111", "otp": "987654"}


class ServedSandbox:
    """sandbox.py on a free loopback port, with its test controls."""

    def __init__(self, config: dict | None = None):
        self.app = sandbox.create_app({"TESTING": True, **(config or {})})
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.api_url = f"{self.url}/api/v2/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()

    def reset(self) -> None:
        requests.post(f"{self.url}/sandbox/reset", timeout=5).raise_for_status()

    def force(self, pidx: str, status: str, **fields) -> None:
        """Make the sandbox's lookup answer `status` for this payment."""
        response = requests.post(
            f"{self.url}/sandbox/payments/{pidx}",
            json={"status": status, **fields},
            timeout=5,
        )
        response.raise_for_status()

    def fault(self, endpoint: str, fault: str, seconds: float | None = None) -> None:
        body = {"endpoint": endpoint, "fault": fault}
        if seconds is not None:
            body["seconds"] = seconds
        requests.post(
            f"{self.url}/sandbox/faults", json=body, timeout=5
        ).raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/sandbox/stats", timeout=5).json()

    def record(self, pidx: str) -> dict:
        return requests.get(f"{self.url}/sandbox/payments/{pidx}", timeout=5).json()

    def pay(self, payment_url: str, **credentials) -> str:
        """Pay on the sandbox's page as a buyer would; return the return URL."""
        pidx = payment_url.split("pidx=")[1]
        given = SANDBOX_CREDENTIALS | credentials
        login = requests.post(
            f"{self.url}/pay",
            data={"pidx": pidx, "mobile": given["mobile"], "mpin": given["mpin"]},
            timeout=5,
        )
        assert login.status_code == 200, login.text
        confirm = requests.post(
            f"{self.url}/confirm",
            data={"pidx": pidx, "otp": given["otp"]},
            allow_redirects=False,
            timeout=5,
        )
        assert confirm.status_code == 302, confirm.text
        return confirm.headers["Location"]

    def cancel(self, payment_url: str) -> str:
        pidx = payment_url.split("pidx=")[1]
        response = requests.post(
            f"{self.url}/cancel", data={"pidx": pidx}, allow_redirects=False, timeout=5
        )
        assert response.status_code == 302, response.text
        return response.headers["Location"]


@pytest.fixture(scope="session")
def served_sandbox():
    served = ServedSandbox()
    yield served
    served.stop()


@pytest.fixture
def khalti_sandbox(served_sandbox):
    """The shared sandbox, emptied of payments and faults for each test."""
    served_sandbox.reset()
    return served_sandbox


@pytest.fixture
def database_url(tmp_path):
    """TEST_DATABASE_URL (PostgreSQL, emptied here) or a fresh SQLite file."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_engine(url)
    # Every table, the shop's and any other test's (the example's payments,
    # alembic_version): a migration test compares the whole database.
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    return url


@pytest.fixture
def make_app(database_url, khalti_sandbox, tmp_path):
    """Build a shop on an empty database, talking to the sandbox.

    Its tables are made from the models, and the sample products added,
    unless create_tables=False (the tests of migrations make their own).
    """
    apps = []

    def make(create_tables=True, **config):
        app = shop_module.create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test",
                "SQLALCHEMY_DATABASE_URI": database_url,
                "WTF_CSRF_ENABLED": False,
                "KHALTI_SECRET_KEY": None,
                "KHALTI_BASE_URL": khalti_sandbox.api_url,
                "KHALTI_TIMEOUT": (2, 2),
                "PICTURE_FOLDER": str(tmp_path / "pictures"),
                # Tests buy many times from one address and one browser; the
                # limits' own tests (test_anonymous_limits.py) set them low.
                **ROOMY_LIMITS,
                **config,
            }
        )
        if create_tables:
            with app.app_context():
                db.create_all()
                seed_catalog()
        apps.append(app)
        return app

    yield make
    # Close the pooled connections, or PostgreSQL runs out of them.
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def path_of(url: str) -> str:
    """The path and query of an absolute URL, for the Flask test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class Shop:
    """What a buyer does, in a few words per step (like flaskr's AuthActions)."""

    def __init__(self, app, client, khalti_sandbox):
        self.app = app
        self.client = client
        self.sandbox = khalti_sandbox

    def product(self, slug: str) -> Product:
        with self.app.app_context():
            return db.session.scalar(db.select(Product).where(Product.slug == slug))

    def set_product(self, slug: str, **values) -> None:
        with self.app.app_context():
            db.session.execute(
                update(Product).where(Product.slug == slug).values(**values)
            )
            db.session.commit()

    def stock(self, slug: str) -> int:
        return self.product(slug).stock

    def add(self, slug: str, quantity: int = 1):
        return self.client.post(
            "/cart/add",
            data={"product_id": self.product(slug).id, "quantity": quantity},
        )

    def checkout_token(self) -> str:
        """Open the checkout page, as a buyer does; return its form's token."""
        page = self.client.get("/checkout")
        return re.search(r'name="checkout_token"[^>]* value="([^"]+)"', page.text)[1]

    def checkout(self, **fields):
        """Submit the checkout form, by default as a newly opened one.

        The new form's token is made here, as the page would make it, so that
        a test of a cart the page refuses still reaches the POST.
        """
        details = {"name": "Sita Sharma", "email": "sita@example.com"}
        details["phone"] = "9812345678"
        details["checkout_token"] = secrets.token_urlsafe(16)
        return self.client.post("/checkout", data=details | fields)

    def start(self, *items: tuple[str, int]) -> Order:
        """Fill the cart and check out; return the order awaiting payment."""
        for slug, quantity in items or [("jordan-air", 1)]:
            assert self.add(slug, quantity).status_code == 303
        response = self.checkout()
        assert response.status_code == 303, response.text
        return self.latest_order()

    def come_back(self, return_url: str):
        return self.client.get(path_of(return_url))

    def buy(self, *items: tuple[str, int]) -> Order:
        """The whole happy path; return the paid order."""
        order = self.start(*items)
        response = self.come_back(self.sandbox.pay(order.payment_url))
        assert response.status_code == 303, response.text
        return self.order(order.purchase_order_id)

    def latest_order(self) -> Order:
        with self.app.app_context():
            return db.session.scalar(db.select(Order).order_by(Order.id.desc()))

    def order(self, purchase_order_id: str) -> Order:
        with self.app.app_context():
            # Load the events and items now: the session closes with the context.
            return db.session.scalar(
                db.select(Order)
                .where(Order.purchase_order_id == purchase_order_id)
                .options(selectinload(Order.events), selectinload(Order.items))
            )

    def events(self, order: Order) -> list[str]:
        return [event.kind for event in self.order(order.purchase_order_id).events]


@pytest.fixture
def shop(app, client, khalti_sandbox):
    return Shop(app, client, khalti_sandbox)


def pytest_collection_modifyitems(items):
    """Run the gunicorn load and crash tests last: the quick tests report first.

    (test_sandbox's connection-reset test also fails, getting a FIN instead
    of an RST, when it runs after them in the same process.)
    """
    items.sort(key=lambda item: item.get_closest_marker("load") is not None)


# --- The back office ---------------------------------------------------------

STAFF_EMAIL = "staff@example.com"
STAFF_PASSWORD = "staff-password-never-shown"


class BackOffice:
    """What a staff member does, in a few words per step."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def create_staff(self, email=STAFF_EMAIL, password=STAFF_PASSWORD):
        result = self.app.test_cli_runner().invoke(
            args=["create-staff", email], input=f"{password}\n"
        )
        assert result.exit_code == 0, result.output
        return result

    def log_in(self, email=STAFF_EMAIL, password=STAFF_PASSWORD, next=None):
        url = "/admin/login" + (f"?next={next}" if next else "")
        return self.client.post(url, data={"email": email, "password": password})

    def refund(self, order: Order, amount: str = "", reason: str = "", token=None):
        """Open the order's page and submit its refund form."""
        token = token or self.refund_token(order)
        return self.client.post(
            f"/admin/orders/{order.purchase_order_id}/refund",
            data={"token": token, "amount": amount, "reason": reason},
        )

    def refund_everything(self, order: Order):
        """Press "Refund everything left", which names the amount it sends."""
        page = self.client.get(f"/admin/orders/{order.purchase_order_id}")
        form = page.text[page.text.index("data-refund-everything") :]
        token = re.search(r'name="token" value="([^"]+)"', form)[1]
        amount = re.search(r'name="amount" value="([^"]+)"', form)[1]
        return self.client.post(
            f"/admin/orders/{order.purchase_order_id}/refund",
            data={"token": token, "amount": amount},
        )

    def refund_token(self, order: Order) -> str:
        page = self.client.get(f"/admin/orders/{order.purchase_order_id}")
        assert page.status_code == 200
        return re.search(r'name="token" type="hidden" value="([^"]+)"', page.text)[1]


@pytest.fixture
def back_office(app, client):
    """A staff account, logged in with the shop's `client`."""
    office = BackOffice(app, client)
    office.create_staff()
    assert office.log_in().status_code == 303
    return office
