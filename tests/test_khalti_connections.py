"""The shop keeps its connection to Khalti open from one request to the next.

Seen from the sandbox's side: every API call arrives from the same client
port, so the shop opened one TCP connection and reused it. Werkzeug's server
closes every connection after one answer, so here the sandbox runs under
gunicorn, which keeps connections alive as Khalti's servers do.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import ServedSandbox, Shop
from served_shop import free_port

import sandbox

ROOT = Path(__file__).resolve().parent.parent


class PortRecorder:
    """WSGI middleware noting the client port of every call to Khalti's API."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.ports = []

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"].startswith("/api/"):
            self.ports.append(int(environ["REMOTE_PORT"]))
        return self.wsgi_app(environ, start_response)


def sandbox_recording_ports():
    """sandbox.py, plus GET /test/ports: the client port of each API call."""
    app = sandbox.create_app()
    app.wsgi_app = recorder = PortRecorder(app.wsgi_app)
    app.add_url_rule("/test/ports", "ports", lambda: {"ports": recorder.ports})
    return app


class GunicornSandbox(ServedSandbox):
    """The sandbox in a gunicorn process, with ServedSandbox's buyer actions."""

    def __init__(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.url}/api/v2/"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
                *("--worker-class", "gthread", "--threads", "4"),
                *("--pythonpath", f"{ROOT},{ROOT / 'tests'}"),
                "test_khalti_connections:sandbox_recording_ports()",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_until_up()

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.ports()
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start the sandbox")

    def ports(self) -> list[int]:
        return requests.get(f"{self.url}/test/ports", timeout=5).json()["ports"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def kept_alive_sandbox():
    served = GunicornSandbox()
    yield served
    served.stop()


def test_several_payments_reuse_one_connection_to_khalti(make_app, kept_alive_sandbox):
    app = make_app(KHALTI_BASE_URL=kept_alive_sandbox.api_url)
    shop = Shop(app, app.test_client(), kept_alive_sandbox)

    for _ in range(3):
        assert shop.buy(("jordan-air", 1)).status == "paid"

    # An initiate and a lookup per payment, all six over one connection.
    ports = kept_alive_sandbox.ports()
    assert len(ports) == 6
    assert len(set(ports)) == 1
