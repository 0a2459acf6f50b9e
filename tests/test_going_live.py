"""The production settings: Khalti's address, the shop's address, proxies, checks."""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Shop
from sqlalchemy import make_url
from test_security import form_action_sources

import app as shop_module
import khalti
from commands import deploy_findings
from config import BUILTIN_SANDBOX_KEY
from payments import get_khalti

ROOT = shop_module.__file__.rsplit("/", 1)[0]
LIVE_SECRET = "a" * 64
LIVE_KEY = "live_secret_key_FAKE-for-tests-only-not-a-real-key"


# --- KHALTI_BASE_URL, however it is typed -----------------------------------


@pytest.mark.parametrize(
    ("typed", "normalised", "portal"),
    [
        ("https://khalti.com/api/v2", khalti.PRODUCTION_BASE_URL, "pay.khalti.com"),
        ("https://khalti.com/api/v2/", khalti.PRODUCTION_BASE_URL, "pay.khalti.com"),
        (" HTTPS://Khalti.com/api/v2 ", khalti.PRODUCTION_BASE_URL, "pay.khalti.com"),
        (
            "https://dev.khalti.com/api/v2",
            khalti.SANDBOX_BASE_URL,
            "test-pay.khalti.com",
        ),
    ],
)
def test_khalti_base_url_is_normalised_once_and_used_everywhere(
    make_app, typed, normalised, portal
):
    app = make_app(KHALTI_BASE_URL=typed, KHALTI_SECRET_KEY=LIVE_KEY)

    assert app.config["KHALTI_BASE_URL"] == normalised
    csp = app.test_client().get("/").headers["Content-Security-Policy"]
    assert form_action_sources(csp) == ["'self'", f"https://{portal}"]
    with app.test_request_context():
        assert get_khalti().base_url == normalised


@pytest.mark.parametrize(
    ("typed", "banner"),
    [
        ("https://khalti.com/api/v2", False),
        ("https://khalti.com/api/v2/", False),
        ("https://dev.khalti.com/api/v2", True),
        (None, True),  # the built-in sandbox
    ],
)
def test_the_sandbox_banner_shows_only_off_production(make_app, typed, banner):
    app = make_app(KHALTI_BASE_URL=typed)
    page = app.test_client().get("/").text
    assert ("Sandbox: no real money moves" in page) is banner


# --- SHOP_URL and FORWARDED_ALLOW: what Khalti is told to send buyers back to ---


@pytest.fixture
def shop_with(make_app, khalti_sandbox):
    def make(**config):
        app = make_app(**config)
        return Shop(app, app.test_client(), khalti_sandbox)

    return make


def initiate_request(shop, **headers) -> dict:
    """Check out with these request headers; return what Khalti received."""
    product = {"product_id": shop.product("jordan-air").id, "quantity": 1}
    # The same headers here: the test client keeps cookies per host.
    assert (
        shop.client.post("/cart/add", data=product, headers=headers).status_code == 303
    )
    details = {"name": "Sita Sharma", "email": "sita@example.com"}
    details |= {"phone": "9812345678", "checkout_token": "t" * 22}
    response = shop.client.post("/checkout", data=details, headers=headers)
    assert response.status_code == 303, response.text
    return shop.sandbox.record(shop.latest_order().pidx)["request"]


SPOOFED = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
}


@pytest.mark.parametrize("forwarded_allow", [0, 1])
def test_shop_url_decides_the_return_url_whatever_the_request_says(
    shop_with, forwarded_allow
):
    shop = shop_with(SHOP_URL="https://shop.example/", FORWARDED_ALLOW=forwarded_allow)
    sent = initiate_request(shop, **SPOOFED)
    assert sent["return_url"] == "https://shop.example/successfull-payment"
    assert sent["website_url"] == "https://shop.example/"


def test_without_shop_url_the_request_decides_and_forwarded_headers_are_ignored(
    shop_with,
):
    shop = shop_with()
    sent = initiate_request(
        shop,
        **{
            "Host": "127.0.0.1:5000",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https",
        },
    )
    assert sent["return_url"] == "http://127.0.0.1:5000/successfull-payment"


def test_forwarded_allow_trusts_the_proxys_scheme_and_host(shop_with):
    shop = shop_with(FORWARDED_ALLOW=1)
    sent = initiate_request(
        shop,
        **{
            "Host": "127.0.0.1:8000",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example",
            "X-Forwarded-For": "203.0.113.7",
        },
    )
    assert sent["return_url"] == "https://shop.example/successfull-payment"


