"""The deployment recipe, run: nginx with TLS before gunicorn, a purchase over https.

nginx and openssl are Debian's (`.ci/run` installs them); nothing is installed
here. The recipe's own files are used, with only the ports and paths filled in
for loopback: deploy/nginx-shop.conf and deploy/gunicorn.conf.py.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from served_shop import KHALTI_KEY, ROOT, SECRET_KEY, ServedShop, free_port

pytestmark = pytest.mark.load

DEPLOY = ROOT / "deploy"


def require(program: str) -> str:
    """The program's path; without it, skip here and fail in CI."""
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if not found:
        message = f"No {program}; run: apt-get install {program}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(require("openssl"), "req", "-x509", "-nodes", "-days", "1"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", key, "-out", certificate),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


def filled_in(recipe: str, replacements: dict[str, str]) -> str:
    """The recipe with loopback values; each replaced text must be in it."""
    for original, loopback in replacements.items():
        assert original in recipe, f"deploy/nginx-shop.conf no longer has {original}"
        recipe = recipe.replace(original, loopback)
    return recipe


class ShopBehindNginx(ServedShop):
    """gunicorn started with the recipe's deploy/gunicorn.conf.py."""

    def __init__(self, database_url, khalti_api_url, log_path, shop_url: str):
        super().__init__(database_url, khalti_api_url, log_path)
        self.shop_url = shop_url

    @property
    def env(self) -> dict:
        return super().env | {
            "SHOP_URL": self.shop_url,
            "FORWARDED_ALLOW": "1",
            "SESSION_COOKIE_SECURE": "1",
        }

    def command(self, port: int, workers: int, threads: int) -> list[str]:
        return [
            *(sys.executable, "-m", "gunicorn"),
            *("-c", str(DEPLOY / "gunicorn.conf.py")),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        ]


