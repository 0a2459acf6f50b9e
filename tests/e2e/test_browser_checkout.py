"""A buyer's journeys, clicked through in Chromium against the shop and the sandbox."""

import re

from playwright.sync_api import expect

from .buyer import (
    add_to_cart,
    cart_count,
    check_out,
    fill_details,
    go_to_checkout,
    log_in_to_khalti,
    open_cart,
    order_status,
    pay_on_khalti,
    timeline_titles,
)


def test_buy_two_items_and_land_on_a_paid_receipt(page, served_shop, khalti_sandbox):
    add_to_cart(page, "Jordan Air", 2)
    page.get_by_role("link", name="Khalti Demo Shop").click()
    add_to_cart(page, "DSLR Camera")
    expect(cart_count(page)).to_have_attribute("data-cart-count", "3")
    expect(page.locator("[data-total-paisa]")).to_have_text("Rs 900.00")

    check_out(page, khalti_sandbox.url)
    expect(page.locator(".summary .amount")).to_have_text("Rs 900.00")
    pay_on_khalti(page)

    expect(page).to_have_url(re.compile(rf"^{served_shop.url}/orders/"))
    expect(page.get_by_role("status")).to_have_text("Payment received. Thank you!")
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    expect(page.locator(".order-items tbody tr")).to_have_count(2)
    expect(page.locator(".summary-list [data-total-paisa]")).to_have_text("Rs 900.00")
    expect(cart_count(page)).to_have_attribute("data-cart-count", "0")
    assert timeline_titles(page) == [
        "1. Order created",
        "2. Sent to Khalti",
        "3. Khalti answered",
        "4. You came back",
        "5. We asked Khalti",
        "6. Verdict: paid",
    ]
    # The JSON exchanged is there, collapsed until asked for.
    lookup = page.locator('[data-event="lookup_response"] details')
    expect(lookup.locator("pre")).to_be_hidden()
    lookup.locator("summary").click()
    expect(lookup.locator("pre")).to_contain_text('"status": "Completed"')


def test_cancel_on_khalti_keeps_the_cart(page, served_shop, khalti_sandbox):
    add_to_cart(page, "Dhaka Topi", 2)
    page.get_by_role("link", name="Khalti Demo Shop").click()
    add_to_cart(page, "Prayer Flags")
    check_out(page, khalti_sandbox.url)

    page.get_by_role("button", name="Cancel payment").click()

    expect(page).to_have_url(re.compile(rf"^{served_shop.url}/orders/"))
    expect(page.get_by_role("status")).to_contain_text("Your cart is still here")
    expect(order_status(page)).to_have_attribute("data-order-status", "canceled")
    expect(cart_count(page)).to_have_attribute("data-cart-count", "3")
    open_cart(page)
    rows = page.locator(".cart-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Dhaka Topi")).to_have_attribute("data-quantity", "2")
    expect(rows.filter(has_text="Prayer Flags")).to_have_attribute("data-quantity", "1")
    # The stock set aside for the canceled order is back on the shelf.
    assert served_shop.product("dhaka-topi").stock == 40


def test_wrong_mpin_shows_the_sandbox_error_and_can_be_corrected(
    page, served_shop, khalti_sandbox
):
    add_to_cart(page, "Himalayan Tea")
    check_out(page, khalti_sandbox.url)

    log_in_to_khalti(page, mpin="0000")

    expect(page.get_by_role("alert")).to_have_text("Incorrect MPIN.")
    mpin = page.get_by_label("MPIN")
    expect(mpin).to_have_attribute("aria-invalid", "true")
    expect(mpin).to_have_accessible_description("Incorrect MPIN.")
    order = served_shop.latest_order()
    assert khalti_sandbox.record(order.pidx)["status"] == "Initiated"

    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")


