"""Security headers, cookies, and what must never leave the server."""

import logging
import re

import pytest
from conftest import Shop

import app as shop_module
import khalti
from models import PaymentEvent, db


def some_pages(shop) -> list:
    """One response of every kind: pages, redirects, 4xx and 5xx-ish errors."""
    order = shop.start()
    client = shop.client
    responses = [
        client.get("/"),
        client.get("/cart"),
        client.get("/checkout"),
        client.get(f"/orders/{order.purchase_order_id}"),
        client.get("/orders/nope"),
        client.get("/cart/add"),  # 405
        client.get("/successfull-payment"),  # 400
        client.get("/static/style.css"),
        client.post("/cart/add", data={"quantity": "x"}),
        shop.add("jordan-air", 1),  # 303
    ]
    shop.sandbox.fault("lookup", "http_503")
    responses.append(client.get(f"/successfull-payment?pidx={order.pidx}"))  # 502
    for response in responses:
        response.get_data()
        response.close()  # the static file's handle
    return responses


def test_every_response_carries_the_security_headers(shop):
    responses = some_pages(shop)
    assert {r.status_code for r in responses} >= {200, 303, 400, 404, 405, 502}
    for response in responses:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_need_no_inline_script_or_style(shop):
    """What the CSP forbids must not be needed: no inline code in any page."""
    for response in some_pages(shop):
        if response.mimetype != "text/html":
            continue
        page = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page)
        assert not re.search(r"\son[a-z]+\s*=", page)  # onclick= and friends
        assert " style=" not in page and "<style" not in page


def form_action_sources(csp: str) -> list[str]:
    directive = next(d for d in csp.split(";") if d.strip().startswith("form-action"))
    return directive.split()[1:]


def test_form_action_allows_the_redirect_to_khaltis_payment_page(shop):
    """Checkout POSTs here, then redirects to Khalti: browsers check both."""
    shop.add("jordan-air", 1)
    response = shop.checkout()
    payment_url = response.headers["Location"]
    sources = form_action_sources(response.headers["Content-Security-Policy"])
    assert any(payment_url.startswith(source + "/") for source in sources)


@pytest.mark.parametrize(
    ("base_url", "portal"),
    [
        (khalti.PRODUCTION_BASE_URL, "https://pay.khalti.com"),
        (khalti.SANDBOX_BASE_URL, "https://test-pay.khalti.com"),
    ],
)
def test_form_action_names_khaltis_real_portals(base_url, portal):
    app = shop_module.create_app({"TESTING": True, "KHALTI_BASE_URL": base_url})
    csp = app.config["CONTENT_SECURITY_POLICY"]
    assert form_action_sources(csp) == ["'self'", portal]


def session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if "session=" in c)


def test_session_cookie_is_httponly_and_samesite_lax(shop):
    cookie = session_cookie(shop.add("jordan-air", 1))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # served over plain HTTP here


def test_session_cookie_is_secure_when_configured_for_https(
    make_app, khalti_sandbox, monkeypatch
):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    app = make_app()
    shop = Shop(app, app.test_client(), khalti_sandbox)
    cookie = session_cookie(shop.add("jordan-air", 1))
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_secrets_never_reach_pages_logs_or_the_timeline(
    make_app, khalti_sandbox, caplog
):
    khalti_key = "live_secret_key_FAKE-for-tests-only-not-a-real-key"
    flask_key = "flask-secret-0123456789abcdef0123456789abcdef"
    app = make_app(KHALTI_SECRET_KEY=khalti_key, SECRET_KEY=flask_key)
    shop = Shop(app, app.test_client(), khalti_sandbox)
    caplog.set_level(logging.DEBUG)

    pages = [r.get_data(as_text=True) for r in some_pages(shop)]
    khalti_sandbox.fault("lookup", "none")
    paid = shop.buy()
    pages.append(shop.client.get(f"/orders/{paid.purchase_order_id}").text)
    khalti_sandbox.fault("initiate", "http_500")
    shop.add("jordan-air", 1)
    pages.append(shop.checkout().text)
    with app.app_context():
        timeline = [event.data for event in db.session.scalars(db.select(PaymentEvent))]

    assert len(timeline) > 10
    for secret in (khalti_key, flask_key):
        assert all(secret not in page for page in pages)
        assert all(secret not in data for data in timeline)
        assert secret not in caplog.text