class Nginx:
    """nginx in the foreground with everything of its own in `folder`."""

    def __init__(self, folder: Path, site: str):
        self.folder = folder
        (folder / "shop.conf").write_text(site)
        (folder / "nginx.conf").write_text(
            f"""
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 64; }}
http {{
    types {{ text/html html; text/css css; image/svg+xml svg; }}
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/shop.conf;
}}
"""
        )
        self.process = subprocess.Popen(
            [
                *(require("nginx"), "-p", str(folder)),
                *("-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until_up(self, url: str, certificate: Path) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                requests.get(url, verify=str(certificate), timeout=5)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"nginx did not start:\n{self.log()}")

    def log(self) -> str:
        return (self.folder / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=15)


@pytest.fixture
def deployed(app, database_url, khalti_sandbox, tmp_path):
    """The shop as the recipe deploys it; yields its https:// address."""
    require("nginx")
    certificate, key = self_signed_certificate(tmp_path)
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    shop_url = f"https://localhost:{https_port}"
    site = filled_in(
        (DEPLOY / "nginx-shop.conf").read_text(),
        {
            "/etc/letsencrypt/live/shop.example/fullchain.pem": str(certificate),
            "/etc/letsencrypt/live/shop.example/privkey.pem": str(key),
            "shop.example": "localhost",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
            "/srv/shop/static/": f"{ROOT / 'static'}/",
            "127.0.0.1:8000": f"127.0.0.1:{app_port}",
        },
    )
    gunicorn = ShopBehindNginx(
        database_url, khalti_sandbox.api_url, tmp_path / "shop.log", shop_url
    )
    gunicorn.url = f"http://127.0.0.1:{app_port}"
    gunicorn.start(workers=2)
    (tmp_path / "nginx").mkdir()
    nginx = Nginx(tmp_path / "nginx", site)
    try:
        nginx.wait_until_up(shop_url + "/healthz", certificate)
        yield Deployment(
            shop_url, f"http://127.0.0.1:{http_port}", certificate, gunicorn
        )
    finally:
        nginx.stop()
        gunicorn.stop()
    log = gunicorn.log()
    assert "Traceback" not in log, log
    assert SECRET_KEY not in log and KHALTI_KEY not in log


class Deployment:
    def __init__(self, url, http_url, certificate, gunicorn):
        self.url = url
        self.http_url = http_url
        self.certificate = certificate
        self.gunicorn = gunicorn


class HttpsBuyer:
    """A browser on https: it sends a Referer with each form, as browsers do."""

    def __init__(self, deployment: Deployment):
        self.url = deployment.url
        # Where the browser says a form came from: this shop, unless spoofed.
        self.referer_origin = deployment.url
        # Per request: REQUESTS_CA_BUNDLE would override a session's verify.
        self.verify = str(deployment.certificate)
        self.http = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.open(self.url + path)

    def open(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, verify=self.verify, timeout=30)

    def post(self, path: str, data: dict, page: str) -> requests.Response:
        """Submit a form found on `page` (a path), which supplies the Referer."""
        return self.http.post(
            self.url + path,
            data=data,
            headers={"Referer": self.referer_origin + page},
            allow_redirects=False,
            verify=self.verify,
            timeout=30,
        )


def token(page: requests.Response, name: str) -> str:
    return re.search(rf'name="{name}"[^>]* value="([^"]+)"', page.text)[1]


def check_out(buyer: HttpsBuyer, product_id: int) -> requests.Response:
    catalog = buyer.get("/")
    added = buyer.post(
        "/cart/add",
        {
            "csrf_token": token(catalog, "csrf_token"),
            "product_id": product_id,
            "quantity": 1,
        },
        "/",
    )
    assert added.status_code == 303, added.text
    form = buyer.get("/checkout")
    details = {"name": "Sita Sharma", "email": "sita@example.com"}
    details |= {"phone": "9812345678", "checkout_token": token(form, "checkout_token")}
    details["csrf_token"] = token(form, "csrf_token")
    return buyer.post("/checkout", details, "/checkout")


def test_a_purchase_over_https_through_nginx(deployed, shop):
    buyer = HttpsBuyer(deployed)
    product_id = shop.product("jordan-air").id

    catalog = buyer.get("/")
    assert catalog.status_code == 200
    assert catalog.headers["Strict-Transport-Security"] == "max-age=63072000"
    session_cookie = catalog.headers["Set-Cookie"]
    assert "session=" in session_cookie and "Secure" in session_cookie
    # Plain HTTP only redirects to HTTPS.
    plain = requests.get(deployed.http_url + "/cart", allow_redirects=False, timeout=5)
    assert plain.status_code == 301
    assert plain.headers["Location"] == "https://localhost/cart"

    checkout = check_out(buyer, product_id)
    assert checkout.status_code == 303, checkout.text
    payment_url = checkout.headers["Location"]
    sent = shop.sandbox.record(payment_url.split("pidx=")[1])["request"]
    assert sent["return_url"] == f"{deployed.url}/successfull-payment"
    assert sent["website_url"] == f"{deployed.url}/"

    return_url = shop.sandbox.pay(payment_url)
    assert return_url.startswith(f"{deployed.url}/successfull-payment?")
    back = buyer.open(return_url)
    assert back.status_code == 303
    receipt = buyer.get(back.headers["Location"])
    assert 'data-order-status="paid"' in receipt.text
    assert "Sita Sharma" in receipt.text  # this browser placed the order
    assert receipt.headers["Strict-Transport-Security"] == "max-age=63072000"
    log = deployed.gunicorn.log()
    for step in ("order_created", "initiate_request", "lookup_response", "status:paid"):
        assert f"step={step} " in log


def test_static_files_come_from_nginx_with_long_cache_headers(deployed):
    response = HttpsBuyer(deployed).get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/css"
    assert response.headers["Cache-Control"] == "max-age=604800"
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000"
    # The app adds a CSP to everything it answers; nginx alone answered this.
    assert "Content-Security-Policy" not in response.headers
    assert "/static/" not in deployed.gunicorn.log()


def test_a_spoofed_host_changes_nothing_khalti_receives(deployed, shop):
    """Host and X-Forwarded-* say evil.example; Khalti still gets SHOP_URL."""
    buyer = HttpsBuyer(deployed)
    buyer.http.headers.update(
        {
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
        }
    )
    # The attacker's Referer matches the Host they send, so CSRF lets it by.
    buyer.referer_origin = "https://evil.example"

    checkout = check_out(buyer, shop.product("jordan-air").id)

    assert checkout.status_code == 303, checkout.text
    sent = shop.sandbox.record(checkout.headers["Location"].split("pidx=")[1])
    assert sent["request"]["return_url"] == f"{deployed.url}/successfull-payment"
    assert sent["request"]["website_url"] == f"{deployed.url}/"
