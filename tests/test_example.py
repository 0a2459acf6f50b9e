"""examples/minimal.py, served by `flask run` as a reader would, paid on the sandbox.

Every test drives the example over real HTTP, the way a browser does: it
takes the CSRF token from the page, follows the redirect to the sandbox's
payment page and comes back on the URL the sandbox sends it to.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import ServedSandbox
from served_shop import free_port
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent


class ServedExample:
    """`flask --app examples/minimal.py run` on a free port, logging to a file."""

    def __init__(self, tmp_path: Path, khalti_api_url: str, khalti_key: str):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log_path = tmp_path / "example.log"
        self.env = os.environ | {
            "PYTHONPATH": str(ROOT),  # for `import khalti`
            "SECRET_KEY": "example-test-secret",
            "KHALTI_SECRET_KEY": khalti_key,
            "KHALTI_BASE_URL": khalti_api_url,
            "DATABASE_URL": example_database_url(tmp_path),
            "SITE_URL": self.url,  # return_url is built on it, not on Host
        }
        self.process = None

    def start(self) -> "ServedExample":
        port = self.url.rsplit(":", 1)[1]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.flask_args("run", "--port", port),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                requests.get(self.url + "/", timeout=2)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"the example did not start:\n{self.log()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def flask_args(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "flask", "--app", "examples/minimal.py", *args]

    def command(self, *args: str) -> subprocess.CompletedProcess:
        """Run one of the example's `flask` commands against the same database."""
        return subprocess.run(
            self.flask_args(*args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def fulfilments(self, pidx: str) -> int:
        """How many times the example said to fulfil this payment's order."""
        return self.log().count(f"Paid: {pidx}.")

    def payment_count(self) -> int:
        engine = create_engine(self.env["DATABASE_URL"])
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM payments")).scalar()
        engine.dispose()
        return count


def example_database_url(tmp_path: Path) -> str:
    """TEST_DATABASE_URL (PostgreSQL) without the example's table, or SQLite."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'payments.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS payments"))
    engine.dispose()
    return url


class Browser:
    """One visitor of the example: its cookies and the page it is on."""

    def __init__(self, example: ServedExample):
        self.example = example
        self.http = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.http.get(url, timeout=10)

    def pay_button(self) -> requests.Response:
        """Open the example and press its Pay button; return the answer unfollowed."""
        page = self.get(self.example.url + "/")
        return self.post_form(page, "/pay")

    def start_payment(self) -> str:
        """Press Pay; return the sandbox payment URL the example redirects to."""
        response = self.pay_button()
        assert response.status_code == 303, response.text
        return response.headers["Location"]

    def check_again(self, page: requests.Response) -> requests.Response:
        action = re.search(r'action="(/payments/\w+/check)"', page.text)[1]
        return self.post_form(page, action, allow_redirects=True)

    def post_form(self, page, action: str, allow_redirects=False):
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        return self.http.post(
            self.example.url + action,
            data={"csrf_token": token},
            allow_redirects=allow_redirects,
            timeout=10,
        )


def pidx_of(payment_url: str) -> str:
    return payment_url.split("pidx=")[1]


def status_on(page: requests.Response) -> str:
    """The payment status the example's page shows."""
    return re.search(r"<strong>(\w+)</strong>", page.text)[1]


@pytest.fixture
def example(tmp_path, khalti_sandbox):
    served = ServedExample(tmp_path, khalti_sandbox.api_url, "any-key").start()
    yield served
    served.stop()


@pytest.fixture
def browser(example):
    return Browser(example)


def test_example_paid_payment_is_confirmed_by_lookup(browser, example, khalti_sandbox):
    payment_url = browser.start_payment()
    assert payment_url.startswith(khalti_sandbox.url + "/?pidx=")
    pidx = pidx_of(payment_url)
    sent = khalti_sandbox.record(pidx)["request"]
    assert sent["amount"] == 10000  # Rs 100, in paisa, from the server
    assert sent["return_url"] == example.url + "/khalti/return"

    return_url = khalti_sandbox.pay(payment_url)
    assert return_url.startswith(example.url + f"/khalti/return?pidx={pidx}&")
    page = browser.get(return_url)

    assert page.url == example.url + f"/payments/{pidx}"
    assert status_on(page) == "paid"
    assert "Check again" not in page.text
    assert example.fulfilments(pidx) == 1


def test_example_canceled_payment_is_recorded_and_not_fulfilled(
    browser, example, khalti_sandbox
):
    payment_url = browser.start_payment()
    return_url = khalti_sandbox.cancel(payment_url)
    assert "status=User+canceled" in return_url

    page = browser.get(return_url)

    assert status_on(page) == "canceled"
    assert "Check again" not in page.text
    assert example.fulfilments(pidx_of(payment_url)) == 0


def test_example_pending_then_paid_with_check_again(browser, example, khalti_sandbox):
    payment_url = browser.start_payment()
    pidx = pidx_of(payment_url)
    # The sandbox page's "Pending" control: Khalti sends the buyer back unpaid.
    simulated = requests.post(
        f"{khalti_sandbox.url}/sandbox/simulate",
        data={"pidx": pidx, "outcome": "Pending"},
        allow_redirects=False,
        timeout=5,
    )
    page = browser.get(simulated.headers["Location"])
    assert status_on(page) == "pending"
    assert "Check again" in page.text

    khalti_sandbox.force(pidx, "Completed")
    page = browser.check_again(page)

    assert status_on(page) == "paid"
    assert example.fulfilments(pidx) == 1


def test_example_forged_callback_changes_nothing(browser, example, khalti_sandbox):
    payment_url = browser.start_payment()
    pidx = pidx_of(payment_url)
    forged = (
        f"{example.url}/khalti/return?pidx={pidx}&status=Completed"
        "&transaction_id=FakeFakeFake&amount=10000&total_amount=10000"
    )

    page = browser.get(forged)

    assert status_on(page) == "initiated"  # lookup says Initiated: not paid
    assert "Check again" in page.text
    assert example.fulfilments(pidx) == 0
    assert browser.get(f"{example.url}/khalti/return?pidx=NoSuchPidx").status_code == (
        404
    )
    assert browser.get(f"{example.url}/khalti/return?status=Completed").status_code == (
        400
    )
    for hostile in ("%00", "x%27%20OR%201%3D1", "a" * 300):
        assert browser.get(f"{example.url}/payments/{hostile}").status_code == 404
        page = browser.get(f"{example.url}/khalti/return?pidx={hostile}")
        assert page.status_code == 404


def test_example_amount_mismatch_is_held_for_review(browser, example, khalti_sandbox):
    payment_url = browser.start_payment()
    pidx = pidx_of(payment_url)
    khalti_sandbox.force(pidx, "Completed", total_amount=1000)  # Rs 10, not Rs 100

    page = browser.get(f"{example.url}/khalti/return?pidx={pidx}&status=Completed")

    assert status_on(page) == "needs_review"
    assert "Please do not\n     pay again" in page.text
    assert example.fulfilments(pidx) == 0
    assert f"Needs review: {pidx}. Khalti says Completed for 1000 paisa" in (
        example.log()
    )


def test_example_reload_asks_nobody_and_fulfils_once(browser, example, khalti_sandbox):
    payment_url = browser.start_payment()
    return_url = khalti_sandbox.pay(payment_url)
    assert status_on(browser.get(return_url)) == "paid"
    lookups = khalti_sandbox.stats()["lookup"]

    for _ in range(3):  # reload, back button, a second tab
        assert status_on(browser.get(return_url)) == "paid"

    assert khalti_sandbox.stats()["lookup"] == lookups
    assert example.fulfilments(pidx_of(payment_url)) == 1


def test_example_lookup_outage_changes_nothing_until_checked_again(
    browser, example, khalti_sandbox
):
    payment_url = browser.start_payment()
    return_url = khalti_sandbox.pay(payment_url)
    khalti_sandbox.fault("lookup", "http_503")

    page = browser.get(return_url)
    assert page.status_code == 502
    assert "Khalti did not answer; nothing changed." in page.text
    # Khalti's own error ("... (HTTP 503).") goes to the log, not the page.
    assert "HTTP 503" not in page.text
    assert f"Lookup of {pidx_of(payment_url)} failed" in example.log()
    assert status_on(page) == "initiated"

    requests.delete(f"{khalti_sandbox.url}/sandbox/faults", timeout=5)
    assert status_on(browser.check_again(page)) == "paid"


def test_example_refused_key_shows_an_error_and_saves_nothing(tmp_path):
    sandbox = ServedSandbox({"KHALTI_SECRET_KEY": "the-right-key"})
    example = ServedExample(tmp_path, sandbox.api_url, "a-wrong-key").start()
    try:
        response = Browser(example).pay_button()
        assert response.status_code == 502
        # A plain sentence for the buyer; Khalti's words only in the log.
        assert "Khalti could not start the payment." in response.text
        assert "Invalid token" not in response.text
        assert "the-right-key" not in response.text
        assert "Khalti did not start a payment: Invalid token." in example.log()
        assert example.payment_count() == 0
    finally:
        example.stop()
        sandbox.stop()


def test_example_reconcile_settles_payments_nobody_came_back_for(
    browser, example, khalti_sandbox
):
    paid = pidx_of(browser.start_payment())
    khalti_sandbox.force(paid, "Completed")  # paid, then the tab was closed
    waiting = pidx_of(browser.start_payment())

    recent = example.command("reconcile", "--older-than", "5")
    assert recent.stdout == "Checked 0 open payments.\n", recent.stderr

    first = example.command("reconcile")
    assert first.returncode == 0, first.stderr
    assert f"{paid} paid\n" in first.stdout
    assert f"{waiting} initiated\n" in first.stdout
    assert "Checked 2 open payments." in first.stdout
    second = example.command("reconcile")
    assert "Checked 1 open payments." in second.stdout
    assert status_on(browser.get(f"{example.url}/payments/{paid}")) == "paid"


def test_example_return_url_ignores_the_host_header(browser, example, khalti_sandbox):
    page = browser.get(example.url + "/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
    # requests leaves the cookie out when Host names another site: send it.
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies)
    response = browser.http.post(
        example.url + "/pay",
        data={"csrf_token": token},
        headers={"Host": "attacker.example", "Cookie": cookie},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 303, response.text
    sent = khalti_sandbox.record(pidx_of(response.headers["Location"]))["request"]
    assert sent["return_url"] == example.url + "/khalti/return"
    assert sent["website_url"] == example.url + "/"


def test_example_open_payment_links_back_to_khalti_until_settled(
    browser, example, khalti_sandbox
):
    payment_url = browser.start_payment()
    pidx = pidx_of(payment_url)
    expires_at = khalti_sandbox.record(pidx)["expires_at"]

    page = browser.get(f"{example.url}/payments/{pidx}")
    assert f'<a href="{payment_url}">Continue to payment</a>' in page.text
    # Stored in UTC: the sandbox's +05:45 time, converted.
    assert "UTC" in page.text and expires_at[:4] in page.text

    page = browser.get(khalti_sandbox.pay(payment_url))
    assert status_on(page) == "paid"
    assert "Continue to payment" not in page.text
