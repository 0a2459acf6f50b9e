"""Coming back from Khalti: only a lookup decides, and only once."""

import threading
from urllib.parse import urlencode

import pytest
import requests
from werkzeug.serving import make_server

from models import OrderStatus


def test_happy_path_two_items_paid_with_receipt(client, shop):
    stock_before = shop.stock("jordan-air")
    order = shop.start(("jordan-air", 2), ("dslr-camera", 1))
    return_url = shop.sandbox.pay(order.payment_url)
    assert return_url.startswith("http://localhost/successfull-payment?pidx=")

    response = shop.come_back(return_url)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/orders/{order.purchase_order_id}"

    paid = shop.order(order.purchase_order_id)
    assert paid.status == OrderStatus.PAID
    assert paid.transaction_id
    assert shop.stock("jordan-air") == stock_before - 2

    receipt = client.get(response.headers["Location"]).text
    assert 'data-order-status="paid"' in receipt
    assert "Payment received" in receipt
    assert "Rs 900.00" in receipt
    assert paid.transaction_id in receipt
    assert 'data-event="status:paid"' in receipt
    assert 'data-cart-count="0"' in receipt  # paying empties the cart
    assert shop.events(order) == [
        "order_created",
        "initiate_request",
        "initiate_response",
        "status:awaiting_payment",
        "callback",
        "lookup_response",
        "status:paid",
    ]


@pytest.mark.parametrize(
    ("lookup_status", "order_status", "stock_released"),
    [
        ("Completed", OrderStatus.PAID, False),
        ("Initiated", OrderStatus.AWAITING_PAYMENT, False),
        ("Pending", OrderStatus.PENDING, False),
        ("User canceled", OrderStatus.CANCELED, True),
        ("Expired", OrderStatus.EXPIRED, True),
        ("Refunded", OrderStatus.REFUNDED, False),
        ("Partially Refunded", OrderStatus.PARTIALLY_REFUNDED, False),
        ("Failed", OrderStatus.FAILED, True),
        ("Something new", OrderStatus.NEEDS_REVIEW, False),
    ],
)
def test_each_lookup_status_moves_the_order(
    shop, lookup_status, order_status, stock_released
):
    stock_before = shop.stock("dslr-camera")
    order = shop.start(("dslr-camera", 2))
    shop.sandbox.force(order.pidx, lookup_status)

    response = shop.come_back(f"/successfull-payment?pidx={order.pidx}")

    assert response.status_code == 303
    assert shop.order(order.purchase_order_id).status == order_status
    expected_stock = stock_before if stock_released else stock_before - 2
    assert shop.stock("dslr-camera") == expected_stock


def test_completed_for_another_amount_needs_review(shop):
    order = shop.start(("dslr-camera", 1))
    shop.sandbox.force(order.pidx, "Completed", total_amount=order.total_paisa - 100)
    shop.come_back(f"/successfull-payment?pidx={order.pidx}")
    assert shop.order(order.purchase_order_id).status == OrderStatus.NEEDS_REVIEW


def test_forged_callback_saying_completed_changes_nothing(client, shop):
    order = shop.start()
    forged = urlencode(
        {
            "pidx": order.pidx,
            "status": "Completed",
            "transaction_id": "FORGEDFORGEDFORGED1234",
            "amount": order.total_paisa,
            "total_amount": order.total_paisa,
            "purchase_order_id": order.purchase_order_id,
        }
    )
    response = shop.come_back(f"/successfull-payment?{forged}")
    assert response.status_code == 303
    after = shop.order(order.purchase_order_id)
    assert after.status == OrderStatus.AWAITING_PAYMENT  # lookup says Initiated
    assert after.transaction_id is None
    assert "status:paid" not in shop.events(order)


