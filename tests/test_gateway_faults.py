"""Khalti's lookup misbehaving while buyers come back, then recovering.

Every fault the sandbox can play, on the return from Khalti: the buyer gets
a plain "we are confirming" page within the shop's timeout, nothing about
the order changes, and once Khalti answers again the "Check again" button or
`flask reconcile` settles it. (Initiate faults: test_initiate_failures.py.)
"""

import time

import pytest

from models import OrderStatus

# The test shop's Khalti timeout is (2, 2): connect, then read.
BUDGET_SECONDS = 4

LOOKUP_FAULTS = [
    ("hang", 3),
    ("http_500", None),
    ("http_502", None),
    ("http_503", None),
    ("malformed_json", None),
    ("html_error", None),
    ("reset", None),
]


def check_again(client, order):
    return client.post(f"/orders/{order.purchase_order_id}/verify")


def reconcile(app):
    result = app.test_cli_runner().invoke(args=["reconcile"])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("recovery", ["check_again", "reconcile"])
@pytest.mark.parametrize(("fault", "seconds"), LOOKUP_FAULTS)
def test_lookup_fault_leaves_the_order_recoverable(
    app, client, shop, fault, seconds, recovery
):
    stock_before = shop.stock("jordan-air")
    order = shop.start()
    return_url = shop.sandbox.pay(order.payment_url)
    shop.sandbox.fault("lookup", fault, seconds=seconds)

    started = time.monotonic()
    response = shop.come_back(return_url)
    assert time.monotonic() - started < BUDGET_SECONDS
    assert response.status_code == 502
    assert "We are confirming your payment" in response.text
    assert "Nothing has changed and you will not be charged twice" in response.text
    assert "Check again" in response.text
    assert "Traceback" not in response.text
    unchanged = shop.order(order.purchase_order_id)
    assert unchanged.status == OrderStatus.AWAITING_PAYMENT
    assert "lookup_error" in shop.events(order)
    assert shop.stock("jordan-air") == stock_before - 1

    # Still down: neither way of asking again changes anything.
    assert check_again(client, order).status_code == 502
    assert "lookups failed" in reconcile(app).output
    assert shop.order(order.purchase_order_id).status == OrderStatus.AWAITING_PAYMENT

    shop.sandbox.fault("lookup", "none")
    if recovery == "check_again":
        settled = check_again(client, order)
        assert settled.status_code == 303
        assert "Payment received" in client.get(settled.headers["Location"]).text
    else:
        assert "awaiting_payment -> paid" in reconcile(app).output
    paid = shop.order(order.purchase_order_id)
    assert paid.status == OrderStatus.PAID
    assert shop.events(order).count("status:paid") == 1
    assert shop.stock("jordan-air") == stock_before - 1


@pytest.mark.parametrize(("fault", "seconds"), LOOKUP_FAULTS)
def test_lookup_fault_on_a_canceled_payment_then_release_once(
    app, client, shop, fault, seconds
):
    stock_before = shop.stock("jordan-air")
    order = shop.start()
    return_url = shop.sandbox.cancel(order.payment_url)
    shop.sandbox.fault("lookup", fault, seconds=seconds)
    assert shop.come_back(return_url).status_code == 502
    assert shop.stock("jordan-air") == stock_before - 1  # not released on a guess

    shop.sandbox.fault("lookup", "none")
    assert "awaiting_payment -> canceled" in reconcile(app).output
    assert check_again(client, order).status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.CANCELED
    assert shop.stock("jordan-air") == stock_before


def test_slow_lookup_within_the_budget_settles_normally(shop):
    order = shop.start()
    return_url = shop.sandbox.pay(order.payment_url)
    shop.sandbox.fault("lookup", "delay", seconds=1)
    assert shop.come_back(return_url).status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
