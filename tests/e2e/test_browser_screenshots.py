"""The README's pictures, taken along a real purchase.

`make screenshots` sets SCREENSHOT_DIR=docs/img; otherwise the PNGs go to a
temporary folder and this is one more walk through the shop that must work.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .buyer import (
    add_to_cart,
    check_out,
    fill_details,
    go_to_checkout,
    open_cart,
    order_status,
    pay_on_khalti,
)


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
