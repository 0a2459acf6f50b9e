"""What a buyer does in the browser, one short function per step.

Locators go by what a person sees: roles, labels and button texts.
"""

import re

from playwright.sync_api import Locator, Page, expect

from .conftest import KHALTI_ID, MPIN, OTP


def product_card(page: Page, name: str) -> Locator:
    return page.locator(".product-card").filter(
        has=page.get_by_role("heading", name=name, exact=True)
    )


def add_to_cart(page: Page, name: str, quantity: int = 1) -> None:
    """From the catalog: set the quantity and press "Add to cart"."""
    card = product_card(page, name)
    card.get_by_label("Quantity").fill(str(quantity))
    card.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_role("heading", name="Your cart", exact=True)).to_be_visible()


def cart_count(page: Page) -> Locator:
    return page.locator(".site-header [data-cart-count]")


def open_cart(page: Page) -> None:
    """The cart link in the header, on any page."""
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name=re.compile(r"^Cart")).click()
    expect(page.get_by_role("heading", name="Your cart", exact=True)).to_be_visible()


def go_to_checkout(page: Page) -> None:
    open_cart(page)
    page.get_by_role("link", name="Check out").click()
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()


def fill_details(page: Page, phone: str = "9812345678") -> None:
    page.get_by_label("Full name").fill("Sita Sharma")
    page.get_by_label("Email").fill("sita@example.com")
    page.get_by_label("Mobile number").fill(phone)


def check_out(page: Page, sandbox_url: str) -> None:
    """From the cart: fill in the details and go to Khalti's payment page."""
    go_to_checkout(page)
    fill_details(page)
    page.get_by_role("button", name=re.compile(r"^Pay Rs .* with Khalti$")).click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(sandbox_url)}/\?pidx="))


def log_in_to_khalti(page: Page, mpin: str = MPIN) -> None:
    page.get_by_label("Khalti ID (mobile number)").fill(KHALTI_ID)
    page.get_by_label("MPIN").fill(mpin)
    page.get_by_role("button", name=re.compile(r"^Pay Rs ")).click()


def pay_on_khalti(page: Page) -> None:
    """On the sandbox's page: Khalti ID and MPIN, then the OTP."""
    log_in_to_khalti(page)
    page.get_by_label("OTP (sent to your phone)").fill(OTP)
    page.get_by_role("button", name="Confirm payment").click()


def order_status(page: Page) -> Locator:
    return page.locator(".order-header [data-order-status]")


def timeline_titles(page: Page) -> list[str]:
    return page.locator(".timeline > li h3").all_inner_texts()
