"""Two app servers behind one nginx are one shop.

PostgreSQL (the database they share), Redis (the login throttle's counters),
two gunicorns started from the recipe (deploy/gunicorn.conf.py) on two ports,
and nginx with the `upstream` block of deploy/README.md's "More than one app
server" in front of them. nginx sends requests to the two in turn; the test's
site adds which one answered (X-Served-By) to see that both did.
"""

import re
import subprocess
import sys
import threading

import pytest
import requests
from conftest import STAFF_EMAIL, STAFF_PASSWORD, BackOffice
from served_shop import ROOT, Buyer, free_port
from sqlalchemy import make_url
from test_admin_load import ServedShopWith, redis_url  # noqa: F401 (a fixture)
from test_behind_nginx import Nginx, require

from models import OrderStatus

pytestmark = pytest.mark.load


def upstream_block(ports: list[int]) -> str:
    """The README's upstream block, with these ports."""
    readme = (ROOT / "deploy" / "README.md").read_text()
    section = readme.split("## More than one app server", 1)[1]
    block = re.search(r"```nginx\n(upstream shop_app \{.*?\n\})\n```", section, re.S)[1]
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
    return re.sub(r"(    server [^\n]*\n)+", servers, block)


class Shop:
    """nginx's address, and the two servers behind it."""

    def __init__(self, url: str, servers: list[ServedShopWith]):
        self.url = url
        self.servers = servers


@pytest.fixture
def two_servers(app, database_url, khalti_sandbox, redis_url, tmp_path):  # noqa: F811
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("several servers share one PostgreSQL: make test's second pass")
    require("nginx")
    BackOffice(app, None).create_staff()
    nginx_port = free_port()
    shop_url = f"http://127.0.0.1:{nginx_port}"
    servers = []
    for name in ("a", "b"):
        server = ServedShopWith(
            database_url,
            khalti_sandbox.api_url,
            tmp_path / f"server-{name}.log",
            extra_env={
                "RATELIMIT_STORAGE_URI": redis_url,
                "FORWARDED_ALLOW": "1",
                "SHOP_URL": shop_url,
            },
        )
        server.command = recipe_command
        servers.append(server.start(workers=1, threads=8))
    site = (
        upstream_block([int(s.url.rsplit(":", 1)[1]) for s in servers])
        + f"""
server {{
    listen 127.0.0.1:{nginx_port};
    location / {{
        proxy_pass http://shop_app;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        add_header X-Served-By $upstream_addr always;
    }}
}}
"""
    )
    (tmp_path / "nginx").mkdir()
    nginx = Nginx(tmp_path / "nginx", site)
    try:
        wait_for(shop_url + "/healthz")
        yield Shop(shop_url, servers)
    finally:
        nginx.stop()
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.log(), server.log()


def recipe_command(port: int, workers: int, threads: int) -> list[str]:
    return [
        *(
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "deploy/gunicorn.conf.py"),
        ),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        *("--threads", str(threads)),
    ]


