"""axe-core, run inside Chromium, on every page a buyer can reach.

Each case brings the browser to one page, in the state a buyer would see it,
and fails on any violation axe rates serious or critical (contrast, missing
labels, broken ARIA, unreachable scrolling regions and the like).
"""

import pytest
from playwright.sync_api import expect

from .buyer import (
    add_to_cart,
    check_out,
    go_to_checkout,
    log_in_to_khalti,
    open_cart,
    order_status,
    pay_on_khalti,
)


def catalog(page, shop, sandbox):
    pass


def cart(page, shop, sandbox):
    add_to_cart(page, "Jordan Air", 2)


def cart_under_minimum(page, shop, sandbox):
    add_to_cart(page, "Khalti Sticker")
    page.goto(f"{shop.url}/checkout")  # refused, back to the cart with a message


def checkout(page, shop, sandbox):
    add_to_cart(page, "Jordan Air")
    go_to_checkout(page)


def checkout_with_errors(page, shop, sandbox):
    checkout(page, shop, sandbox)
    page.get_by_label("Email").fill("not an email")
    page.get_by_label("Mobile number").fill("12345")
    page.get_by_role("button", name="Pay Rs 200.00 with Khalti").click()
    expect(page.locator(".field-error")).to_have_count(3)


def sandbox_payment_page(page, shop, sandbox):
    add_to_cart(page, "Jordan Air")
    check_out(page, sandbox.url)


def sandbox_wrong_mpin(page, shop, sandbox):
    sandbox_payment_page(page, shop, sandbox)
    log_in_to_khalti(page, mpin="0000")
    expect(page.get_by_role("alert")).to_be_visible()


def sandbox_otp_page(page, shop, sandbox):
    sandbox_payment_page(page, shop, sandbox)
    log_in_to_khalti(page)
    expect(page.get_by_label("OTP (sent to your phone)")).to_be_visible()


def sandbox_closed_link(page, shop, sandbox):
    paid_receipt(page, shop, sandbox)
    page.goto(shop.latest_order().payment_url)
    expect(page.get_by_text("This payment is already complete.")).to_be_visible()


def paid_receipt(page, shop, sandbox):
    sandbox_payment_page(page, shop, sandbox)
    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    # Open every step's JSON, so axe sees those regions too.
    for summary in page.locator(".timeline summary").all():
        summary.click()


def pending_receipt(page, shop, sandbox):
    sandbox_payment_page(page, shop, sandbox)
    page.get_by_role("button", name="Simulate pending").click()
    expect(order_status(page)).to_have_attribute("data-order-status", "pending")


def canceled_receipt(page, shop, sandbox):
    sandbox_payment_page(page, shop, sandbox)
    page.get_by_role("button", name="Cancel payment").click()
    expect(order_status(page)).to_have_attribute("data-order-status", "canceled")


def confirming_lookup_down(page, shop, sandbox):
    sandbox_payment_page(page, shop, sandbox)
    sandbox.fault("lookup", "http_503")
    pay_on_khalti(page)
    expect(page.get_by_role("button", name="Check again")).to_be_visible()


def error_400(page, shop, sandbox):
    page.goto(f"{shop.url}/successfull-payment")


def error_404(page, shop, sandbox):
    page.goto(f"{shop.url}/orders/no-such-order")


def error_405(page, shop, sandbox):
    page.goto(f"{shop.url}/cart/add")


def error_502_payment_not_started(page, shop, sandbox):
    sandbox.fault("initiate", "http_503")
    add_to_cart(page, "Jordan Air")
    go_to_checkout(page)
    page.get_by_label("Full name").fill("Sita Sharma")
    page.get_by_label("Email").fill("sita@example.com")
    page.get_by_label("Mobile number").fill("9812345678")
    page.get_by_role("button", name="Pay Rs 200.00 with Khalti").click()
    expect(page.get_by_role("heading", name="Payment not started")).to_be_visible()


def unpaid_order_and_your_orders(page, shop, sandbox):
    """Khalti's tab closed: back through "Your orders" to the unpaid order."""
    sandbox_payment_page(page, shop, sandbox)
    page.goto(shop.url)
    page.get_by_role("link", name="Your orders").click()
    expect(page.get_by_role("heading", name="Your orders")).to_be_visible()
    page.locator("[data-order] a").click()
    expect(page.get_by_role("link", name="Continue to payment")).to_be_visible()


def your_orders(page, shop, sandbox):
    unpaid_order_and_your_orders(page, shop, sandbox)
    page.get_by_role("link", name="Your orders").click()


def phone_cart(page, shop, sandbox):
    page.set_viewport_size({"width": 375, "height": 740})
    add_to_cart(page, "Jordan Air", 2)
    open_cart(page)


PAGES = [
    catalog,
    cart,
    cart_under_minimum,
    checkout,
    checkout_with_errors,
    sandbox_payment_page,
    sandbox_wrong_mpin,
    sandbox_otp_page,
    sandbox_closed_link,
    paid_receipt,
    pending_receipt,
    canceled_receipt,
    confirming_lookup_down,
    error_400,
    error_404,
    error_405,
    error_502_payment_not_started,
    unpaid_order_and_your_orders,
    your_orders,
    phone_cart,
]


@pytest.mark.parametrize("reach", PAGES, ids=[reach.__name__ for reach in PAGES])
def test_no_serious_accessibility_violations(
    reach, page, served_shop, khalti_sandbox, assert_accessible
):
    reach(page, served_shop, khalti_sandbox)

    assert_accessible(page)
