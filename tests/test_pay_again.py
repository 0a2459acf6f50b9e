"""Pay again: a canceled, expired or failed order's buyer places a new order
for the same items at today's prices, in one click, with the checkout's
guarantees; the old order stays as it was and both link to each other."""

import re

import pytest
from conftest import Shop

from models import Order, OrderStatus, db


def orders_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Order.id)))


def canceled_order(shop, *items) -> Order:
    order = shop.start(*items)
    shop.come_back(shop.sandbox.cancel(order.payment_url))
    return shop.order(order.purchase_order_id)


def pay_again_token(page: str) -> str:
    form = page.split('class="pay-again-form"')[1].split("</form>")[0]
    return re.search(r'name="checkout_token" type="hidden" value="([^"]+)"', form)[1]


def pay_again(shop, order, token=None):
    if token is None:
        page = shop.client.get(f"/orders/{order.purchase_order_id}").text
        token = pay_again_token(page)
    return shop.client.post(
        f"/orders/{order.purchase_order_id}/pay-again",
        data={"checkout_token": token},
    )


def test_pay_again_places_a_new_order_at_todays_prices_and_goes_to_khalti(shop):
    old = canceled_order(shop, ("jordan-air", 2), ("dslr-camera", 1))
    page = shop.client.get(f"/orders/{old.purchase_order_id}").text
    assert (
        '<button class="button button-primary" type="submit">Pay again</button>' in page
    )
    shop.set_product("jordan-air", price_paisa=25000)
    stock_before = shop.stock("jordan-air")

    response = pay_again(shop, old)

    assert response.status_code == 303
    new = shop.order(shop.latest_order().purchase_order_id)
    assert response.headers["Location"] == new.payment_url
    assert new.status == OrderStatus.AWAITING_PAYMENT
    assert new.retry_of_id == old.id
    assert new.total_paisa == 2 * 25000 + 50000  # today's price
    assert (new.customer_name, new.customer_email, new.customer_phone) == (
        old.customer_name,
        old.customer_email,
        old.customer_phone,
    )
    assert {item.product_id: item.quantity for item in new.items} == old.quantities()
    assert shop.stock("jordan-air") == stock_before - 2
    # The old order is as it was.
    unchanged = shop.order(old.purchase_order_id)
    assert unchanged.status == OrderStatus.CANCELED
    assert unchanged.total_paisa == old.total_paisa
    # Both pages link to each other.
    old_page = shop.client.get(f"/orders/{old.purchase_order_id}").text
    assert f'href="/orders/{new.purchase_order_id}"' in old_page
    new_page = shop.client.get(f"/orders/{new.purchase_order_id}").text
    assert f'href="/orders/{old.purchase_order_id}"' in new_page
    # And it can be paid like any order.
    shop.come_back(shop.sandbox.pay(new.payment_url))
    assert shop.order(new.purchase_order_id).status == OrderStatus.PAID


@pytest.mark.parametrize("status", ["expired", "failed"])
def test_expired_and_failed_orders_offer_it_too(shop, status):
    order = shop.start()
    khalti_status = {"expired": "Expired", "failed": "Failed"}[status]
    shop.sandbox.force(order.pidx, khalti_status)
    shop.client.post(f"/orders/{order.purchase_order_id}/verify")
    assert shop.order(order.purchase_order_id).status == status
    assert pay_again(shop, order).status_code == 303
    assert orders_count(shop.app) == 2


def test_only_the_browser_that_placed_it_may_pay_again(shop):
    old = canceled_order(shop)
    stranger = Shop(shop.app, shop.app.test_client(), shop.sandbox)
    page = stranger.client.get(f"/orders/{old.purchase_order_id}").text
    assert "Pay again" not in page
    refused = pay_again(stranger, old, token="a" * 22)
    assert refused.status_code == 403
    assert orders_count(shop.app) == 1


def test_a_paid_or_open_order_offers_no_pay_again(shop):
    paid = shop.buy()
    assert "Pay again" not in shop.client.get(f"/orders/{paid.purchase_order_id}").text
    assert pay_again(shop, paid, token="a" * 22).status_code == 403
    waiting = shop.start()
    assert pay_again(shop, waiting, token="b" * 22).status_code == 403
    assert orders_count(shop.app) == 2


def test_the_same_pay_again_sent_twice_places_one_order(shop):
    old = canceled_order(shop)
    token = pay_again_token(shop.client.get(f"/orders/{old.purchase_order_id}").text)
    first = pay_again(shop, old, token)
    second = pay_again(shop, old, token)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert orders_count(shop.app) == 2


def test_sold_out_since_is_refused_on_the_old_orders_page(shop):
    old = canceled_order(shop, ("dslr-camera", 2))
    shop.set_product("dslr-camera", stock=1)
    refused = pay_again(shop, old)
    assert refused.status_code == 400
    assert "Only 1 of DSLR Camera left in stock." in refused.text
    assert f"Order {old.purchase_order_id}" in refused.text
    assert orders_count(shop.app) == 1


def test_a_bad_token_is_a_400_that_changes_nothing(shop):
    old = canceled_order(shop)
    refused = pay_again(shop, old, token="not a token")
    assert refused.status_code == 400
    assert "This form is out of date" in refused.text
    assert orders_count(shop.app) == 1


def test_pay_again_counts_against_the_checkout_rate(make_app, khalti_sandbox):
    app = make_app(CHECKOUT_RATE_LIMIT="1 per minute")
    shop = Shop(app, app.test_client(), khalti_sandbox)
    old = canceled_order(shop)  # its checkout used the one allowed
    refused = pay_again(shop, old)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert orders_count(app) == 1


def test_the_back_office_shows_the_link_too(shop, back_office):
    old = canceled_order(shop)
    pay_again(shop, old)
    new = shop.latest_order()
    page = back_office.client.get(f"/admin/orders/{new.purchase_order_id}").text
    assert f'href="/admin/orders/{old.purchase_order_id}"' in page
