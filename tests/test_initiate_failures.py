"""When Khalti refuses to start a payment, or cannot be reached."""

import threading
import time
from datetime import timedelta

import pytest
from conftest import ServedSandbox, Shop

import cart
from models import Order, OrderStatus, db, now_utc


def assert_failed_and_released(shop, stock_before: int, reason: str):
    order = shop.latest_order()
    assert order.status == OrderStatus.FAILED
    assert reason in order.failure_reason
    assert order.pidx is None
    assert shop.stock("jordan-air") == stock_before
    assert "status:failed" in shop.events(order)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("http_500", "HTTP 500"),
        ("http_502", "HTTP 502"),
        ("http_503", "HTTP 503"),
        ("html_error", "HTTP 502"),
        ("malformed_json", "not JSON"),
        ("reset", "Could not reach Khalti"),
    ],
)
def test_gateway_trouble_fails_the_order_with_502(shop, fault, reason):
    stock_before = shop.stock("jordan-air")
    shop.sandbox.fault("initiate", fault)
    shop.add("jordan-air", 1)
    started = time.monotonic()
    response = shop.checkout()
    assert time.monotonic() - started < 2  # nothing to wait for: answer at once
    assert response.status_code == 502
    assert "We could not reach Khalti" in response.text
    assert "Nothing was charged" in response.text
    assert "Traceback" not in response.text
    assert_failed_and_released(shop, stock_before, reason)
    assert_checkout_works_again(shop, stock_before)


def assert_checkout_works_again(shop, stock_before: int):
    """Once Khalti is back, the same cart checks out and gets paid."""
    failed = shop.latest_order()
    shop.sandbox.fault("initiate", "none")
    response = shop.checkout()
    assert response.status_code == 303
    order = shop.latest_order()
    assert order.id != failed.id
    shop.come_back(shop.sandbox.pay(order.payment_url))
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
    assert shop.order(failed.purchase_order_id).status == OrderStatus.FAILED
    assert shop.stock("jordan-air") == stock_before - 1


def test_timeout_fails_the_order_within_the_budget(shop):
    stock_before = shop.stock("jordan-air")
    shop.sandbox.fault("initiate", "hang", seconds=4)  # the shop waits 2 s
    shop.add("jordan-air", 1)
    started = time.monotonic()
    response = shop.checkout()
    assert time.monotonic() - started < 4
    assert response.status_code == 502
    assert "We could not reach Khalti" in response.text
    assert_failed_and_released(shop, stock_before, "Could not reach Khalti")
    assert_checkout_works_again(shop, stock_before)


def test_slow_gateway_within_the_budget_is_just_slow(shop):
    shop.sandbox.fault("initiate", "delay", seconds=1)  # the shop waits 2 s
    order = shop.start()
    assert order.status == OrderStatus.AWAITING_PAYMENT


def test_wrong_secret_key_fails_the_order(make_app, tmp_path):
    keyed = ServedSandbox({"KHALTI_SECRET_KEY": "the-real-one"})
    try:
        app = make_app(KHALTI_SECRET_KEY="not-the-one", KHALTI_BASE_URL=keyed.api_url)
        shop = Shop(app, app.test_client(), keyed)
        stock_before = shop.stock("jordan-air")
        shop.add("jordan-air", 1)
        response = shop.checkout()
        assert response.status_code == 502
        assert "not-the-one" not in response.text
        assert_failed_and_released(shop, stock_before, "Invalid token.")
    finally:
        keyed.stop()


def test_validation_refusal_fails_the_order_with_400(shop, monkeypatch):
    # Were the shop's own Rs 10 check missing, Khalti would refuse the amount.
    monkeypatch.setattr(cart, "MINIMUM_PAISA", 0)
    stock_before = shop.stock("khalti-sticker")
    shop.add("khalti-sticker", 1)
    response = shop.checkout()
    assert response.status_code == 400
    assert "Amount should be greater than Rs. 10" in response.text
    order = shop.latest_order()
    assert order.status == OrderStatus.FAILED
    assert shop.stock("khalti-sticker") == stock_before


def test_late_answer_after_reconcile_gave_up_sends_nobody_to_pay(app, shop):
    """Reconcile fails an order stuck in `created`; Khalti's late answer is void."""
    stock_before = shop.stock("jordan-air")
    shop.add("jordan-air", 1)
    shop.sandbox.fault("initiate", "delay", seconds=1.5)
    responses = []
    checkout = threading.Thread(target=lambda: responses.append(shop.checkout()))
    checkout.start()
    while shop.sandbox.stats()["initiate"] == 0:
        time.sleep(0.05)
    with app.app_context():  # as if the call had been hanging for a minute
        db.session.execute(
            db.update(Order).values(created_at=now_utc() - timedelta(minutes=1))
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["reconcile"])
    checkout.join()

    order = shop.latest_order()
    assert f"{order.purchase_order_id}  created -> failed" in result.output
    assert responses[0].status_code == 502
    assert "Nothing was charged" in responses[0].text
    assert order.status == OrderStatus.FAILED
    assert order.pidx is None
    assert shop.stock("jordan-air") == stock_before
