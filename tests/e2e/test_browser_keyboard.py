"""The whole purchase with the keyboard alone: Tab, typing, Enter and Space.

No click and no fill: each step tabs to a control the way a keyboard user
does, and checks that the focused control shows a visible focus ring.
"""

import re

from playwright.sync_api import Locator, Page, expect

from .buyer import cart_count, order_status, product_card
from .conftest import KHALTI_ID, MPIN, OTP

MAX_TABS = 60


def tab_to(page: Page, target: Locator) -> None:
    """Press Tab until `target` has focus, and check that the focus shows."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            outline = target.evaluate(
                "element => { const s = getComputedStyle(element);"
                " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
            )
            assert outline[0] != "none" and outline[1] >= 2, outline
            return
    raise AssertionError(f"Tab never reached {target}")


def type_into(page: Page, field: Locator, text: str) -> None:
    tab_to(page, field)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_the_whole_purchase_with_the_keyboard_alone(page, khalti_sandbox):
    jordan = product_card(page, "Jordan Air")
    type_into(page, jordan.get_by_label("Quantity"), "2")
    tab_to(page, jordan.get_by_role("button", name="Add to cart"))
    page.keyboard.press("Enter")
    expect(cart_count(page)).to_have_attribute("data-cart-count", "2")

    tab_to(page, page.get_by_role("link", name="Khalti Demo Shop"))
    page.keyboard.press("Enter")
    tab_to(page, product_card(page, "DSLR Camera").get_by_role("button"))
    page.keyboard.press("Space")
    expect(cart_count(page)).to_have_attribute("data-cart-count", "3")

    tab_to(page, page.get_by_role("link", name="Check out"))
    page.keyboard.press("Enter")
    type_into(page, page.get_by_label("Full name"), "Sita Sharma")
    type_into(page, page.get_by_label("Email"), "sita@example.com")
    type_into(page, page.get_by_label("Mobile number"), "9812345678")
    tab_to(page, page.get_by_role("button", name="Pay Rs 900.00 with Khalti"))
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"^{re.escape(khalti_sandbox.url)}/"))
    type_into(page, page.get_by_label("Khalti ID (mobile number)"), KHALTI_ID)
    type_into(page, page.get_by_label("MPIN"), MPIN)
    page.keyboard.press("Enter")  # submits the form from its last field
    type_into(page, page.get_by_label("OTP (sent to your phone)"), OTP)
    tab_to(page, page.get_by_role("button", name="Confirm payment"))
    page.keyboard.press("Enter")

    expect(order_status(page)).to_have_attribute("data-order-status", "paid")
    # The lesson's JSON opens from the keyboard too.
    answer = page.locator('[data-event="lookup_response"]')
    tab_to(page, answer.locator("summary"))
    page.keyboard.press("Enter")
    expect(answer.locator("pre")).to_contain_text('"status": "Completed"')


def test_skip_link_is_the_first_stop_and_jumps_to_the_content(page):
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#content$"))
