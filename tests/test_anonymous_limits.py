"""Anonymous traffic cannot hurt other buyers: a bounded checkout rate per
address, unpaid orders per browser and units per product; a return URL that
stores only Khalti's parameters and asks Khalti at most once in a while; a
request size limit. Each refusal is a clear 4xx that changes nothing."""

import re
from pathlib import Path

from conftest import Shop

import config
from models import Order, OrderStatus, db

ROOT = Path(__file__).resolve().parent.parent


def orders_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Order.id)))


def shop_with(make_app, khalti_sandbox, **config) -> Shop:
    app = make_app(**config)
    return Shop(app, app.test_client(), khalti_sandbox)


LIMITS = ("CHECKOUT_RATE_LIMIT", "MAX_UNPAID_ORDERS", "MAX_UNITS_PER_PRODUCT")


def test_the_defaults_are_the_documented_ones(monkeypatch):
    for name in LIMITS:
        monkeypatch.delenv(name, raising=False)
    settings = config.from_environment()
    assert settings["CHECKOUT_RATE_LIMIT"] == "10 per minute"
    assert settings["MAX_UNPAID_ORDERS"] == 3
    assert settings["MAX_UNITS_PER_PRODUCT"] == 10
    assert 2 * 1024 * 1024 < settings["MAX_CONTENT_LENGTH"] <= 5 * 1024 * 1024


def test_the_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHECKOUT_RATE_LIMIT", "500 per minute")
    monkeypatch.setenv("MAX_UNPAID_ORDERS", "7")
    monkeypatch.setenv("MAX_UNITS_PER_PRODUCT", "25")
    settings = config.from_environment()
    assert settings["CHECKOUT_RATE_LIMIT"] == "500 per minute"
    assert settings["MAX_UNPAID_ORDERS"] == 7
    assert settings["MAX_UNITS_PER_PRODUCT"] == 25


# --- CHECKOUT_RATE_LIMIT ---------------------------------------------------------


def test_checkouts_beyond_the_rate_are_429_with_retry_after(make_app, khalti_sandbox):
    shop = shop_with(make_app, khalti_sandbox, CHECKOUT_RATE_LIMIT="2 per minute")
    shop.add("jordan-air", 1)
    assert shop.checkout(email="bad").status_code == 400  # counts too
    assert shop.checkout().status_code == 303
    cart_before = shop.client.get("/cart").text.count("<tr data-product-id")

    refused = shop.checkout()

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many requests" in refused.text
    assert orders_count(shop.app) == 1
    # The buyer's cart and order are untouched; pages other than these still work.
    assert shop.client.get("/cart").text.count("<tr data-product-id") == cart_before
    assert shop.client.get("/orders").status_code == 200
    assert shop.client.get("/checkout").status_code == 200


def test_check_again_shares_the_checkout_budget(make_app, khalti_sandbox):
    shop = shop_with(make_app, khalti_sandbox, CHECKOUT_RATE_LIMIT="2 per minute")
    order = shop.start()  # one
    verify = f"/orders/{order.purchase_order_id}/verify"
    assert shop.client.post(verify).status_code == 303  # two
    refused = shop.client.post(verify)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers


