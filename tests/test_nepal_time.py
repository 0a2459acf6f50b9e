"""Nepal's time and calendar on the buyer's pages: times stored as UTC are
shown in SHOP_TIMEZONE, and Nepali receipts add the Bikram Sambat date."""

from datetime import datetime

from conftest import Shop
from test_admin_pages import set_order


def test_shop_timezone_sets_the_clock(make_app, khalti_sandbox):
    app = make_app(SHOP_TIMEZONE="UTC")
    shop = Shop(app, app.test_client(), khalti_sandbox)
    order = shop.start()
    set_order(app, order, created_at=datetime(2026, 1, 31, 20, 0))
    page = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert "2026-01-31 20:00" in page
    assert 'datetime="2026-01-31T20:00:00+00:00"' in page


def test_the_receipt_shows_nepals_time_with_its_offset(app, shop):
    order = shop.start()
    set_order(app, order, created_at=datetime(2026, 1, 31, 20, 0))
    page = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert "2026-02-01 01:45" in page and "(Nepal Time)" in page
    assert 'datetime="2026-02-01T01:45:00+05:45"' in page
    shop.client.get("/language/ne")
    page = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert "२०२६-०२-०१ ०१:४५" in page and "(नेपाल समय)" in page


def test_a_nepali_receipt_gives_the_bikram_sambat_date(app, shop):
    order = shop.start()
    # 12 April 2024, 20:00 UTC is 01:45 on 13 April in Nepal: New Year's Day,
    # 1 Baishakh 2081 B.S. (still 30 Chaitra 2080 in UTC).
    set_order(app, order, created_at=datetime(2024, 4, 12, 20, 0))
    shop.client.get("/language/ne")
    page = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert "वि.सं. २०८१ बैशाख १</dd>" in page
    shop.client.get("/language/en")
    assert "B.S." not in shop.client.get(f"/orders/{order.purchase_order_id}").text


def test_no_bikram_sambat_date_outside_the_published_tables(app, shop):
    order = shop.start()
    set_order(app, order, created_at=datetime(2050, 1, 1, 0, 0))
    shop.client.get("/language/ne")
    page = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert "वि.सं." not in page
    assert "२०५०-०१-०१ ०५:४५" in page
