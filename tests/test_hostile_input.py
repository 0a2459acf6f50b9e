"""Bad input gets a clear 4xx and changes nothing; secrets stay secret."""

import re

import pytest

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


def test_check_again_needs_csrf_too(app, shop):
    order = shop.start()
    app.config["WTF_CSRF_ENABLED"] = True
    response = shop.client.post(f"/orders/{order.purchase_order_id}/verify")
    assert response.status_code == 400
    assert shop.sandbox.stats()["lookup"] == 0


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
