"""The same checkout form submitted twice makes one order and one Khalti payment."""

import threading
import time

import pytest
from sqlalchemy import inspect

from models import Order, OrderStatus, db


def order_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Order.id)))


def test_the_form_carries_a_new_token_each_time_it_is_shown(shop):
    shop.add("jordan-air", 1)
    tokens = {shop.checkout_token() for _ in range(3)}
    assert len(tokens) == 3


def test_submitting_the_same_form_again_answers_with_the_same_payment(app, shop):
    shop.add("jordan-air", 1)
    stock_before = shop.stock("jordan-air")
    token = shop.checkout_token()

    first = shop.checkout(checkout_token=token)
    again = shop.checkout(checkout_token=token)

    order = shop.latest_order()
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"] == order.payment_url
    assert order_count(app) == 1
    assert shop.sandbox.stats()["initiate"] == 1
    assert shop.stock("jordan-air") == stock_before - 1
    assert shop.events(order).count("order_created") == 1


def test_a_repeat_after_the_payment_settled_goes_to_the_order_page(app, shop):
    shop.add("jordan-air", 1)
    token = shop.checkout_token()
    shop.checkout(checkout_token=token)
    order = shop.latest_order()
    shop.come_back(shop.sandbox.pay(order.payment_url))

    again = shop.checkout(checkout_token=token)

    assert again.status_code == 303
    assert again.headers["Location"] == f"/orders/{order.purchase_order_id}"
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
    assert order_count(app) == 1
    assert shop.sandbox.stats()["initiate"] == 1


def test_a_repeat_after_khalti_refused_shows_the_failed_order(app, shop):
    shop.add("jordan-air", 1)
    token = shop.checkout_token()
    shop.sandbox.fault("initiate", "http_503")
    assert shop.checkout(checkout_token=token).status_code == 502
    shop.sandbox.fault("initiate", "none")

    again = shop.checkout(checkout_token=token)

    order = shop.latest_order()
    assert order.status == OrderStatus.FAILED
    assert again.headers["Location"] == f"/orders/{order.purchase_order_id}"
    assert order_count(app) == 1
    # A freshly opened form starts a new order.
    assert shop.checkout().status_code == 303
    assert order_count(app) == 2


def test_a_repeat_while_khalti_answers_the_first_waits_for_it(app, shop):
    """The second request finds the order still `created` and waits, not initiates."""
    shop.add("jordan-air", 1)
    token = shop.checkout_token()
    shop.sandbox.fault("initiate", "delay", seconds=1)
    first = []
    thread = threading.Thread(
        target=lambda: first.append(shop.checkout(checkout_token=token))
    )
    thread.start()
    while shop.sandbox.stats()["initiate"] == 0:  # Khalti has the first request
        time.sleep(0.02)

    # The same browser (its cookie, so its cart), as a second click sends it.
    second_click = app.test_client()
    second_click.set_cookie("session", shop.client.get_cookie("session").value)
    again = second_click.post(
        "/checkout",
        data={
            "checkout_token": token,
            "name": "Sita Sharma",
            "email": "sita@example.com",
            "phone": "9812345678",
        },
    )
    thread.join()

    order = shop.latest_order()
    assert again.status_code == first[0].status_code == 303
    assert again.headers["Location"] == first[0].headers["Location"]
    assert again.headers["Location"] == order.payment_url
    assert shop.sandbox.stats()["initiate"] == 1
    assert order_count(app) == 1


def test_a_different_form_makes_a_different_order(app, shop):
    shop.add("jordan-air", 1)
    first = shop.checkout()
    second = shop.checkout()
    assert first.headers["Location"] != second.headers["Location"]
    assert order_count(app) == 2


@pytest.mark.parametrize("token", [None, "", "short", "x" * 23, "not/url*safe;token!!"])
def test_a_form_without_a_valid_token_is_refused_and_orders_nothing(app, shop, token):
    shop.add("jordan-air", 1)
    fields = {"checkout_token": token} if token is not None else {}
    details = {"name": "Sita Sharma", "email": "sita@example.com"}
    details |= {"phone": "9812345678"}
    response = shop.client.post("/checkout", data=details | fields)
    assert response.status_code == 400
    assert "Reload the checkout page and try again." in response.text
    assert order_count(app) == 0
    assert shop.sandbox.stats()["initiate"] == 0


def test_the_token_is_unique_in_the_database(app):
    with app.app_context():
        unique = inspect(db.engine).get_unique_constraints("orders")
    assert ("checkout_token",) in {tuple(c["column_names"]) for c in unique}
