"""Bad input gets a clear 4xx and changes nothing; secrets stay secret."""

import logging
import re

import pytest
from conftest import Shop

from models import Order, db

POST_ROUTES = ["/cart/add", "/cart/update", "/cart/remove", "/checkout"]


def snapshot(app, client) -> tuple:
    """Everything a bad request must leave alone: orders, stock, the cart."""
    with app.app_context():
        orders = db.session.scalar(db.select(db.func.count(Order.id)))
        stock = tuple(db.session.scalars(db.text("SELECT stock FROM product")))
    cart = re.findall(r'data-quantity="\d+"', client.get("/cart").text)
    return orders, stock, cart


@pytest.mark.parametrize("route", POST_ROUTES)
def test_csrf_is_enforced_on_every_post(make_app, route):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    before = snapshot(app, client)
    response = client.post(route, data={"product_id": 1, "quantity": 1})
    assert response.status_code == 400
    assert "Form expired" in response.text
    assert snapshot(app, client) == before


def test_csrf_token_from_the_page_is_accepted(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)[1]
    response = client.post(
        "/cart/add", data={"product_id": 1, "quantity": 1, "csrf_token": token}
    )
    assert response.status_code == 303


def test_check_again_needs_csrf_too(make_app, khalti_sandbox):
    app = make_app()
    shop_client = app.test_client()
    shop_client.post("/cart/add", data={"product_id": 1, "quantity": 1})
    shop_client.post(
        "/checkout",
        data={"name": "A", "email": "a@example.com", "phone": "9800000001"},
    )
    with app.app_context():
        order = db.session.scalar(db.select(Order))
    app.config["WTF_CSRF_ENABLED"] = True
    response = shop_client.post(f"/orders/{order.purchase_order_id}/verify")
    assert response.status_code == 400
    assert khalti_sandbox.stats()["lookup"] == 0


@pytest.mark.parametrize(
    "data",
    [
        {"product_id": 1, "quantity": "0"},
        {"product_id": 1, "quantity": "-1"},
        {"product_id": 1, "quantity": "abc"},
        {"product_id": 1, "quantity": "1.5"},
        {"product_id": 1, "quantity": ""},
        {"product_id": 1},
        {"product_id": 1, "quantity": "999999"},
        {"product_id": 1, "quantity": "9" * 40},
        {"product_id": "abc", "quantity": 1},
        {"product_id": "", "quantity": 1},
        {"product_id": "0", "quantity": 1},
        {"product_id": "9999", "quantity": 1},
        {"product_id": "9" * 40, "quantity": 1},
        {"quantity": 1},
    ],
)
@pytest.mark.parametrize("route", ["/cart/add", "/cart/update"])
def test_bad_cart_input_is_refused(app, client, shop, route, data):
    shop.add("jordan-air", 1)
    before = snapshot(app, client)
    response = client.post(route, data=data)
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text
    assert snapshot(app, client) == before


@pytest.mark.parametrize("product_id", ["", "abc", "2", "9999", "9" * 40])
def test_removing_what_is_not_in_the_cart_is_refused(app, client, shop, product_id):
    shop.add("jordan-air", 1)
    before = snapshot(app, client)
    response = client.post("/cart/remove", data={"product_id": product_id})
    assert response.status_code in (400, 404)
    assert snapshot(app, client) == before


@pytest.mark.parametrize(
    "path",
    [
        "/orders/%00",
        "/orders/" + "x" * 3000,
        "/successfull-payment?pidx=%ff%fe",
        "/successfull-payment?pidx=a&pidx=b",
        "/nowhere",
    ],
)
def test_odd_urls_get_a_clear_4xx_page(client, path):
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert "Back to your cart" in response.text


def test_wrong_method_is_405_page(client):
    response = client.get("/cart/add")
    assert response.status_code == 405
    assert "Back to your cart" in response.text


def test_secret_key_never_reaches_a_page_or_a_log(make_app, khalti_sandbox, caplog):
    secret = "live_secret_key_0123456789abcdef0123456789abcdef"
    app = make_app(KHALTI_SECRET_KEY=secret)
    shop = Shop(app, app.test_client(), khalti_sandbox)
    caplog.set_level(logging.DEBUG)

    paid = shop.buy()
    pages = [shop.client.get(f"/orders/{paid.purchase_order_id}").text]
    khalti_sandbox.fault("lookup", "http_500")
    pending = shop.start()
    pages.append(shop.come_back(f"/successfull-payment?pidx={pending.pidx}").text)
    khalti_sandbox.fault("initiate", "reset")
    shop.add("jordan-air", 1)
    pages.append(shop.checkout().text)
    pages += [shop.client.get(path).text for path in ("/", "/cart", "/checkout")]

    assert len(pages) == 6
    assert all(secret not in page for page in pages)
    assert secret not in caplog.text
