"""The README's pictures, taken along a real purchase.

`make screenshots` sets SCREENSHOT_DIR=docs/img; otherwise the PNGs go to a
temporary folder and this is one more walk through the shop that must work.
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from models import Order, OrderStatus, db, now_utc

from .buyer import (
    add_to_cart,
    check_out,
    fill_details,
    go_to_checkout,
    open_cart,
    order_status,
    pay_on_khalti,
)
from .staff import admin_status, buy, create_staff, log_in, open_order, refund


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = False) -> None:
        path = folder / f"{name}.png"
        page.screenshot(path=path, full_page=full_page, animations="disabled")
        assert path.stat().st_size > 10_000  # a picture, not a blank page

    return take


def test_screenshots_of_a_purchase(page, served_shop, khalti_sandbox, shots):
    shots(page, "catalog")
    add_to_cart(page, "Jordan Air", 2)
    page.get_by_role("link", name="Khalti Demo Shop").click()
    add_to_cart(page, "Himalayan Tea")
    shots(page, "cart")

    go_to_checkout(page)
    fill_details(page, phone="12345")
    page.get_by_role("button", name="Pay Rs 1,050.00 with Khalti").click()
    expect(page.get_by_role("alert")).to_be_visible()
    shots(page, "checkout")

    open_cart(page)
    check_out(page, khalti_sandbox.url)
    shots(page, "khalti-sandbox")

    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    page.locator('[data-event="lookup_response"] summary').click()
    shots(page, "receipt", full_page=True)


def test_screenshots_of_a_failure_and_a_phone(page, served_shop, khalti_sandbox, shots):
    page.set_viewport_size({"width": 390, "height": 844})
    shots(page, "phone-catalog")
    page.set_viewport_size({"width": 1280, "height": 900})

    khalti_sandbox.fault("initiate", "http_503")
    add_to_cart(page, "Dhaka Topi")
    go_to_checkout(page)
    fill_details(page)
    page.get_by_role("button", name="Pay Rs 450.00 with Khalti").click()
    expect(page.get_by_role("heading", name="Payment not started")).to_be_visible()
    shots(page, "payment-not-started")


def earlier_sales(shop) -> None:
    """Two weeks of paid orders, so the dashboard's chart has a shape."""
    with shop.app.app_context():
        for days_ago, rupees in enumerate(
            [900, 1350, 400, 0, 2200, 1750, 650, 1200, 0, 1900, 2600, 800, 1500]
        ):
            if rupees:
                db.session.add(
                    Order(
                        status=OrderStatus.PAID,
                        customer_name="Earlier Buyer",
                        customer_email="earlier@example.com",
                        customer_phone="9800000002",
                        total_paisa=rupees * 100,
                        created_at=now_utc() - timedelta(days=13 - days_ago),
                    )
                )
        db.session.commit()


def test_screenshots_of_the_back_office(
    page, browser, served_shop, khalti_sandbox, shots
):
    create_staff(served_shop)
    earlier_sales(served_shop)
    buy(page, served_shop, khalti_sandbox, "Himalayan Tea")
    reference = buy(page, served_shop, khalti_sandbox, "Jordan Air")
    staff_page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(staff_page, served_shop)
    shots(staff_page, "admin-dashboard", full_page=True)

    open_order(staff_page, reference)
    refund(staff_page, "50", reason="One lace was missing")
    expect(admin_status(staff_page)).to_have_attribute(
        "data-order-status", "partially_refunded"
    )
    for kind in ("refund_request", "refund_response"):
        staff_page.locator(f'[data-event="{kind}"] summary').click()
    shots(staff_page, "admin-refund", full_page=True)
    staff_page.context.close()


def test_screenshots_in_nepali_on_a_phone(page, served_shop, khalti_sandbox, shots):
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="नेपाली").click()
    expect(page.locator("html")).to_have_attribute("lang", "ne")
    shots(page, "ne-catalog")
    card = page.locator(".product-card").filter(has_text="Jordan Air")
    card.locator("input[name=quantity]").fill("2")
    card.locator("button[type=submit]").click()
    expect(page.get_by_role("heading", name="तपाईंको कार्ट")).to_be_visible()
    shots(page, "ne-cart")
    page.get_by_role("link", name="चेकआउट गर्नुहोस्").click()
    page.get_by_label("पूरा नाम").fill("सीता शर्मा")
    page.get_by_label("इमेल").fill("sita@example.com")
    page.get_by_label("मोबाइल नम्बर").fill("981-234 5678")
    page.locator("form.form button[type=submit]").click()
    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    shots(page, "ne-receipt", full_page=True)