# --- check-deploy --------------------------------------------------------------

GOOD_PRODUCTION = {
    "SECRET_KEY": LIVE_SECRET,
    "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://shop@db.invalid/shop",
    "KHALTI_SECRET_KEY": LIVE_KEY,
    "KHALTI_BASE_URL": "https://khalti.com/api/v2",
    "SESSION_COOKIE_SECURE": True,
    "SHOP_URL": "https://shop.example",
    "FORWARDED_ALLOW": 1,
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
}


def check_deploy(*options, **config) -> tuple[int, list[str]]:
    """Run check-deploy on a configuration; return its exit code and lines."""
    app = shop_module.create_app(GOOD_PRODUCTION | config)
    result = app.test_cli_runner().invoke(args=["check-deploy", *options])
    return result.exit_code, result.output.splitlines()


def test_a_good_production_configuration_passes():
    code, lines = check_deploy()
    assert code == 0
    assert lines == ["0 findings; Khalti API https://khalti.com/api/v2/ (production)."]


@pytest.mark.parametrize(
    ("config", "finding"),
    [
        ({"SECRET_KEY": "short-but-not-a-placeholder"}, "SECRET_KEY is shorter"),
        ({"KHALTI_SECRET_KEY": None}, "KHALTI_SECRET_KEY is not your live key"),
        (
            {"KHALTI_SECRET_KEY": BUILTIN_SANDBOX_KEY},
            "KHALTI_SECRET_KEY is not your live key",
        ),
        ({"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE is off"),
        ({"SHOP_URL": None}, "SHOP_URL must be the shop's https:// address"),
        ({"SHOP_URL": "http://shop.example"}, "SHOP_URL must be the shop's https://"),
        ({"SQLALCHEMY_DATABASE_URI": "sqlite:///shop.db"}, "DATABASE_URL is SQLite"),
        (
            {"RATELIMIT_STORAGE_URI": "memory://"},
            "RATELIMIT_STORAGE_URI is memory://: each worker counts failed logins"
            " alone. Set it to your Redis",
        ),
    ],
)
def test_each_production_mistake_is_an_error(config, finding):
    code, lines = check_deploy(**config)
    assert code == 1
    errors = [line for line in lines if line.startswith("ERROR: ")]
    assert len(errors) == 1 and finding in errors[0], lines


def test_the_sandbox_is_not_held_to_production_rules():
    code, lines = check_deploy(
        KHALTI_BASE_URL="https://dev.khalti.com/api/v2/",
        KHALTI_SECRET_KEY=None,
        SESSION_COOKIE_SECURE=False,
        SHOP_URL=None,
        SQLALCHEMY_DATABASE_URI="sqlite:///shop.db",
    )
    assert code == 0
    assert lines == ["0 findings; Khalti API https://dev.khalti.com/api/v2/ (sandbox)."]


def test_a_live_shop_url_with_khalti_sandbox_is_an_error():
    code, lines = check_deploy(
        KHALTI_BASE_URL="https://dev.khalti.com/api/v2/", KHALTI_SECRET_KEY="test"
    )
    assert code == 1
    [error] = [line for line in lines if line.startswith("ERROR: ")]
    assert "KHALTI_BASE_URL is https://dev.khalti.com/api/v2/" in error
    assert "Set KHALTI_BASE_URL=https://khalti.com/api/v2/" in error
    assert "check-deploy --staging" in error


def test_staging_accepts_the_sandbox_and_says_so():
    code, lines = check_deploy(
        "--staging",
        KHALTI_BASE_URL="https://dev.khalti.com/api/v2/",
        KHALTI_SECRET_KEY="test",
    )
    assert code == 0
    assert lines == [
        "Staging: Khalti's sandbox is accepted with an https:// SHOP_URL.",
        "0 findings; Khalti API https://dev.khalti.com/api/v2/ (sandbox).",
    ]


@pytest.mark.parametrize("staging", [(), ("--staging",)])
def test_khalti_over_plain_http_to_another_host_is_an_error(staging):
    code, lines = check_deploy(
        *staging, KHALTI_BASE_URL="http://sandbox.internal:5001/api/v2/"
    )
    assert code == 1
    errors = [line for line in lines if "plain http://" in line]
    assert errors == [
        "ERROR: KHALTI_BASE_URL http://sandbox.internal:5001/api/v2/ is plain"
        " http:// to another machine: the secret key would cross the network"
        " unencrypted. Use its https:// address."
    ]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5001/api/v2/", "http://localhost:5001/api/v2/"]
)
def test_the_built_in_sandbox_on_loopback_is_fine_over_http(url):
    _, lines = check_deploy(SHOP_URL=None, KHALTI_BASE_URL=url)
    assert lines and not [line for line in lines if "plain http://" in line]


