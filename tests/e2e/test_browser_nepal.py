"""Buyers in Nepal, in Chromium: the shop in Nepali from the header's switch,
on a 390 px phone, with "Pay again" after a canceled payment; axe checks each
page in both languages."""

import re

import pytest
from playwright.sync_api import Page, expect

from .buyer import add_to_cart, check_out, open_cart, order_status, pay_on_khalti

PHONE = {"width": 390, "height": 844}


def fits_the_screen(page: Page) -> None:
    """Nothing sticks out sideways: no table, no page wider than the phone."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"
    for table in page.locator("table").all():
        box = table.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], page.url


def choose_nepali(page: Page) -> None:
    page.get_by_role("link", name="नेपाली").click()
    expect(page.locator("html")).to_have_attribute("lang", "ne")


@pytest.fixture
def phone(browser, served_shop) -> Page:
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(served_shop.url)
    yield page
    context.close()


def test_the_switch_works_without_javascript_and_is_remembered(phone):
    expect(phone.locator("html")).to_have_attribute("lang", "en")
    choose_nepali(phone)
    expect(phone.get_by_role("heading", name="पसल", exact=True)).to_be_visible()
    price = phone.locator(".product-card .price").first
    expect(price).to_have_text(re.compile(r"^नेरू\s[०-९,]+\.[०-९]{2}$"))
    phone.goto(phone.url.split("/language")[0] + "/cart")
    expect(phone.locator("html")).to_have_attribute("lang", "ne")
    phone.get_by_role("link", name="English").click()
    expect(phone.locator("html")).to_have_attribute("lang", "en")


@pytest.mark.parametrize("language", ["en", "ne"])
def test_a_purchase_on_a_phone_fits_and_is_accessible(
    browser, served_shop, khalti_sandbox, assert_accessible, language
):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(served_shop.url)
    if language == "ne":
        choose_nepali(page)
    assert_accessible(page)
    fits_the_screen(page)
    card = page.locator(".product-card").filter(has_text="DSLR Camera")
    card.locator("input[name=quantity]").fill("2")
    card.locator("button[type=submit]").click()
    expect(page.locator(".cart-table")).to_be_visible()
    fits_the_screen(page)
    assert_accessible(page)
    page.locator(".cart-actions .button-primary").click()
    page.locator("#name").fill("Sita Sharma")
    page.locator("#email").fill("sita@example.com")
    # Written as people write it; stored as the 10 digits.
    page.locator("#phone").fill("981-234 5678")
    fits_the_screen(page)
    assert_accessible(page)
    page.locator("form.form button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(khalti_sandbox.url)}/"))
    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    expect(page.locator("html")).to_have_attribute("lang", language)
    fits_the_screen(page)
    assert_accessible(page)
    # The receipt's total and every price stay on screen, unwrapped.
    total = page.locator(".order-items tbody td").last
    box = total.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
    mobile = "981 234 5678"
    expect(page.locator("[data-phone]")).to_have_text(mobile)
    page.locator(".site-nav a").first.click()  # Your orders
    expect(page.locator("table.order-list")).to_be_visible()
    fits_the_screen(page)
    assert_accessible(page)
    expect(page.locator("[data-order] [data-total-paisa]")).to_be_in_viewport()
    context.close()


def test_pay_again_after_canceling_on_khalti(page, served_shop, khalti_sandbox):
    add_to_cart(page, "Jordan Air", 2)
    check_out(page, khalti_sandbox.url)
    page.get_by_role("button", name="Cancel payment").click()
    expect(order_status(page)).to_have_attribute("data-order-status", "canceled")
    canceled_url = page.url

    page.get_by_role("button", name="Pay again").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(khalti_sandbox.url)}/\?pidx="))
    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    page.get_by_role("link", name=re.compile(r"^Order ")).first.click()
    expect(page).to_have_url(canceled_url)
    expect(order_status(page)).to_have_attribute("data-order-status", "canceled")
    open_cart(page)
