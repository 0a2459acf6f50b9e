"""The dashboard, the order list, its CSV and the SQL they cost."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from test_query_counts import add_past_orders, database_name, recorded_statements

from models import Order, OrderStatus, db, now_utc

NEPAL = ZoneInfo("Asia/Kathmandu")


def set_order(app, order: Order, **values) -> None:
    with app.app_context():
        db.session.execute(
            db.update(Order).where(Order.id == order.id).values(**values)
        )
        db.session.commit()


def row_refs(html: str) -> list[str]:
    return re.findall(r'data-order-ref="([^"]+)"', html)


def test_dashboard_counts_money_and_what_needs_a_person(app, shop, back_office):
    paid = shop.buy(("jordan-air", 2))
    fresh = shop.start()
    stale = shop.start()
    expired_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    set_order(app, stale, expires_at=expired_at)
    pending = shop.start()
    shop.sandbox.force(pending.pidx, "Pending")
    shop.client.post(f"/orders/{pending.purchase_order_id}/verify")
    old = shop.buy()
    set_order(app, old, created_at=now_utc() - timedelta(days=20))

    page = back_office.client.get("/admin/")

    assert page.status_code == 200
    assert 'data-paid-today="40000"' in page.text
    assert 'data-paid-week="40000"' in page.text
    assert (
        'href="/admin/orders?status=paid" data-status-count="paid">Paid: <strong>2'
        in (page.text)
    )
    attention = page.text.split('id="attention-title"')[1].split("</section>")[0]
    assert set(row_refs(attention)) == {
        stale.purchase_order_id,
        pending.purchase_order_id,
    }
    assert (
        fresh.purchase_order_id not in attention
        and paid.purchase_order_id not in attention
    )
    # The chart: 14 bars in inline SVG, and the same numbers as a table.
    assert page.text.count('class="chart-bar"') == 14
    assert "<script" not in page.text and "style=" not in page.text
    today = datetime.now(NEPAL).date().isoformat()
    assert f'<th scope="row">{today}</th><td>Rs 400.00</td>' in page.text


def test_reconcile_now_runs_the_reconcile_command(shop, back_office):
    order = shop.start()
    shop.sandbox.pay(order.payment_url)  # the buyer closed the tab before returning
    response = back_office.client.post("/admin/reconcile")
    assert response.status_code == 200
    assert f"{order.purchase_order_id}  awaiting_payment -&gt; paid" in response.text
    assert "Checked 1 orders: 1 changed, 0 lookups failed." in response.text
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID


def test_order_list_is_newest_first_and_filters_and_searches(app, shop, back_office):
    first = shop.buy()
    second = shop.start()
    third = shop.buy()
    set_order(app, third, customer_email="Ram.Thapa@Example.com")
    client = back_office.client

    everything = client.get("/admin/orders")
    assert row_refs(everything.text) == [
        third.purchase_order_id,
        second.purchase_order_id,
        first.purchase_order_id,
    ]
    row = f'data-order-ref="{second.purchase_order_id}"'
    assert f'{row} data-order-status="awaiting_payment"' in everything.text
    paid = client.get("/admin/orders?status=paid")
    assert row_refs(paid.text) == [third.purchase_order_id, first.purchase_order_id]
    third = shop.order(third.purchase_order_id)
    for q in (third.purchase_order_id, third.pidx, third.transaction_id, "ram.thapa"):
        assert row_refs(client.get("/admin/orders", query_string={"q": q}).text) == [
            third.purchase_order_id
        ]
    assert row_refs(client.get("/admin/orders?q=%25").text) == []  # no LIKE wildcards
    refused = client.get("/admin/orders?status=shipped")
    assert refused.status_code == 400
    assert "There is no order status" in refused.text


def test_dashboard_revenue_is_net_of_refunds_with_the_refunded_sum_beside_it(
    app, shop, back_office
):
    order = shop.buy(("jordan-air", 2))
    assert back_office.refund(order, amount="150.50").status_code == 303

    page = back_office.client.get("/admin/")

    assert 'data-net-today="24950"' in page.text
    assert 'data-net-week="24950"' in page.text
    assert '<span data-paid-today="40000">Rs 400.00</span>' in page.text
    assert '<span data-refunded-today="15050">Rs 150.50</span>' in page.text
    assert '<span data-refunded-week="15050">Rs 150.50</span>' in page.text


def test_search_finds_by_name_phone_and_reference_in_any_case(app, shop, back_office):
    other = shop.buy()
    wanted = shop.buy()
    set_order(app, wanted, customer_name="Ram Bahadur Thapa")
    set_order(app, wanted, customer_phone="9841234567")
    set_order(app, other, customer_phone="9800000000")
    reference = wanted.purchase_order_id
    for q in (
        reference.lower(),
        reference.upper(),
        "bahadur",
        "RAM BAHADUR",
        "984-123 4567",
        "98412",
    ):
        response = back_office.client.get("/admin/orders", query_string={"q": q})
        assert row_refs(response.text) == [reference], q
    found = back_office.client.get("/admin/orders?q=sharma")
    assert row_refs(found.text) == [other.purchase_order_id]


def test_an_unreadable_payment_link_expiry_does_not_break_the_dashboard(
    app, shop, back_office
):
    # The order page takes such a link as still open (the lookup decides);
    # the dashboard must agree, not fail with a 500.
    odd = shop.start()
    set_order(app, odd, expires_at="not a date")
    naive = shop.start()
    set_order(app, naive, expires_at="2020-01-01T00:00:00")

    page = back_office.client.get("/admin/")

    assert page.status_code == 200
    attention = page.text.split('id="attention-title"')[1].split("</section>")[0]
    assert row_refs(attention) == []


def test_order_list_pages_by_50(app, back_office):
    add_past_orders(app, 120)
    client = back_office.client
    pages = [client.get(f"/admin/orders?page={n}") for n in (1, 2, 3)]
    counts = [len(row_refs(page.text)) for page in pages]
    assert counts == [50, 50, 20]
    assert row_refs(pages[0].text)[0] == "past-119"
    assert client.get("/admin/orders?page=4").status_code == 404
    assert client.get("/admin/orders?page=abc").status_code == 404


@pytest.mark.parametrize("count", [10, 10_000])
def test_order_list_costs_the_same_sql_for_10_or_10000_orders(app, back_office, count):
    add_past_orders(app, count)
    back_office.client.get("/admin/orders")  # warm up: first-use queries
    with recorded_statements(app) as sent:
        response = back_office.client.get("/admin/orders?status=paid")
    assert response.status_code == 200
    assert len(row_refs(response.text)) == min(count, 50)
    with recorded_statements(app) as searched:
        by_phone = back_office.client.get("/admin/orders?q=980-000")
    assert by_phone.status_code == 200
    assert len(searched) == len(sent), [sql for sql, _ in searched]
    # The staff member, the count for the pager, the page of orders.
    expected = {"postgresql": 3, "sqlite": 4}[database_name(app)]
    assert len(sent) == expected, [sql for sql, _ in sent]


def as_text(value: str) -> str:
    """A cell as a spreadsheet must show it: quoted if it could be a formula."""
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def test_csv_has_every_matching_order_and_no_formulas(app, shop, back_office):
    order = shop.buy()
    set_order(app, order, customer_name='=HYPERLINK("http://evil")')
    shop.client.post("/cart/add", data={"product_id": 1, "quantity": 1})
    other = shop.start()
    set_order(app, other, customer_name="@SUM(A1)", customer_email="-2+3@example.com")
    assert back_office.refund(order, amount="25").status_code == 303
    # 20:00 UTC on 31 January is already 1 February in Nepal.
    set_order(app, order, created_at=datetime(2026, 1, 31, 20, 0))
    order = shop.order(order.purchase_order_id)

    response = back_office.client.get("/admin/orders.csv")

    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "reference",
        "placed_at",
        "status",
        "customer_name",
        "email",
        "phone",
        "total_paisa",
        "total_rupees",
        "pidx",
        "transaction_id",
        "refunded_paisa",
    ]
    assert rows[2] == [
        # Random ids may start with "-" too, and are then quoted like a formula.
        as_text(order.purchase_order_id),
        "2026-02-01T01:45:00+05:45",  # Nepal's time, with its offset
        "partially_refunded",
        '\'=HYPERLINK("http://evil")',
        "sita@example.com",
        "9812345678",
        "20000",
        "200.00",
        as_text(order.pidx),
        as_text(order.transaction_id),
        "2500",
    ]
    assert rows[1][3:5] == ["'@SUM(A1)", "'-2+3@example.com"]
    for row in rows[1:]:
        assert not any(
            cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row
        )
    filtered = back_office.client.get("/admin/orders.csv?status=awaiting_payment")
    assert len(list(csv.reader(io.StringIO(filtered.text)))) == 2


def test_the_order_page_shows_the_customer_timeline_and_actions(shop, back_office):
    order = shop.buy()
    page = back_office.client.get(f"/admin/orders/{order.purchase_order_id}")
    assert page.status_code == 200
    for text in (
        "Sita Sharma",
        "sita@example.com",
        "9812345678",
        order.pidx,
        "We asked Khalti",
        "Check at Khalti",
        ">Refund</button>",
    ):
        assert text in page.text
    assert "Accept as paid" not in page.text
    assert back_office.client.get("/admin/orders/nope").status_code == 404


def test_the_dashboards_days_and_the_lists_times_are_nepals(app, shop, back_office):
    # 01:00 in Nepal is 19:15 the day before in UTC: it counts as today's.
    order = shop.buy(("jordan-air", 1))
    nepal_midnight = datetime.now(NEPAL).replace(hour=0, minute=0, second=0)
    placed = nepal_midnight.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=1)
    set_order(app, order, created_at=placed)
    page = back_office.client.get("/admin/")
    assert 'data-paid-today="20000"' in page.text
    assert "Today (Nepal Time)" in page.text
    listed = back_office.client.get("/admin/orders").text
    assert f"{nepal_midnight:%Y-%m-%d} 01:00" in listed
    # Set an hour before Nepal's midnight, it is yesterday's on the chart.
    set_order(app, order, created_at=placed - timedelta(hours=2))
    page = back_office.client.get("/admin/")
    assert 'data-paid-today="0"' in page.text
    assert 'data-paid-week="20000"' in page.text
