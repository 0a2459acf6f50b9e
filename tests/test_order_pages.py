"""Back to an unpaid order, the list of this browser's orders, the payment log."""

import logging
import re
import time

from conftest import Shop

from models import OrderStatus

CONTINUE = re.compile(r'<a class="button[^"]*" href="([^"]+)">Continue to payment</a>')
CHECK_AGAIN = '<button class="button button-{}" type="submit">Check again</button>'


def test_an_unpaid_order_offers_to_continue_to_khaltis_page(shop):
    order = shop.start()

    page = shop.client.get(f"/orders/{order.purchase_order_id}").text

    assert CONTINUE.search(page)[1] == order.payment_url
    assert CHECK_AGAIN.format("secondary") in page


def test_past_its_expiry_check_again_settles_it_as_expired(
    shop, khalti_sandbox, monkeypatch
):
    monkeypatch.setitem(khalti_sandbox.app.config, "SANDBOX_EXPIRES_IN", 1)
    stock_before = shop.stock("jordan-air")
    order = shop.start()
    time.sleep(1.1)

    page = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert not CONTINUE.search(page)
    assert CHECK_AGAIN.format("primary") in page
    assert "payment link for this order has expired" in page

    checked = shop.client.post(f"/orders/{order.purchase_order_id}/verify")

    assert checked.status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.EXPIRED
    assert shop.stock("jordan-air") == stock_before
    assert "Check again" not in shop.client.get(checked.headers["Location"]).text


def order_rows(page: str) -> list[tuple[str, str, str]]:
    """(reference, status, total in paisa) for each row of the orders page."""
    return re.findall(
        r'<tr data-order="([^"]+)">.*?data-order-status="([^"]+)".*?'
        r'data-total-paisa="(\d+)"',
        page,
        re.DOTALL,
    )


def test_your_orders_lists_this_browsers_orders_newest_first(app, shop):
    catalog = shop.client.get("/").text
    assert "Your orders" not in catalog
    assert "No orders from this browser yet" in shop.client.get("/orders").text

    paid = shop.buy(("jordan-air", 1))
    waiting = shop.start(("dslr-camera", 2))

    page = shop.client.get("/orders")
    assert page.status_code == 200
    assert order_rows(page.text) == [
        (waiting.purchase_order_id, "awaiting_payment", "100000"),
        (paid.purchase_order_id, "paid", "20000"),
    ]
    assert f'href="/orders/{paid.purchase_order_id}"' in page.text
    assert '<a href="/orders">Your orders</a>' in shop.client.get("/").text


def test_another_browser_sees_none_of_them(app, shop, khalti_sandbox):
    shop.buy()
    stranger = Shop(app, app.test_client(), khalti_sandbox)
    page = stranger.client.get("/orders").text
    assert order_rows(page) == []
    assert "No orders from this browser yet" in page


def test_the_log_names_every_payment_step_and_no_secret(
    make_app, khalti_sandbox, caplog
):
    khalti_key = "live_secret_key_FAKE-for-tests-only-not-a-real-key"
    app = make_app(KHALTI_SECRET_KEY=khalti_key)
    shop = Shop(app, app.test_client(), khalti_sandbox)
    caplog.set_level(logging.INFO)

    order = shop.buy()

    # Each line names the order's status when its step was saved: Khalti's
    # answers are saved together with the status change they caused.
    steps = [
        ("-", "order_created", "created"),
        ("-", "initiate_request", "created"),
        (order.pidx, "initiate_response", "awaiting_payment"),
        (order.pidx, "status:awaiting_payment", "awaiting_payment"),
        (order.pidx, "callback", "paid"),
        (order.pidx, "lookup_response", "paid"),
        (order.pidx, "status:paid", "paid"),
    ]
    logged = [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.INFO and record.name == "app"
    ]
    assert logged == [
        f"order={order.purchase_order_id} pidx={pidx} step={step} status={status}"
        for pidx, step, status in steps
    ]
    for secret in (khalti_key, "sita@example.com", "9812345678", "Sita Sharma"):
        assert secret not in caplog.text