def test_pidx_of_another_order_settles_only_that_order(shop):
    mine = shop.start()
    other = shop.start()
    shop.sandbox.pay(other.payment_url)
    # Other's pidx with my purchase_order_id: the pidx alone decides.
    query = urlencode({"pidx": other.pidx, "purchase_order_id": mine.purchase_order_id})
    response = shop.come_back(f"/successfull-payment?{query}")
    assert response.headers["Location"] == f"/orders/{other.purchase_order_id}"
    assert shop.order(other.purchase_order_id).status == OrderStatus.PAID
    assert shop.order(mine.purchase_order_id).status == OrderStatus.AWAITING_PAYMENT


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("?pidx=", 400),
        ("?status=Completed", 400),
        ("?pidx=NeverIssuedByThisShop1", 404),
        ("?pidx=" + "x" * 5000, 404),
    ],
)
def test_missing_or_unknown_pidx_is_refused_and_changes_nothing(shop, query, status):
    order = shop.start()
    events = shop.events(order)
    response = shop.come_back(f"/successfull-payment{query}")
    assert response.status_code == status
    assert shop.order(order.purchase_order_id).status == OrderStatus.AWAITING_PAYMENT
    assert shop.events(order) == events
    assert shop.sandbox.stats()["lookup"] == 0


def test_reload_after_paid_changes_nothing(shop):
    stock_before = shop.stock("jordan-air")
    order = shop.start()
    return_url = shop.sandbox.pay(order.payment_url)
    shop.come_back(return_url)
    events = shop.events(order)
    lookups = shop.sandbox.stats()["lookup"]

    for _ in range(3):
        response = shop.come_back(return_url)
        assert response.status_code == 303

    assert shop.events(order) == events
    assert shop.events(order).count("status:paid") == 1
    assert shop.sandbox.stats()["lookup"] == lookups
    assert shop.stock("jordan-air") == stock_before - 1


def test_cancel_keeps_the_cart_and_releases_stock(client, shop):
    stock_before = shop.stock("jordan-air")
    order = shop.start(("jordan-air", 3))
    response = shop.come_back(shop.sandbox.cancel(order.payment_url))
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert 'data-order-status="canceled"' in page
    assert "Your cart is still here" in page
    assert 'data-cart-count="3"' in page
    assert shop.stock("jordan-air") == stock_before


def test_pending_shows_check_again_which_settles_it(client, shop):
    order = shop.start()
    shop.sandbox.force(order.pidx, "Pending")
    shop.come_back(f"/successfull-payment?pidx={order.pidx}")
    page = client.get(f"/orders/{order.purchase_order_id}").text
    assert "We are confirming your payment" in page
    assert f'action="/orders/{order.purchase_order_id}/verify"' in page

    shop.sandbox.force(order.pidx, "Completed")
    response = client.post(f"/orders/{order.purchase_order_id}/verify")
    assert response.status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID


def test_order_page_shows_customer_details_only_to_the_buyer(app, client, shop):
    order = shop.buy()
    mine = client.get(f"/orders/{order.purchase_order_id}").text
    assert "sita@example.com" in mine
    stranger = app.test_client().get(f"/orders/{order.purchase_order_id}")
    assert stranger.status_code == 200
    assert 'data-order-status="paid"' in stranger.text
    for private in ("sita@example.com", "Sita Sharma", "9812345678"):
        assert private not in stranger.text


def test_unknown_order_page_is_404(client):
    assert client.get("/orders/nope").status_code == 404
    assert client.post("/orders/nope/verify").status_code == 404


@pytest.mark.parametrize(
    ("outcome", "final", "stock_change"),
    [("pay", OrderStatus.PAID, -1), ("cancel", OrderStatus.CANCELED, 0)],
)
def test_simultaneous_returns_make_one_status_change(
    app, shop, outcome, final, stock_change
):
    """Many tabs returning at once: one status change, stock moved once."""
    stock_before = shop.stock("jordan-air")
    order = shop.start()
    getattr(shop.sandbox, outcome)(order.payment_url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.port}/successfull-payment?pidx={order.pidx}"
    statuses = []

    def hit():
        response = requests.get(url, allow_redirects=False, timeout=10)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.shutdown()

    assert statuses == [303] * 16
    assert shop.events(order).count(f"status:{final}") == 1
    assert shop.order(order.purchase_order_id).status == final
    assert shop.stock("jordan-air") == stock_before + stock_change
