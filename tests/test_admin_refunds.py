"""Refunds, "Check at Khalti" and "Accept as paid", over HTTP against the sandbox."""

import re
import time
from datetime import timedelta

import pytest
import requests

from models import Order, OrderStatus, Refund, RefundState, db, now_utc

REFUND_EVENTS = [
    "refund_request",
    "refund_response",
    "lookup_response",
]


def refunds(app, order: Order) -> list[Refund]:
    with app.app_context():
        return db.session.scalars(
            db.select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)
        ).all()


def refund_at_khalti(sandbox, order: Order, **body) -> None:
    """A refund made on Khalti's dashboard, not through the shop."""
    response = requests.post(
        f"{sandbox.url}/api/merchant-transaction/{order.transaction_id}/refund/",
        headers={"Authorization": "Key any"},
        json=body,
        timeout=5,
    )
    assert response.status_code == 200, response.text


def review_order(shop) -> Order:
    """An order Khalti says is Completed, but for 50 paisa less than its total."""
    order = shop.start()
    shop.sandbox.force(order.pidx, "Completed", total_amount=order.total_paisa - 50)
    shop.client.post(f"/orders/{order.purchase_order_id}/verify")
    order = shop.order(order.purchase_order_id)
    assert order.status == OrderStatus.NEEDS_REVIEW
    return order


def test_a_full_refund_is_confirmed_by_lookup(app, shop, back_office):
    order = shop.buy()
    stock = shop.stock("jordan-air")

    response = back_office.refund(order, amount="200", reason="Changed their mind")

    assert response.status_code == 303
    assert response.headers["Location"] == f"/admin/orders/{order.purchase_order_id}"
    page = back_office.client.get(response.headers["Location"])
    assert "Khalti accepted the refund. The order is now refunded." in page.text
    assert 'data-order-status="refunded"' in page.text
    after = shop.order(order.purchase_order_id)
    assert after.status == OrderStatus.REFUNDED
    kinds = shop.events(order)
    assert kinds[-4:] == [*REFUND_EVENTS, "status:refunded"]
    [refund] = refunds(app, order)
    assert (refund.state, refund.amount_paisa) == (RefundState.SUCCEEDED, 200_00)
    assert refund.staff_email == "staff@example.com"
    assert refund.reason == "Changed their mind"
    assert shop.sandbox.record(order.pidx)["status"] == "Refunded"
    assert shop.stock("jordan-air") == stock  # refunds do not restock
    # Khalti got no amount: "no parameters" is its full refund.
    assert shop.sandbox.stats()["refund"] == 1


def test_partial_refunds_then_the_rest(app, shop, back_office):
    order = shop.buy()

    assert back_office.refund(order, amount="50.5").status_code == 303

    assert shop.order(order.purchase_order_id).status == OrderStatus.PARTIALLY_REFUNDED
    assert shop.events(order)[-4:] == [*REFUND_EVENTS, "status:partially_refunded"]
    page = back_office.client.get(f"/admin/orders/{order.purchase_order_id}")
    assert 'data-refundable-paisa="14950"' in page.text

    assert back_office.refund_everything(order).status_code == 303
    assert shop.order(order.purchase_order_id).status == OrderStatus.REFUNDED
    assert [(r.amount_paisa, r.state) for r in refunds(app, order)] == [
        (50_50, RefundState.SUCCEEDED),
        (149_50, RefundState.SUCCEEDED),
    ]


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "Refund between Rs 0.01 and Rs 200.00"),
        ("0.00", "Refund between Rs 0.01 and Rs 200.00"),
        ("200.01", "Refund between Rs 0.01 and Rs 200.00"),
        ("99999999", "Enter rupees like 12.50"),
        ("-5", "Enter rupees like 12.50"),
        ("12.345", "Enter rupees like 12.50"),
        ("1e3", "Enter rupees like 12.50"),
        ("ten", "Enter rupees like 12.50"),
        ("12,50", "Enter rupees like 12.50"),
    ],
)
def test_bad_amounts_are_refused_without_calling_khalti(
    app, shop, back_office, amount, message
):
    order = shop.buy()
    response = back_office.refund(order, amount=amount)
    assert response.status_code == 400
    assert message in response.text
    assert shop.sandbox.stats()["refund"] == 0
    assert refunds(app, order) == []
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID


