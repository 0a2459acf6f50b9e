"""What a staff member does in the browser, one short function per step."""

import re

from playwright.sync_api import Page, expect

from .buyer import add_to_cart, check_out, order_status, pay_on_khalti

STAFF_EMAIL = "owner@example.com"
STAFF_PASSWORD = "browser-test-staff-password"


def create_staff(shop) -> None:
    result = shop.app.test_cli_runner().invoke(
        args=["create-staff", STAFF_EMAIL], input=f"{STAFF_PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output


def buy(page: Page, shop, sandbox, name: str = "Jordan Air") -> str:
    """A buyer's whole purchase; returns the order's reference."""
    page.goto(shop.url)
    add_to_cart(page, name)
    check_out(page, sandbox.url)
    pay_on_khalti(page)
    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    return page.url.rsplit("/", 1)[1]


def log_in(page: Page, shop, password: str = STAFF_PASSWORD) -> None:
    page.goto(f"{shop.url}/admin/")
    page.get_by_label("Email").fill(STAFF_EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def open_order(page: Page, reference: str) -> None:
    """From any back office page: the order list, then the order."""
    page.get_by_role("navigation", name="Back office").get_by_role(
        "link", name="Orders"
    ).click()
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", name=f"Order {reference}")).to_be_visible()


def refund(page: Page, amount: str, reason: str = "Returned one pair") -> None:
    page.get_by_label("Amount in rupees").fill(amount)
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name=re.compile(r"^Refund$")).click()


def admin_status(page: Page):
    return page.locator(".order-header [data-order-status]")
