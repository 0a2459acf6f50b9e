"""The catalog's cached product cards never show a wrong price or stock.

cards.product_cards keeps the last cards each worker rendered. Every write that
changes a price or a stock must show on the very next catalog page, whoever
made it: this worker, another worker (a second app on the same database), or
someone with a SQL shell. And the cards carry each buyer's own CSRF token.
"""

import re

from sqlalchemy import create_engine, update

from models import OrderStatus, Product


def card(page: str, slug_name: str) -> dict[str, int]:
    """The price and stock the catalog shows for one product, by name."""
    found = re.search(
        r'data-price-paisa="(\d+)" data-stock="(\d+)">\s*<img[^>]*>\s*'
        rf'<h2 class="product-name">{slug_name}</h2>',
        page,
    )
    price, stock = found.groups()
    return {"price": int(price), "stock": int(stock)}


def test_a_sale_shows_at_once_and_a_canceled_one_gives_the_stock_back(client, shop):
    before = card(client.get("/").text, "Dhaka Topi")

    order = shop.start(("dhaka-topi", 3))
    assert card(client.get("/").text, "Dhaka Topi")["stock"] == before["stock"] - 3

    shop.come_back(shop.sandbox.cancel(order.payment_url))
    assert shop.order(order.purchase_order_id).status == OrderStatus.CANCELED
    assert card(client.get("/").text, "Dhaka Topi") == before


def test_a_sale_in_another_worker_shows_at_once(make_app, shop, client):
    # Two gunicorn workers are two apps, each with its own cache, one database.
    other_worker = make_app().test_client()
    before = card(client.get("/").text, "Jordan Air")
    assert card(other_worker.get("/").text, "Jordan Air") == before

    shop.start(("jordan-air", 2))

    assert card(other_worker.get("/").text, "Jordan Air") == {
        "price": before["price"],
        "stock": before["stock"] - 2,
    }


def test_a_price_or_stock_changed_outside_the_shop_shows_at_once(
    app, client, database_url
):
    assert card(client.get("/").text, "DSLR Camera") == {"price": 500_00, "stock": 10}
    # Someone in a SQL shell: no code of the shop's runs, nothing is invalidated.
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            update(Product)
            .where(Product.slug == "dslr-camera")
            .values(price_paisa=450_00, stock=0)
        )
    engine.dispose()

    page = client.get("/").text
    assert card(page, "DSLR Camera") == {"price": 450_00, "stock": 0}
    assert "Rs 450.00" in page and "Sold out" in page


def test_every_buyer_gets_their_own_csrf_token_in_the_cards(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    alice, bob = app.test_client(), app.test_client()
    pattern = r'name="csrf_token" value="([^"]+)"'
    alices = set(re.findall(pattern, alice.get("/").text))
    bobs = set(re.findall(pattern, bob.get("/").text))  # cards cached by now
    assert len(alices) == len(bobs) == 1
    assert alices != bobs

    add = {"product_id": 1, "quantity": 1}
    assert (
        alice.post("/cart/add", data=add | {"csrf_token": bobs.pop()}).status_code
        == 400
    )
    assert (
        alice.post("/cart/add", data=add | {"csrf_token": alices.pop()}).status_code
        == 303
    )