def test_an_empty_amount_is_refused_never_everything(app, shop, back_office):
    order = shop.buy()
    response = back_office.refund(order, amount="", reason="Damaged")
    assert response.status_code == 400
    assert "Enter the amount to refund, like 12.50." in response.text
    assert shop.sandbox.stats()["refund"] == 0
    assert refunds(app, order) == []


def test_a_refused_amount_comes_back_as_typed_marked_and_focused(
    app, shop, back_office
):
    order = shop.buy()
    token = back_office.refund_token(order)
    response = back_office.refund(order, "450", reason="Damaged", token=token)
    assert response.status_code == 400
    field = re.search(r"<input[^>]*id=\"amount\"[^>]*>", response.text)[0]
    assert 'value="450"' in field
    assert 'aria-invalid="true"' in field and "autofocus" in field
    assert 'aria-describedby="amount-hint amount-error"' in field
    error = re.search(r'id="amount-error"[^>]*>([^<]+)<', response.text)[1]
    assert error == "Refund between Rs 0.01 and Rs 200.00; nothing was sent."
    assert 'value="Damaged"' in response.text
    assert shop.sandbox.stats()["refund"] == 0 and refunds(app, order) == []
    # Fixed and sent again, the same form refunds what was typed, and no more.
    assert back_office.refund(order, "45", "Damaged", token=token).status_code == 303
    assert [r.amount_paisa for r in refunds(app, order)] == [45_00]
    page = back_office.client.get(f"/admin/orders/{order.purchase_order_id}")
    assert "Refund everything left: Rs 155.00" in page.text


def test_refund_everything_names_and_sends_only_what_is_left(app, shop, back_office):
    order = shop.buy()
    stale = back_office.client.get(f"/admin/orders/{order.purchase_order_id}")
    assert "Refund everything left: Rs 200.00" in stale.text
    assert back_office.refund(order, amount="50").status_code == 303
    # A page opened before that refund still names Rs 200.00: refused.
    form = stale.text[stale.text.index("data-refund-everything") :]
    token = re.search(r'name="token" value="([^"]+)"', form)[1]
    response = back_office.client.post(
        f"/admin/orders/{order.purchase_order_id}/refund",
        data={"token": token, "amount": "200.00"},
    )
    assert response.status_code == 400
    assert "Refund between Rs 0.01 and Rs 150.00" in response.text
    assert back_office.refund_everything(order).status_code == 303
    assert [r.amount_paisa for r in refunds(app, order)] == [50_00, 150_00]


def test_unpaid_orders_cannot_be_refunded(app, shop, back_office):
    waiting = shop.start()
    canceled = shop.start()
    shop.come_back(shop.sandbox.cancel(canceled.payment_url))
    for order in (waiting, canceled):
        response = back_office.refund(order, amount="10", token="forged-token")
        assert response.status_code == 400
        assert "cannot be refunded" in response.text
        assert refunds(app, order) == []
    assert shop.sandbox.stats()["refund"] == 0


def test_the_same_refund_form_twice_refunds_once(app, shop, back_office):
    order = shop.buy()
    token = back_office.refund_token(order)
    first = back_office.refund(order, amount="20", token=token)
    again = back_office.refund(order, amount="20", token=token)
    assert first.status_code == again.status_code == 303
    page = back_office.client.get(again.headers["Location"])
    assert "This refund was already submitted" in page.text
    assert shop.sandbox.stats()["refund"] == 1
    assert len(refunds(app, order)) == 1


def test_one_refund_in_flight_per_order(app, shop, back_office):
    order = shop.buy()
    with app.app_context():
        db.session.add(
            Refund(
                order_id=order.id,
                token="in-flight",
                amount_paisa=100,
                staff_email="other@example.com",
            )
        )
        db.session.commit()
    response = back_office.refund(order, amount="10")
    assert response.status_code == 409
    assert "Another refund of this order is in progress" in response.text
    assert shop.sandbox.stats()["refund"] == 0


