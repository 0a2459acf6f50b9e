"""The back office under gunicorn (4 workers): throttling shared through Redis,
and one refund however many times its form arrives at once."""

import os
import re
import shutil
import subprocess
import time

import pytest
import redis
import requests
from conftest import STAFF_EMAIL, STAFF_PASSWORD, BackOffice
from served_shop import KHALTI_KEY, SECRET_KEY, Buyer, ServedShop, free_port
from test_concurrency import race, start_payment

from models import OrderStatus, Refund, db

pytestmark = pytest.mark.load


@pytest.fixture
def redis_url(tmp_path):
    """Debian's redis-server on a free loopback port, in a temporary folder."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "No redis-server; run: apt-get install redis-server"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    server = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    server.terminate()
    server.wait(timeout=10)


class ServedShopWith(ServedShop):
    """The gunicorn-served shop, with a few more environment variables."""

    def __init__(self, *args, extra_env: dict):
        super().__init__(*args)
        self.extra_env = extra_env

    @property
    def env(self) -> dict:
        return super().env | self.extra_env


@pytest.fixture
def served(app, database_url, khalti_sandbox, redis_url, tmp_path):
    BackOffice(app, None).create_staff()
    shop = ServedShopWith(
        database_url,
        khalti_sandbox.api_url,
        tmp_path / "shop.log",
        # As behind nginx: the client's address comes from X-Forwarded-For.
        extra_env={"RATELIMIT_STORAGE_URI": redis_url, "FORWARDED_ALLOW": "1"},
    )
    shop.start()
    yield shop
    shop.stop()
    log = shop.log()
    assert "Traceback" not in log, log
    for secret in (SECRET_KEY, KHALTI_KEY, STAFF_PASSWORD):
        assert secret not in log


def log_in(served, password: str, address="192.0.2.10") -> requests.Response:
    """A fresh browser (new cookies, new connection) tries to log in, from
    `address` as the trusted proxy in front reports it."""
    staff = Buyer(served.url)
    staff.http.headers["X-Forwarded-For"] = address
    staff.get("/admin/login")
    return staff.post("/admin/login", {"email": STAFF_EMAIL, "password": password})


def test_the_sixth_failed_login_is_429_whichever_worker_answers(served):
    # Five at once, so they land on different workers.
    first_five = race(5, lambda _: log_in(served, "wrong-password-123"))
    assert [response.status_code for response in first_five] == [401] * 5

    sixth = log_in(served, "wrong-password-123")
    right_password = [log_in(served, STAFF_PASSWORD) for _ in range(4)]

    assert sixth.status_code == 429
    assert "Too many login attempts" in sixth.text
    assert int(sixth.headers["Retry-After"]) > 0
    assert {response.status_code for response in right_password} == {429}


def test_an_attackers_failures_never_lock_the_staff_member_out(served):
    attacker = "203.0.113.66"
    # One after another: a limit is tested before a request and counted
    # after it, so failures racing each other can each pass the test.
    failures = [log_in(served, "wrong-password-123", attacker) for _ in range(10)]
    assert [response.status_code for response in failures] == [401] * 5 + [429] * 5
    assert log_in(served, STAFF_PASSWORD, attacker).status_code == 429

    # The staff member, from their own address, gets in at once.
    assert log_in(served, STAFF_PASSWORD, "198.51.100.7").status_code == 303


def test_ten_identical_refund_forms_at_once_make_one_refund(served, shop):
    buyer = Buyer(served.url)
    payment_url = start_payment(served, shop, "jordan-air")
    return_url = shop.sandbox.pay(payment_url)
    assert buyer.come_back(return_url).status_code == 303
    order = shop.latest_order()
    assert order.status == OrderStatus.PAID

    staff = Buyer(served.url)
    staff.get("/admin/login")
    login = staff.post(
        "/admin/login", {"email": STAFF_EMAIL, "password": STAFF_PASSWORD}
    )
    assert login.status_code == 303
    page = staff.get(f"/admin/orders/{order.purchase_order_id}")
    assert STAFF_PASSWORD not in page.text
    form = {
        "csrf_token": staff.token,
        "token": re.search(r'name="token" type="hidden" value="([^"]+)"', page.text)[1],
        "amount": "200.00",  # the order's total, as "Refund everything" sends
        "reason": "Ten clicks",
    }

    def submit(_):
        browser = requests.Session()
        browser.cookies.update(staff.http.cookies)
        return browser.post(
            f"{served.url}/admin/orders/{order.purchase_order_id}/refund",
            data=form,
            allow_redirects=False,
            timeout=30,
        )

    responses = race(10, submit)

    assert [response.status_code for response in responses] == [303] * 10
    assert shop.sandbox.stats()["refund"] == 1
    with shop.app.app_context():
        assert db.session.scalar(db.select(db.func.count(Refund.id))) == 1
    assert shop.order(order.purchase_order_id).status == OrderStatus.REFUNDED
    assert shop.events(order).count("refund_request") == 1
