"""Products in Chromium: staff add one with a picture, a buyer buys it; axe on
the product pages."""

import pytest
from PIL import Image
from playwright.sync_api import expect

from .buyer import add_to_cart, check_out, order_status, pay_on_khalti, product_card
from .staff import create_staff, log_in


@pytest.fixture
def staff_page(browser, served_shop):
    """A second browser profile, for the staff member, logged in."""
    create_staff(served_shop)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, served_shop)
    yield page
    context.close()


def open_products(page) -> None:
    page.get_by_role("navigation", name="Back office").get_by_role(
        "link", name="Products"
    ).click()
    expect(page.get_by_role("heading", name="Products")).to_be_visible()


def test_staff_add_a_product_with_a_picture_and_a_buyer_buys_it(
    page, staff_page, served_shop, khalti_sandbox, tmp_path, assert_accessible
):
    photo = tmp_path / "bowl.jpg"
    Image.new("RGB", (1200, 900), "goldenrod").save(photo)

    open_products(staff_page)
    assert_accessible(staff_page)
    staff_page.get_by_role("link", name="New product").click()
    assert_accessible(staff_page)
    staff_page.get_by_label("Name", exact=True).fill("Singing Bowl")
    staff_page.get_by_label("Description").fill("Hammered bronze, from Patan.")
    staff_page.get_by_label("Price in rupees").fill("1250.50")
    staff_page.get_by_label("Stock", exact=True).fill("3")
    staff_page.get_by_label("Picture").set_input_files(photo)
    staff_page.get_by_role("button", name="Add product").click()

    expect(staff_page.get_by_role("status")).to_contain_text("Added Singing Bowl.")
    expect(staff_page.get_by_role("heading", name="Singing Bowl")).to_be_visible()
    assert_accessible(staff_page)  # the edit page, with its change history

    page.goto(served_shop.url)
    card = product_card(page, "Singing Bowl")
    expect(card.get_by_text("Rs 1,250.50")).to_be_visible()
    # The picture is the shop's own 400x300 drawing of the upload, loaded.
    picture = card.locator("img")
    src = picture.get_attribute("src")
    assert src.startswith("/pictures/") and src.endswith(".webp")
    assert picture.evaluate("img => img.complete && img.naturalWidth") == 400
    add_to_cart(page, "Singing Bowl")
    check_out(page, khalti_sandbox.url)
    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")

    open_products(staff_page)
    row = staff_page.locator("tr", has_text="Singing Bowl")
    expect(row).to_have_attribute("data-product-visible", "true")
    expect(row.locator("td").nth(1)).to_have_text("2")  # stock left
    expect(row.locator("td").last).to_have_text("1")  # units sold
