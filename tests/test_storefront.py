"""The catalog, the cart and the checkout, up to the redirect to Khalti."""

import re

import pytest

from models import Order, OrderStatus, db


def orders_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Order.id)))


def test_catalog_lists_products_with_machine_readable_prices(client, shop):
    page = client.get("/").text
    jordan = shop.product("jordan-air")
    assert f'data-product-id="{jordan.id}"' in page
    assert 'data-price-paisa="20000"' in page  # Jordan Air, Rs 200
    assert 'data-price-paisa="50000"' in page  # DSLR Camera, Rs 500
    assert "Rs 200.00" in page
    assert len(re.findall(r"data-stock=", page)) >= 6
    assert 'name="csrf_token"' in page


def test_sandbox_banner_shows_while_not_on_production(make_app):
    assert "Sandbox: no real money moves" in make_app().test_client().get("/").text
    production = make_app(KHALTI_BASE_URL="https://khalti.com/api/v2/")
    assert "Sandbox" not in production.test_client().get("/").text


def test_cart_shows_lines_and_total_from_database_prices(client, shop):
    shop.add("jordan-air", 2)
    shop.add("dslr-camera", 1)
    page = client.get("/cart").text
    assert "Rs 400.00" in page  # 2 x Rs 200
    assert 'data-total-paisa="90000"' in page
    assert "Rs 900.00" in page
    assert 'class="cart-count" data-cart-count="3"' in page


def test_adding_twice_adds_up(client, shop):
    shop.add("jordan-air", 2)
    shop.add("jordan-air", 3)
    assert 'data-quantity="5"' in client.get("/cart").text


def test_cart_lines_can_be_changed_and_removed(client, shop):
    jordan = shop.product("jordan-air")
    shop.add("jordan-air", 1)
    shop.add("dslr-camera", 1)
    response = client.post(
        "/cart/update", data={"product_id": jordan.id, "quantity": 4}
    )
    assert response.status_code == 303
    assert 'data-quantity="4"' in client.get("/cart").text
    removed = client.post("/cart/remove", data={"product_id": jordan.id})
    assert removed.status_code == 303
    page = client.get("/cart").text
    # The message names what went; the cart's lines no longer hold it.
    assert "Removed Jordan Air from your cart." in page
    assert f'<tr data-product-id="{jordan.id}"' not in page
    assert "DSLR Camera" in page


def test_price_change_shows_in_cart(client, shop):
    shop.add("jordan-air", 1)
    shop.set_product("jordan-air", price_paisa=25000)
    assert "Rs 250.00" in client.get("/cart").text


def test_empty_cart_checkout_redirects_to_cart_with_message(client):
    response = client.get("/checkout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/cart"
    assert "Your cart is empty." in client.get("/cart").text


def test_cart_under_ten_rupees_is_refused_before_any_order(app, client, shop):
    shop.add("khalti-sticker", 1)  # Rs 5
    assert "Khalti accepts payments of Rs 10.00 or more" in client.get("/cart").text
    response = shop.checkout()
    assert response.status_code == 400
    assert "Rs 10.00 or more" in response.text
    assert orders_count(app) == 0
    assert shop.sandbox.stats()["initiate"] == 0


def test_checkout_page_shows_form_and_total(client, shop):
    shop.add("dslr-camera", 1)
    page = client.get("/checkout").text
    for name in ("name", "email", "phone"):
        assert f'name="{name}"' in page
    assert "Rs 500.00" in page


def test_checkout_creates_order_initiates_and_redirects_to_khalti(app, shop):
    stock_before = shop.stock("jordan-air")
    shop.add("jordan-air", 2)
    shop.add("dslr-camera", 1)
    response = shop.checkout()

    assert response.status_code == 303
    order = shop.latest_order()
    assert response.headers["Location"] == order.payment_url
    assert order.payment_url.startswith(shop.sandbox.url)
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert order.total_paisa == 90000
    assert order.pidx and order.expires_at
    assert shop.stock("jordan-air") == stock_before - 2

    sent = shop.sandbox.record(order.pidx)["request"]
    assert sent["amount"] == 90000
    assert sent["purchase_order_id"] == order.purchase_order_id
    assert sent["return_url"] == "http://localhost/successfull-payment"
    assert sent["website_url"] == "http://localhost/"
    assert sum(line["amount"] for line in sent["amount_breakdown"]) == 90000
    for line in sent["product_details"]:
        assert line["unit_price"] * line["quantity"] == line["total_price"]
    assert sum(line["total_price"] for line in sent["product_details"]) == 90000
    assert sent["customer_info"]["phone"] == "9812345678"


def test_order_items_snapshot_prices(app, shop):
    order = shop.start(("jordan-air", 1))
    shop.set_product("jordan-air", price_paisa=1)
    items = shop.order(order.purchase_order_id).items
    assert items[0].unit_price_paisa == 20000


def test_purchase_order_ids_are_unique_and_unguessable(shop):
    ids = {shop.start().purchase_order_id for _ in range(3)}
    assert len(ids) == 3
    assert all(len(poid) >= 16 for poid in ids)


def test_buying_more_than_is_left_is_refused(app, client, shop):
    stock = shop.stock("dslr-camera")
    response = shop.add("dslr-camera", stock + 1)
    assert response.status_code == 400
    assert f"Only {stock} of DSLR Camera left" in response.text
    assert "DSLR Camera" not in client.get("/cart").text


def test_stock_sold_out_between_cart_and_checkout(app, shop):
    shop.add("dslr-camera", 2)
    shop.set_product("dslr-camera", stock=1)
    response = shop.checkout()
    assert response.status_code == 400
    assert "Only 1 of DSLR Camera left" in response.text
    assert orders_count(app) == 0
    assert shop.stock("dslr-camera") == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": "x" * 101}, "Field cannot be longer than 100 characters."),
        ({"email": "not-an-email"}, "Invalid email address."),
        ({"email": ""}, "This field is required."),
        ({"phone": "12345"}, "starting with 97 or 98"),
        ({"phone": "9612345678"}, "starting with 97 or 98"),
        ({"phone": "98123456789"}, "starting with 97 or 98"),
        ({"phone": "981234567x"}, "starting with 97 or 98"),
        ({"phone": "9812345678\n"}, None),  # stripped, so accepted
    ],
)
def test_checkout_form_validation(app, shop, fields, message):
    shop.add("jordan-air", 1)
    stock = shop.stock("jordan-air")
    response = shop.checkout(**fields)
    if message is None:
        assert response.status_code == 303
        return
    assert response.status_code == 400
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert orders_count(app) == 0
    assert shop.stock("jordan-air") == stock