def test_reload_and_back_after_paying_change_nothing(page, served_shop, khalti_sandbox):
    returns = []
    page.on(
        "request",
        lambda request: (
            "/successfull-payment" in request.url and returns.append(request.url)
        ),
    )
    add_to_cart(page, "Lokta Notebook", 3)
    check_out(page, khalti_sandbox.url)
    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    order = served_shop.latest_order()
    receipt_url = page.url
    lookups = khalti_sandbox.stats()["lookup"]

    page.reload()
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    # Back to Khalti's page, then forward through the link Khalti sent us back on.
    page.go_back()
    page.goto(returns[0])

    expect(page).to_have_url(receipt_url)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    assert khalti_sandbox.stats()["lookup"] == lookups
    kinds = served_shop.event_kinds(order)
    assert kinds.count("status:paid") == 1
    assert kinds.count("callback") == 1
    assert served_shop.product("lokta-notebook").stock == 27


def test_pending_payment_is_confirmed_by_check_again(page, served_shop, khalti_sandbox):
    add_to_cart(page, "Jordan Air")
    check_out(page, khalti_sandbox.url)

    page.get_by_role("button", name="Simulate pending").click()

    expect(order_status(page)).to_have_attribute("data-order-status", "pending")
    expect(page.get_by_text("We are confirming your payment")).to_be_visible()
    # Khalti finishes processing the payment some time later.
    khalti_sandbox.force(served_shop.latest_order().pidx, "Completed")
    page.get_by_role("button", name="Check again").click()

    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    expect(page.get_by_role("status")).to_have_text("Payment received. Thank you!")
    expect(page.get_by_role("button", name="Check again")).to_have_count(0)


def test_a_cart_under_rs_10_is_refused_with_a_clear_message(page, khalti_sandbox):
    add_to_cart(page, "Khalti Sticker")

    expect(page.locator("[data-total-paisa]")).to_have_text("Rs 5.00")
    refusal = page.get_by_text("Khalti accepts payments of Rs 10.00 or more.")
    expect(refusal).to_be_visible()
    expect(page.get_by_role("link", name="Check out")).to_have_count(0)
    # Typing the checkout address does not get around it.
    page.goto(page.url.replace("/cart", "/checkout"))
    expect(page.get_by_role("heading", name="Your cart", exact=True)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Rs 10.00 or more")

    page.get_by_label("Quantity of Khalti Sticker").fill("2")
    page.get_by_role("button", name="Update Khalti Sticker").click()
    expect(page.locator("[data-total-paisa]")).to_have_text("Rs 10.00")
    go_to_checkout(page)
    assert khalti_sandbox.stats()["initiate"] == 0


def test_checkout_mistakes_are_announced_next_to_their_fields(page, khalti_sandbox):
    add_to_cart(page, "Jordan Air")
    go_to_checkout(page)
    fill_details(page, phone="12345")
    page.get_by_role("button", name="Pay Rs 200.00 with Khalti").click()

    phone = page.get_by_label("Mobile number")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_accessible_description(
        "10 digits, starting with 97 or 98. Spaces and dashes are fine."
        " Enter a 10-digit mobile number starting with 97 or 98."
    )
    expect(page.get_by_role("alert")).to_have_text(
        "Enter a 10-digit mobile number starting with 97 or 98."
    )
    # What was typed is kept; nothing went to Khalti.
    expect(page.get_by_label("Full name")).to_have_value("Sita Sharma")
    assert khalti_sandbox.stats()["initiate"] == 0


def test_a_closed_khalti_tab_is_not_a_lost_payment(page, served_shop, khalti_sandbox):
    """The buyer leaves Khalti's page, finds the order again and pays it."""
    add_to_cart(page, "Dhaka Topi")
    check_out(page, khalti_sandbox.url)
    page.goto(served_shop.url)  # as if Khalti's tab was closed

    page.get_by_role("link", name="Your orders").click()
    page.locator("[data-order] a").click()
    page.get_by_role("link", name="Continue to payment").click()
    pay_on_khalti(page)

    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