def test_a_refund_khalti_refuses_is_failed_and_the_order_unchanged(
    app, shop, back_office
):
    order = shop.buy()
    refund_at_khalti(shop.sandbox, order)  # so Khalti refuses another one
    response = back_office.refund(order, amount="10")
    page = back_office.client.get(response.headers["Location"])
    assert "Khalti refused the refund: Transaction is Refunded" in page.text
    [refund] = refunds(app, order)
    assert refund.state == RefundState.FAILED
    assert "Transaction is Refunded" in refund.khalti_answer
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
    assert shop.events(order)[-2:] == ["refund_request", "refund_error"]


def test_a_khalti_5xx_leaves_the_refund_unknown_until_a_check(app, shop, back_office):
    order = shop.buy()
    shop.sandbox.fault("refund", "http_503")
    response = back_office.refund(order, amount="10")
    page = back_office.client.get(response.headers["Location"])
    assert "The money may have moved" in page.text
    assert refunds(app, order)[0].state == RefundState.UNKNOWN
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
    # While unknown, its amount is not offered again.
    assert 'data-refundable-paisa="19000"' in page.text

    # The 503 moved nothing: the lookup still says Completed.
    shop.sandbox.fault("refund", "none")
    check = back_office.client.post(f"/admin/orders/{order.purchase_order_id}/verify")
    assert check.status_code == 303
    assert refunds(app, order)[0].state == RefundState.FAILED
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
    assert shop.events(order)[-3:] == [
        "staff_check",
        "lookup_response",
        "refund_settled",
    ]


def test_a_refund_that_times_out_is_unknown_and_a_check_finds_it_went_through(
    app, shop, back_office
):
    order = shop.buy()
    # Khalti takes longer than the shop waits (2 s), then refunds anyway.
    shop.sandbox.fault("refund", "delay", seconds=3)
    response = back_office.refund_everything(order)
    page = back_office.client.get(response.headers["Location"])
    assert "Khalti gave no clear answer" in page.text
    assert refunds(app, order)[0].state == RefundState.UNKNOWN
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID

    shop.sandbox.fault("refund", "none")  # also lets the held request finish
    for _ in range(50):
        if shop.sandbox.record(order.pidx)["status"] == "Refunded":
            break
        time.sleep(0.1)
    back_office.client.post(f"/admin/orders/{order.purchase_order_id}/verify")
    assert shop.order(order.purchase_order_id).status == OrderStatus.REFUNDED
    assert refunds(app, order)[0].state == RefundState.SUCCEEDED


def test_check_at_khalti_picks_up_a_refund_made_on_the_dashboard(shop, back_office):
    order = shop.buy()
    refund_at_khalti(shop.sandbox, order, amount=500)
    response = back_office.client.post(
        f"/admin/orders/{order.purchase_order_id}/verify"
    )
    page = back_office.client.get(response.headers["Location"])
    assert "Khalti says the order is partially refunded." in page.text
    assert shop.order(order.purchase_order_id).status == OrderStatus.PARTIALLY_REFUNDED


def test_reconcile_paid_within_picks_up_dashboard_refunds(app, shop):
    refunded, untouched = shop.buy(), shop.buy()
    refund_at_khalti(shop.sandbox, refunded)

    plain = app.test_cli_runner().invoke(args=["reconcile"])
    assert "Checked 0 orders" in plain.output
    result = app.test_cli_runner().invoke(args=["reconcile", "--paid-within", "7"])

    assert result.exit_code == 0, result.output
    assert f"{refunded.purchase_order_id}  paid -> refunded" in result.output
    assert f"{untouched.purchase_order_id}  paid -> paid" in result.output
    assert "Checked 2 orders: 1 changed, 0 lookups failed." in result.output
    assert shop.order(refunded.purchase_order_id).status == OrderStatus.REFUNDED


def test_reconcile_paid_within_skips_older_orders(app, shop):
    order = shop.buy()
    refund_at_khalti(shop.sandbox, order)
    with app.app_context():
        db.session.execute(
            db.update(Order)
            .where(Order.id == order.id)
            .values(created_at=now_utc() - timedelta(days=8))
        )
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["reconcile", "--paid-within", "7"])
    assert "Checked 0 orders" in result.output
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
    refused = app.test_cli_runner().invoke(args=["reconcile", "--paid-within", "0"])
    assert refused.exit_code != 0


