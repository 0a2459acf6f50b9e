"""The shop's settings: read from the environment, normalised and checked.

`create_app` loads them; `flask check-deploy` (commands.py) judges them.
Every setting is documented where it is read, below.
"""

import os
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import khalti

# With no KHALTI_SECRET_KEY the shop talks to sandbox.py, started by `make run`
# on SANDBOX_PORT (5001 unless set).
BUILTIN_SANDBOX_URL = "http://127.0.0.1:{port}/api/v2/"
BUILTIN_SANDBOX_KEY = "built-in-sandbox"

PLACEHOLDER_SECRET_KEYS = {None, "", "change-me"}

# Where each Khalti API sends buyers to pay; sandbox.py serves both itself.
PAYMENT_PORTALS = {
    khalti.PRODUCTION_BASE_URL: "https://pay.khalti.com",
    khalti.SANDBOX_BASE_URL: "https://test-pay.khalti.com",
}


def from_environment() -> dict:
    """The settings as the environment (and .env) gives them."""
    return dict(
        SECRET_KEY=os.environ.get("SECRET_KEY"),
        # A relative SQLite path ends up in the instance/ folder.
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL", "sqlite:///shop.db"),
        KHALTI_SECRET_KEY=os.environ.get("KHALTI_SECRET_KEY") or None,
        KHALTI_BASE_URL=os.environ.get("KHALTI_BASE_URL") or None,
        KHALTI_TIMEOUT=khalti.DEFAULT_TIMEOUT,
        # The port of `make run`'s sandbox, for the shop's calls to it too.
        SANDBOX_PORT=int(os.environ.get("SANDBOX_PORT") or 5001),
        # The address buyers open, e.g. https://shop.example. When set, the
        # return_url and website_url sent to Khalti are built on it, never on
        # the request's Host header, which the client chooses.
        SHOP_URL=os.environ.get("SHOP_URL") or None,
        # How many proxies (nginx) in front of the shop to believe about the
        # client's address, scheme and host (X-Forwarded-For/Proto/Host).
        FORWARDED_ALLOW=int(os.environ.get("FORWARDED_ALLOW") or 0),
        SESSION_COOKIE_SAMESITE="Lax",
        # Set SESSION_COOKIE_SECURE=1 when the shop is served over HTTPS, so
        # the browser never sends the session cookie over plain HTTP.
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE") == "1",
        # Where the back office counts failed logins. In memory, each process
        # counts alone: with several workers use a shared store (redis://...).
        RATELIMIT_STORAGE_URI=os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Where product pictures uploaded in the back office are kept (the
        # shop writes them; nginx may serve them). Default: instance/pictures.
        PICTURE_FOLDER=os.environ.get("PICTURE_FOLDER") or None,
        # The clock every time is shown in (stored times stay UTC); the back
        # office's "today" is a day on this clock.
        SHOP_TIMEZONE=os.environ.get("SHOP_TIMEZONE") or "Asia/Kathmandu",
        # Anonymous traffic's bounds, so one visitor cannot starve the others.
        # Checkout POSTs, "Pay again" and "Check again" per client address,
        # in Flask-Limiter's notation. A load test raises them.
        CHECKOUT_RATE_LIMIT=os.environ.get("CHECKOUT_RATE_LIMIT") or "10 per minute",
        # Orders one browser may hold unpaid (created or awaiting payment):
        # each holds its items' stock until it is paid or its link expires.
        MAX_UNPAID_ORDERS=int(os.environ.get("MAX_UNPAID_ORDERS") or 3),
        # Units of one product in one cart, and so in one order.
        MAX_UNITS_PER_PRODUCT=int(os.environ.get("MAX_UNITS_PER_PRODUCT") or 10),
        # The largest request body: room for the back office's 2 MB product
        # pictures and their form, far from the 50 MB a client once sent.
        # deploy/nginx-shop.conf's client_max_body_size matches it.
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        # A refused request (429) says when to come back: Retry-After.
        RATELIMIT_HEADERS_ENABLED=True,
        BABEL_DEFAULT_LOCALE="en",
    )


def finish(app) -> None:
    """Check and normalise the settings once they are all in `app.config`."""
    check_secret_key(app)
    config = app.config
    config["KHALTI_BASE_URL"] = khalti_base_url(config)
    if not config["PICTURE_FOLDER"]:
        config["PICTURE_FOLDER"] = os.path.join(app.instance_path, "pictures")
    if config["SHOP_URL"]:
        config["SHOP_URL"] = config["SHOP_URL"].rstrip("/")
    config["CONTENT_SECURITY_POLICY"] = content_security_policy(
        config["KHALTI_BASE_URL"]
    )
    # An unknown zone fails here, at start-up, not on the first receipt.
    ZoneInfo(config["SHOP_TIMEZONE"])


def check_secret_key(app) -> None:
    """Refuse to run a real shop with a missing or example SECRET_KEY.

    It signs the session cookie, which holds the cart and proves who placed
    an order. Only local development and tests may fall back to a fixed one.
    """
    if app.config["SECRET_KEY"] not in PLACEHOLDER_SECRET_KEYS:
        return
    if app.debug or app.testing:
        app.config["SECRET_KEY"] = "dev"
        return
    raise RuntimeError(
        "SECRET_KEY is not set. Copy .env.example to .env and set it to the"
        " output of: python -c 'import secrets; print(secrets.token_hex())'"
    )


def khalti_base_url(config) -> str:
    """KHALTI_BASE_URL spelled one way: lower-case host, ending in a slash.

    People type it with or without the slash. The CSP and the sandbox banner
    compare it with Khalti's known hosts, so it is normalised here, once,
    and only this value is used. Empty means a sandbox.
    """
    builtin = BUILTIN_SANDBOX_URL.format(port=config["SANDBOX_PORT"])
    url = config["KHALTI_BASE_URL"] or (
        khalti.SANDBOX_BASE_URL if config["KHALTI_SECRET_KEY"] else builtin
    )
    parts = urlsplit(url.strip())
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def is_production(config) -> bool:
    """Whether real money moves: the shop talks to Khalti's production API."""
    return config["KHALTI_BASE_URL"] == khalti.PRODUCTION_BASE_URL


def content_security_policy(khalti_base_url: str) -> str:
    """No inline script or style, no framing, forms only to us and Khalti.

    form-action names Khalti's payment portal because checkout POSTs here
    and we answer with a redirect there: browsers apply form-action to the
    redirects that follow a form submission too.
    """
    api = urlsplit(khalti_base_url)
    portal = PAYMENT_PORTALS.get(khalti_base_url, f"{api.scheme}://{api.netloc}")
    return (
        "default-src 'self'; img-src 'self' data:; object-src 'none';"
        f" base-uri 'none'; frame-ancestors 'none'; form-action 'self' {portal}"
    )
