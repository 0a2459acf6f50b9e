"""Khalti down for a while: the circuit breaker spares buyers the wait.

After several calls in a row find no Khalti, checkouts answer at once that
Khalti is not answering and nothing was charged, lookups leave orders as
they are, and /healthz says so; a trial call a few seconds later finds
Khalti back, and everything works as before on its own.
"""

import time

import pytest
from conftest import Shop

import khalti
from models import OrderStatus

# Short, so that the test waits little for each timeout and for the trial.
TIMEOUT = (0.5, 0.5)
COOLDOWN = 0.5


@pytest.fixture
def shop(make_app, khalti_sandbox):
    """A shop whose breaker opens after 3 silent calls, for half a second."""
    app = make_app(KHALTI_TIMEOUT=TIMEOUT)
    app.extensions["khalti_breaker"] = khalti.CircuitBreaker(3, COOLDOWN)
    return Shop(app, app.test_client(), khalti_sandbox)


def timed_checkout(shop):
    assert shop.add("jordan-air", 1).status_code == 303
    started = time.monotonic()
    response = shop.checkout()
    return response, time.monotonic() - started


def health(shop) -> str:
    return shop.client.get("/healthz").json["khalti"]


def test_a_hanging_khalti_is_not_waited_for_after_three_timeouts(shop):
    stock_before = shop.stock("jordan-air")
    shop.sandbox.fault("initiate", "hang", seconds=3)
    for _ in range(3):
        response, seconds = timed_checkout(shop)
        assert response.status_code == 502
        assert seconds >= TIMEOUT[1]
    assert health(shop) == "open"
    calls_before = shop.sandbox.stats()["initiate"]

    response, seconds = timed_checkout(shop)

    assert response.status_code == 503
    assert seconds < 0.5
    assert "Khalti is not answering, nothing was charged" in response.text
    assert int(response.headers["Retry-After"]) > 0
    assert shop.sandbox.stats()["initiate"] == calls_before  # not even asked
    order = shop.latest_order()
    assert order.status == OrderStatus.FAILED
    assert shop.stock("jordan-air") == stock_before  # every unit back


def test_checkouts_work_again_on_their_own_once_khalti_answers(shop):
    shop.sandbox.fault("initiate", "hang", seconds=3)
    for _ in range(3):
        timed_checkout(shop)
    shop.sandbox.fault("initiate", "none")
    assert timed_checkout(shop)[0].status_code == 503  # still open
    time.sleep(COOLDOWN)

    response, _ = timed_checkout(shop)  # the trial call

    assert response.status_code == 303
    assert health(shop) == "closed"
    order = shop.latest_order()
    shop.come_back(shop.sandbox.pay(order.payment_url))
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID


def test_a_trial_that_finds_khalti_still_down_opens_it_again(shop):
    shop.sandbox.fault("initiate", "hang", seconds=3)
    for _ in range(3):
        timed_checkout(shop)
    time.sleep(COOLDOWN)

    trial, seconds = timed_checkout(shop)
    after, quick = timed_checkout(shop)

    assert trial.status_code == 502 and seconds >= TIMEOUT[1]
    assert after.status_code == 503 and quick < 0.5
    assert health(shop) == "open"


def test_two_timeouts_then_a_healthy_khalti_change_nothing(shop):
    shop.sandbox.fault("initiate", "hang", seconds=3)
    for _ in range(2):
        assert timed_checkout(shop)[0].status_code == 502
    shop.sandbox.fault("initiate", "none")

    assert timed_checkout(shop)[0].status_code == 303
    assert health(shop) == "closed"


def test_errors_khalti_answers_with_do_not_open_it(shop):
    # A 500 is an answer: Khalti is up, and each buyer gets its own answer.
    shop.sandbox.fault("initiate", "http_500")
    for _ in range(5):
        assert timed_checkout(shop)[0].status_code == 502
    assert health(shop) == "closed"


def test_while_open_a_lookup_is_not_tried_and_the_order_stays_as_it_is(shop):
    order = shop.start()
    shop.sandbox.pay(order.payment_url)
    shop.sandbox.fault("lookup", "hang", seconds=3)
    for _ in range(3):
        assert check_again(shop, order).status_code == 502
    lookups = shop.sandbox.stats()["lookup"]

    started = time.monotonic()
    response = check_again(shop, order)

    assert time.monotonic() - started < 0.5
    assert response.status_code == 502
    assert shop.sandbox.stats()["lookup"] == lookups  # not even asked
    assert shop.order(order.purchase_order_id).status == OrderStatus.AWAITING_PAYMENT
    shop.sandbox.fault("lookup", "none")
    time.sleep(COOLDOWN)
    assert check_again(shop, order).status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID


def check_again(shop, order):
    return shop.client.post(f"/orders/{order.purchase_order_id}/verify")