def wait_for(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(url, timeout=5)
            return
        except requests.ConnectionError:
            threading.Event().wait(0.1)
    raise AssertionError(f"{url} did not answer")


class TracedBuyer(Buyer):
    """A browser that notes which server answered each of its requests."""

    def __init__(self, shop_url: str):
        super().__init__(shop_url)
        self.served_by = set()
        self.http.hooks["response"].append(
            lambda response, **_: self.served_by.add(response.headers["X-Served-By"])
        )


def test_a_purchase_whose_steps_two_servers_serve(two_servers, shop):
    buyer = TracedBuyer(two_servers.url)
    assert buyer.add(shop.product("jordan-air").id).status_code == 303
    checkout = buyer.checkout()
    assert checkout.status_code == 303, checkout.text
    back = buyer.come_back(shop.sandbox.pay(checkout.headers["Location"]))
    receipt = buyer.get(back.headers["Location"].removeprefix(two_servers.url))

    assert 'data-order-status="paid"' in receipt.text
    assert len(buyer.served_by) == 2


def test_one_checkout_form_sent_to_both_servers_at_once_is_one_order(two_servers, shop):
    buyer = Buyer(two_servers.url)
    buyer.add(shop.product("jordan-air").id)
    form = {"csrf_token": buyer.token, **buyer.checkout_form()}
    initiated = shop.sandbox.stats()["initiate"]

    def submit(server):
        browser = requests.Session()
        browser.cookies.update(buyer.http.cookies)
        answers[server.url] = browser.post(
            server.url + "/checkout", data=form, allow_redirects=False, timeout=30
        )

    answers = {}
    threads = [threading.Thread(target=submit, args=(s,)) for s in two_servers.servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    locations = {answer.headers.get("Location") for answer in answers.values()}
    assert [answer.status_code for answer in answers.values()] == [303, 303]
    assert len(locations) == 1
    assert shop.sandbox.stats()["initiate"] == initiated + 1
    assert shop.latest_order().checkout_token == form["checkout_token"]


def log_in(url: str, password: str) -> requests.Response:
    staff = Buyer(url)
    staff.get("/admin/login")
    return staff.post("/admin/login", {"email": STAFF_EMAIL, "password": password})


def test_failed_logins_are_counted_across_both_servers(two_servers):
    wrong = [log_in(two_servers.url, "wrong-password-123") for _ in range(5)]
    assert [answer.status_code for answer in wrong] == [401] * 5

    right = [log_in(two_servers.url, STAFF_PASSWORD) for _ in range(2)]

    assert [answer.status_code for answer in right] == [429, 429]


def test_a_session_ended_on_one_server_is_refused_by_the_other(two_servers):
    first, second = (server.url for server in two_servers.servers)
    staff = Buyer(first)
    staff.get("/admin/login")
    staff.post("/admin/login", {"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
    assert staff.get("/admin/").status_code == 200  # logged in, a new CSRF token
    copied = dict(staff.http.cookies)
    assert staff.post("/admin/logout").status_code == 303

    replay = requests.get(
        second + "/admin/orders", cookies=copied, allow_redirects=False, timeout=30
    )

    assert replay.status_code == 303
    assert "/admin/login" in replay.headers["Location"]


def test_a_price_changed_through_one_server_is_on_the_others_next_page(
    two_servers, shop
):
    first, second = (server.url for server in two_servers.servers)
    product = shop.product("jordan-air")
    assert second_catalog_price(second, product.id) == "20000"
    staff = Buyer(first)
    staff.get("/admin/login")
    staff.post("/admin/login", {"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
    page = staff.get(f"/admin/products/{product.id}").text
    form = {
        name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)[1]
        for name in ("name", "stock", "stock_shown")
    }
    form |= {"description": product.description, "visible": "y", "price": "215.50"}

    saved = staff.post(f"/admin/products/{product.id}", form)

    assert saved.status_code == 303, saved.text
    assert second_catalog_price(second, product.id) == "21550"


def second_catalog_price(server_url: str, product_id: int) -> str:
    catalog = requests.get(server_url + "/", timeout=30).text
    card = re.search(
        rf'data-product-id="{product_id}" data-price-paisa="(\d+)"', catalog
    )
    return card[1]


def test_two_reconcile_runs_at_once_change_each_order_once(two_servers, shop):
    paid = []
    for _ in range(3):
        buyer = Buyer(two_servers.url)
        buyer.add(shop.product("jordan-air").id)
        payment_url = buyer.checkout().headers["Location"]
        shop.sandbox.pay(payment_url)  # and the buyer never comes back
        paid.append(shop.latest_order())

    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "reconcile"],
            cwd=ROOT,
            env=server.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for server in two_servers.servers
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    for order in paid:
        assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
        assert shop.events(order).count("status:paid") == 1
