"""Browser fixtures: Debian's Chromium clicking through the shop and the sandbox.

Both run as real servers on free loopback ports, the shop with CSRF on as in
production and a fresh SQLite database per test, pointed at the sandbox through
KHALTI_BASE_URL. The sandbox is the session-wide `khalti_sandbox` from
tests/conftest.py. Playwright drives /usr/bin/chromium (Debian's package);
its own browser download is not used.
"""

import os
import secrets
import threading
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright
from werkzeug.serving import make_server

import app as shop_module
from models import Order, Product, db, seed_catalog
from tests.conftest import ROOMY_LIMITS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Khalti's published sandbox credentials, as a buyer would type them.
KHALTI_ID, MPIN, OTP = "9800000001", "1111", "987654"

# Page loads are local; anything slower than this is a bug, not a slow machine.
expect.set_options(timeout=10_000)


class ServedShop:
    """The shop on a free loopback port, on its own SQLite database."""

    def __init__(self, database: Path, khalti_base_url: str):
        self.app = shop_module.create_app(
            {
                "SECRET_KEY": secrets.token_hex(),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
                "KHALTI_SECRET_KEY": None,
                "KHALTI_BASE_URL": khalti_base_url,
                "KHALTI_TIMEOUT": (2, 5),
                "PICTURE_FOLDER": str(database.parent / "pictures"),
                **ROOMY_LIMITS,
            }
        )
        with self.app.app_context():
            db.create_all()
            seed_catalog()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        # Khalti's return_url is built from the request's host: always 127.0.0.1.
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        with self.app.app_context():
            db.engine.dispose()

    def product(self, slug: str) -> Product:
        with self.app.app_context():
            return db.session.scalar(db.select(Product).where(Product.slug == slug))

    def latest_order(self) -> Order:
        with self.app.app_context():
            return db.session.scalar(db.select(Order).order_by(Order.id.desc()))

    def event_kinds(self, order: Order) -> list[str]:
        with self.app.app_context():
            order = db.session.get(Order, order.id)
            return [event.kind for event in order.events]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium; missing Chromium fails in CI and skips elsewhere."""
    if not CHROMIUM.exists():
        message = f"No Chromium at {CHROMIUM}; run: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def served_shop(tmp_path, khalti_sandbox):
    shop = ServedShop(tmp_path / "shop.db", khalti_sandbox.api_url)
    yield shop
    shop.stop()


@pytest.fixture
def page(browser, served_shop) -> Page:
    """A fresh browser profile (no cookies) with the shop's catalog open."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(served_shop.url)
    yield page
    context.close()


@pytest.fixture(scope="module")
def assert_accessible():
    """Run axe-core in a page; fail on any violation it rates serious or critical."""
    axe = Axe()

    def check(page: Page) -> None:
        results = axe.run(page)
        blocking = [
            violation
            for violation in results.response["violations"]
            if violation["impact"] in {"serious", "critical"}
        ]
        assert not blocking, results.generate_report()

    return check