def test_the_rate_is_per_client_address(make_app, khalti_sandbox):
    shop = shop_with(make_app, khalti_sandbox, CHECKOUT_RATE_LIMIT="1 per minute")
    shop.add("jordan-air", 1)
    assert shop.checkout().status_code == 303
    assert shop.checkout().status_code == 429
    other = shop.app.test_client()
    other.post("/cart/add", data={"product_id": 1, "quantity": 1})
    other_buyer = other.post(
        "/checkout",
        data={
            "name": "Hari",
            "email": "hari@example.com",
            "phone": "9812345678",
            "checkout_token": "b" * 22,
        },
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert other_buyer.status_code == 303


# --- MAX_UNPAID_ORDERS -------------------------------------------------------------


def test_a_browser_may_hold_only_so_many_unpaid_orders(make_app, khalti_sandbox):
    shop = shop_with(make_app, khalti_sandbox, MAX_UNPAID_ORDERS=2)
    first = shop.start()
    shop.start()
    stock_before = shop.stock("jordan-air")

    refused = shop.checkout()

    assert refused.status_code == 409
    assert "You already have 2 orders waiting for payment" in refused.text
    assert orders_count(shop.app) == 2
    assert shop.stock("jordan-air") == stock_before
    # Once one is settled (here canceled at Khalti), the buyer may order again.
    shop.come_back(shop.sandbox.cancel(first.payment_url))
    assert shop.order(first.purchase_order_id).status == OrderStatus.CANCELED
    assert shop.checkout().status_code == 303


def test_the_same_form_sent_again_still_finds_its_order(make_app, khalti_sandbox):
    shop = shop_with(make_app, khalti_sandbox, MAX_UNPAID_ORDERS=1)
    shop.add("jordan-air", 1)
    token = shop.checkout_token()
    first = shop.checkout(checkout_token=token)
    again = shop.checkout(checkout_token=token)
    assert again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert orders_count(shop.app) == 1


# --- MAX_UNITS_PER_PRODUCT -----------------------------------------------------------


def test_units_of_one_product_are_capped(make_app, khalti_sandbox):
    shop = shop_with(make_app, khalti_sandbox, MAX_UNITS_PER_PRODUCT=3)
    assert shop.add("jordan-air", 3).status_code == 303
    refused = shop.add("jordan-air", 1)
    assert refused.status_code == 400
    assert "You can buy at most 3 of one product in one order." in refused.text
    page = shop.client.get("/cart").text
    assert 'data-quantity="3"' in page
    assert 'max="3"' in page  # the quantity box says so before anyone types
    jordan = shop.product("jordan-air")
    updated = shop.client.post(
        "/cart/update", data={"product_id": jordan.id, "quantity": 4}
    )
    assert updated.status_code == 400
    assert 'data-quantity="3"' in shop.client.get("/cart").text


def test_a_cart_filled_before_the_cap_cannot_check_out_over_it(
    make_app, khalti_sandbox
):
    roomy = shop_with(make_app, khalti_sandbox)
    roomy.add("jordan-air", 5)
    strict = make_app(MAX_UNITS_PER_PRODUCT=3)
    # The same browser (its cookie) on a shop with the lower cap.
    client = strict.test_client()
    client.set_cookie("session", roomy.client.get_cookie("session").value)
    shop = Shop(strict, client, khalti_sandbox)
    refused = shop.checkout()
    assert refused.status_code == 400
    assert "at most 3" in refused.text
    assert orders_count(strict) == 0


# --- The return URL -----------------------------------------------------------------


def callbacks(shop, order) -> list[dict]:
    with shop.app.app_context():
        fresh = db.session.get(Order, order.id)
        return [e.payload for e in fresh.events if e.kind == "callback"]


def test_only_khaltis_documented_parameters_are_stored(shop):
    order = shop.start()
    query = (
        f"pidx={order.pidx}&status=Pending&amount=20000&mobile=98XXXXX904"
        f"&junk={'x' * 5000}&another=1&purchase_order_name={'n' * 500}"
    )
    assert shop.come_back(f"/successfull-payment?{query}").status_code == 303
    assert callbacks(shop, order) == [
        {
            "pidx": order.pidx,
            "status": "Pending",
            "amount": "20000",
            "mobile": "98XXXXX904",
            "purchase_order_name": "n" * 100,
        }
    ]


def test_a_return_soon_after_a_lookup_shows_the_order_without_asking(shop):
    order = shop.start()
    shop.sandbox.force(order.pidx, "Pending")
    url = f"/successfull-payment?pidx={order.pidx}"
    lookups_before = shop.sandbox.stats()["lookup"]
    for n in range(20):
        response = shop.come_back(f"{url}&amount={n}")
        assert response.status_code == 303
    # One lookup, one stored callback: the other 19 showed the order as it stood.
    assert shop.sandbox.stats()["lookup"] == lookups_before + 1
    assert len(callbacks(shop, order)) == 1
    page = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert "Check again" in page
    # "Check again" always asks.
    shop.sandbox.force(order.pidx, "Completed")
    assert shop.client.post(f"/orders/{order.purchase_order_id}/verify").status_code
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID


def test_a_repeated_identical_callback_is_stored_once(app, shop):
    order = shop.start()
    shop.sandbox.force(order.pidx, "Pending")
    url = f"/successfull-payment?pidx={order.pidx}&status=Pending"
    shop.come_back(url)
    # Later than the few seconds that skip the lookup.
    with app.app_context():
        db.session.execute(
            db.text("UPDATE payment_events SET created_at = '2020-01-01 00:00:00'")
        )
        db.session.commit()
    shop.come_back(url)
    assert len(callbacks(shop, order)) == 1
    assert shop.events(order).count("lookup_response") == 2


# --- Request size ---------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_and_changes_nothing(client, shop):
    response = client.post(
        "/cart/add",
        data={"product_id": "1", "quantity": "1", "padding": "x" * 5 * 1024 * 1024},
    )
    assert response.status_code == 413
    assert "too large" in response.text
    assert 'data-cart-count="0"' in client.get("/cart").text


def test_nginx_refuses_the_same_size():
    recipe = (ROOT / "deploy" / "nginx-shop.conf").read_text()
    assert re.search(r"client_max_body_size 4m;", recipe)
