"""The shop under gunicorn (several processes and threads), and a buyer over HTTP.

Load, race and crash tests use this instead of Flask's test client: only a
real server with several worker processes shares the database the way a
deployed shop does.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "gunicorn-test-secret-key-never-shown"
KHALTI_KEY = "gunicorn-test-khalti-key-never-shown"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedShop:
    """`gunicorn app:create_app()` on a free loopback port, logging to a file."""

    def __init__(self, database_url: str, khalti_api_url: str, log_path: Path):
        self.database_url = database_url
        self.khalti_api_url = khalti_api_url
        self.log_path = log_path
        self.process = None
        self.url = None

    @property
    def env(self) -> dict:
        return os.environ | {
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": self.database_url,
            "KHALTI_SECRET_KEY": KHALTI_KEY,
            "KHALTI_BASE_URL": self.khalti_api_url,
            # Load and race tests buy hundreds of times from one address.
            "CHECKOUT_RATE_LIMIT": "100000 per minute",
            "MAX_UNPAID_ORDERS": "100000",
            "MAX_UNITS_PER_PRODUCT": "100000",
        }

    def start(self, workers: int = 4, threads: int = 8) -> "ServedShop":
        # A restart comes back on the same port, as a real deployment would.
        port = int(self.url.rsplit(":", 1)[1]) if self.url else free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.command(port, workers, threads),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group, so kill() reaches every worker.
                start_new_session=True,
            )
        self.wait_until_up()
        return self

    def command(self, port: int, workers: int, threads: int) -> list[str]:
        return [
            *(sys.executable, "-m", "gunicorn"),
            *("--bind", f"127.0.0.1:{port}"),
            *("--workers", str(workers), "--threads", str(threads)),
            *("--graceful-timeout", "2", "--error-logfile", "-"),
            "app:create_app()",
        ]

    def wait_until_up(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if requests.get(self.url + "/", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass  # still booting its workers
            time.sleep(0.2)
        self.kill()
        raise AssertionError(f"gunicorn did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)

    def kill(self) -> None:
        """SIGKILL master and workers: no cleanup, no last commit."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        """Run a `flask --app app` command against the same database."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


class Buyer:
    """One browser: its own cookies, CSRF tokens taken from the pages."""

    def __init__(self, shop_url: str):
        self.shop_url = shop_url
        self.http = requests.Session()
        self.token = None

    def get(self, path: str) -> requests.Response:
        response = self.http.get(self.shop_url + path, timeout=30)
        if found := re.search(r'name="csrf_token" value="([^"]+)"', response.text):
            self.token = found[1]
        return response

    def post(self, path: str, data: dict | None = None) -> requests.Response:
        if self.token is None:
            self.get("/")
        return self.http.post(
            self.shop_url + path,
            data={"csrf_token": self.token, **(data or {})},
            allow_redirects=False,
            timeout=30,
        )

    def add(self, product_id: int, quantity: int = 1) -> requests.Response:
        return self.post("/cart/add", {"product_id": product_id, "quantity": quantity})

    def checkout_form(self) -> dict:
        """Open the checkout page; return the form a buyer would submit."""
        page = self.get("/checkout")
        token = re.search(r'name="checkout_token"[^>]* value="([^"]+)"', page.text)
        return {
            "checkout_token": token[1],
            "name": "Load Tester",
            "email": "load@example.com",
            "phone": "9800000001",
        }

    def checkout(self, form: dict | None = None) -> requests.Response:
        """Submit the checkout form (a freshly opened one unless given)."""
        return self.post("/checkout", form or self.checkout_form())

    def come_back(self, return_url: str) -> requests.Response:
        """Follow Khalti's redirect back to this shop (the sandbox says localhost)."""
        parts = urlsplit(return_url)
        return self.http.get(
            f"{self.shop_url}{parts.path}?{parts.query}",
            allow_redirects=False,
            timeout=30,
        )
