"""The buyer's receipt shows each refund Khalti confirmed: its amount, date and
reason, the total refunded and what the shop kept."""

import re
from datetime import UTC
from zoneinfo import ZoneInfo

from models import Refund, RefundState, db


def refund_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-refund-paisa="(\d+)">', page)


def test_a_partial_then_a_full_refund_on_the_receipt(app, client, shop, back_office):
    order = shop.buy()  # Rs 200
    assert (
        back_office.refund(order, amount="50.5", reason="Scuffed box").status_code
        == 303
    )
    receipt = client.get(f"/orders/{order.purchase_order_id}").text
    assert refund_rows(receipt) == ["5050"]
    assert "Rs 50.50" in receipt and "Scuffed box" in receipt
    assert 'data-refunded-paisa="5050"' in receipt
    assert 'data-kept-paisa="14950"' in receipt and "Rs 149.50" in receipt
    # The date, in Nepal's time, like every time on the receipt.
    with app.app_context():
        asked = db.session.scalar(db.select(Refund.created_at))
    in_nepal = asked.replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Kathmandu"))
    shown = f'<time datetime="{in_nepal.isoformat(timespec="seconds")}">'
    assert f'<td data-label="Date">{shown}{in_nepal:%Y-%m-%d %H:%M}</time>' in receipt

    assert back_office.refund_everything(order).status_code == 303
    receipt = client.get(f"/orders/{order.purchase_order_id}").text
    assert refund_rows(receipt) == ["5050", "14950"]
    assert "No reason given" in receipt
    assert 'data-kept-paisa="0"' in receipt


def test_a_refund_khalti_refused_is_not_shown(app, client, shop, back_office):
    order = shop.buy()
    assert back_office.refund(order, amount="20").status_code == 303
    with app.app_context():
        db.session.execute(db.update(Refund).values(state=RefundState.FAILED))
        db.session.commit()
    receipt = client.get(f"/orders/{order.purchase_order_id}").text
    assert refund_rows(receipt) == []


def test_a_paid_receipt_has_no_refunds_section(client, shop):
    order = shop.buy()
    assert (
        'id="refunds-title"'
        not in client.get(f"/orders/{order.purchase_order_id}").text
    )


def test_the_refunds_in_nepali(client, shop, back_office):
    order = shop.buy()
    back_office.refund(order, amount="50")
    client.get("/language/ne")
    receipt = client.get(f"/orders/{order.purchase_order_id}").text
    assert "नेरू\xa0५०.००" in receipt  # refunded
    assert "नेरू\xa0१५०.००" in receipt  # kept