def test_accept_as_paid_needs_a_note_and_a_completed_lookup(app, shop, back_office):
    order = review_order(shop)
    url = f"/admin/orders/{order.purchase_order_id}/accept"

    no_note = back_office.client.post(url, data={"note": "  "})
    assert no_note.status_code == 400
    assert "A note is required" in no_note.text
    assert shop.order(order.purchase_order_id).status == OrderStatus.NEEDS_REVIEW

    accepted = back_office.client.post(url, data={"note": "Buyer paid 50 paisa less."})
    assert accepted.status_code == 303
    after = shop.order(order.purchase_order_id)
    assert after.status == OrderStatus.PAID
    accept = [e for e in after.events if e.kind == "staff_accept"][0]
    assert accept.payload == {
        "staff": "staff@example.com",
        "note": "Buyer paid 50 paisa less.",
    }
    # The buyer's receipt tells the step, not who did it.
    receipt = shop.client.get(f"/orders/{order.purchase_order_id}")
    assert "Staff accepted the payment" in receipt.text
    assert "staff@example.com" not in receipt.text


def test_accept_is_refused_unless_khalti_said_completed(app, shop, back_office):
    order = shop.start()
    shop.sandbox.force(order.pidx, "Frobnicated")  # an unknown status: review
    shop.client.post(f"/orders/{order.purchase_order_id}/verify")
    assert shop.order(order.purchase_order_id).status == OrderStatus.NEEDS_REVIEW
    response = back_office.client.post(
        f"/admin/orders/{order.purchase_order_id}/accept", data={"note": "Looks fine"}
    )
    assert response.status_code == 409
    assert shop.order(order.purchase_order_id).status == OrderStatus.NEEDS_REVIEW
    paid = shop.buy()
    response = back_office.client.post(
        f"/admin/orders/{paid.purchase_order_id}/accept", data={"note": "Looks fine"}
    )
    assert response.status_code == 409


def test_an_order_in_review_can_be_refunded_what_khalti_took(app, shop, back_office):
    order = review_order(shop)
    assert back_office.refund_everything(order).status_code == 303
    [refund] = refunds(app, order)
    assert refund.amount_paisa == order.total_paisa - 50
    assert shop.order(order.purchase_order_id).status == OrderStatus.REFUNDED


def test_the_refund_list_is_newest_first_with_who_and_why(app, shop, back_office):
    first = shop.buy()
    second = shop.buy()
    assert back_office.refund(first, "10", reason="Late").status_code == 303
    assert back_office.refund(second, "20", reason="=cmd()").status_code == 303

    page = back_office.client.get("/admin/refunds")

    assert page.status_code == 200
    rows = re.findall(r'data-refund-paisa="(\d+)"', page.text)
    assert rows == ["2000", "1000"]
    assert page.text.index(second.purchase_order_id) < page.text.index(
        first.purchase_order_id
    )
    assert "staff@example.com" in page.text and "Late" in page.text
    csv_lines = back_office.client.get("/admin/refunds.csv").text.splitlines()
    assert csv_lines[0] == (
        "asked_at_utc,reference,amount_paisa,amount_rupees,state,staff,reason"
    )
    assert csv_lines[1].endswith(
        f",{second.purchase_order_id},2000,20.00,succeeded,staff@example.com,'=cmd()"
    )
    assert len(csv_lines) == 3


def test_the_refund_list_pages_by_50_and_a_huge_page_is_404(app, shop, back_office):
    order = shop.buy()
    with app.app_context():
        db.session.add_all(
            Refund(
                order_id=order.id,
                token=f"t{n}",
                amount_paisa=1,
                staff_email="staff@example.com",
                state=RefundState.FAILED,
            )
            for n in range(51)
        )
        db.session.commit()
    first = back_office.client.get("/admin/refunds")
    assert first.text.count("data-refund-state=") == 50
    assert "page 1 of 2" in first.text
    assert (
        back_office.client.get("/admin/refunds?page=2").text.count("data-refund-state=")
        == 1
    )
    assert back_office.client.get("/admin/refunds?page=3").status_code == 404
    huge = back_office.client.get(f"/admin/refunds?page={10**30}")
    assert huge.status_code == 404
