"""Mobile numbers as people type them: spaces and dashes (and Nepali digits)
are accepted and stored as the 10 digits; pages show them grouped."""

import pytest

from models import Order, db


@pytest.mark.parametrize(
    "typed",
    ["98-1234-5678", "981 234 5678", " 981-234-5678 ", "9812345678", "९८१२३४५६७८"],
)
def test_a_number_with_spaces_or_dashes_is_stored_as_ten_digits(shop, typed):
    shop.add("jordan-air", 1)
    assert shop.checkout(phone=typed).status_code == 303
    assert shop.latest_order().customer_phone == "9812345678"


@pytest.mark.parametrize("typed", ["98-1234-567", "98.1234.5678", "96 1234 5678"])
def test_other_shapes_are_still_refused(app, shop, typed):
    shop.add("jordan-air", 1)
    refused = shop.checkout(phone=typed)
    assert refused.status_code == 400
    assert "Enter a 10-digit mobile number starting with 97 or 98." in refused.text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Order.id))) == 0


def test_the_receipt_and_the_back_office_show_it_grouped(shop, back_office):
    order = shop.start()
    receipt = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert '<dd data-phone="9812345678">981 234 5678</dd>' in receipt
    staff_page = back_office.client.get(f"/admin/orders/{order.purchase_order_id}")
    assert "981 234 5678" in staff_page.text