@pytest.mark.parametrize(
    ("mode", "refused"), [(0o644, True), (0o640, True), (0o600, False)]
)
def test_an_env_file_others_can_read_is_an_error(tmp_path, mode, refused):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=x\n")
    env_file.chmod(mode)
    app = shop_module.create_app(GOOD_PRODUCTION)
    findings = deploy_findings(app.config, tmp_path)
    expected = [
        (
            "ERROR",
            f"{env_file} is readable by other users (mode {mode:04o}): its"
            f" SECRET_KEY lets them sign a staff session. Run: chmod 600 {env_file}",
        )
    ]
    assert findings == (expected if refused else [])


def test_make_creates_env_readable_by_its_owner_only(tmp_path):
    for name in ("Makefile", ".env.example"):
        (tmp_path / name).write_text(Path(ROOT, name).read_text())
    subprocess.run(
        ["make", "-s", ".env", f"PYTHON={sys.executable}"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert "SECRET_KEY=change-me" not in (tmp_path / ".env").read_text()


def test_https_without_a_trusted_proxy_is_a_warning_only():
    code, lines = check_deploy(FORWARDED_ALLOW=0)
    assert code == 0
    assert lines[0].startswith("WARNING: FORWARDED_ALLOW is 0")
    assert len(lines) == 2


def run_check_deploy(**environment) -> subprocess.CompletedProcess:
    """`flask --app app check-deploy` as an operator runs it, on this environment."""
    settings = {
        "SECRET_KEY": LIVE_SECRET,
        "DATABASE_URL": GOOD_PRODUCTION["SQLALCHEMY_DATABASE_URI"],
        "KHALTI_SECRET_KEY": LIVE_KEY,
        "KHALTI_BASE_URL": "https://khalti.com/api/v2",
        "SESSION_COOKIE_SECURE": "1",
        "SHOP_URL": "https://shop.example",
        "FORWARDED_ALLOW": "1",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "check-deploy"],
        cwd=ROOT,
        # Every setting given, so that a developer's .env changes nothing.
        env={"PATH": "/usr/bin:/bin"} | settings | environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_from_the_command_line_connects_to_nothing():
    """The database host does not exist: the command still answers at once."""
    assert make_url(GOOD_PRODUCTION["SQLALCHEMY_DATABASE_URI"]).host == "db.invalid"
    good = run_check_deploy()
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ERROR" not in good.stdout

    bad = run_check_deploy(SESSION_COOKIE_SECURE="", SHOP_URL="http://shop.example")
    assert bad.returncode == 1
    assert "ERROR: SESSION_COOKIE_SECURE is off" in bad.stdout
    assert "ERROR: SHOP_URL must be" in bad.stdout


def test_a_placeholder_secret_key_stops_the_shop_and_check_deploy():
    result = run_check_deploy(SECRET_KEY="change-me")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert LIVE_KEY not in result.stdout + result.stderr


# --- /healthz --------------------------------------------------------------------


def test_healthz_answers_ok_without_a_session(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "khalti": "closed"}
    assert "Set-Cookie" not in response.headers


def test_healthz_says_503_when_the_database_cannot_be_reached(database_url, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        unreachable = url.set(database=str(tmp_path / "missing" / "shop.db"))
    else:  # a unix socket folder where no server listens
        unreachable = url.update_query_dict({"host": str(tmp_path)})
    app = shop_module.create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": unreachable.render_as_string(False),
        }
    )

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.json == {
        "database": "unreachable",
        "reason": "OperationalError",
        "khalti": "closed",
    }
    assert "Set-Cookie" not in response.headers


def test_gunicorns_worker_timeout_outlasts_the_slowest_checkout():
    """A checkout may wait out Khalti's client timeouts; the worker must survive it."""
    settings = runpy.run_path(f"{ROOT}/deploy/gunicorn.conf.py")
    assert settings["worker_class"] == "gthread"
    # A sale's hundred buyers waiting on Khalti at once each hold a thread.
    assert settings["workers"] * settings["threads"] >= 100
    assert settings["timeout"] > sum(khalti.DEFAULT_TIMEOUT)
