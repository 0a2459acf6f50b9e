"""Many buyers at once, through gunicorn (4 processes x 8 threads), over HTTP.

Every test here runs on SQLite and, in the PostgreSQL pass, on PostgreSQL:
the database alone must keep two requests from both winning a race.
"""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from served_shop import KHALTI_KEY, SECRET_KEY, Buyer, ServedShop

from models import Order, OrderStatus, Product, db

pytestmark = pytest.mark.load


@pytest.fixture
def served_shop(app, database_url, khalti_sandbox, tmp_path):
    """The shop under gunicorn, on the same database as `app`."""
    served = ServedShop(database_url, khalti_sandbox.api_url, tmp_path / "shop.log")
    served.start()
    yield served
    served.stop()
    log = served.log()
    assert "Traceback" not in log, log
    assert SECRET_KEY not in log
    assert KHALTI_KEY not in log


def race(count: int, action) -> list:
    """Run action(0) ... action(count - 1) in threads released all at once."""
    barrier = threading.Barrier(count)

    def run(number):
        barrier.wait()
        return action(number)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def start_payment(served_shop, shop, slug: str, quantity: int = 1) -> str:
    """Check out over HTTP; return Khalti's payment URL."""
    buyer = Buyer(served_shop.url)
    assert buyer.add(shop.product(slug).id, quantity).status_code == 303
    response = buyer.checkout()
    assert response.status_code == 303, response.text
    return response.headers["Location"]


@pytest.mark.parametrize(
    ("outcome", "final", "stock_change"),
    [("pay", OrderStatus.PAID, -1), ("cancel", OrderStatus.CANCELED, 0)],
)
def test_32_simultaneous_returns_settle_the_order_once(
    served_shop, shop, outcome, final, stock_change
):
    stock_before = shop.stock("jordan-air")
    payment_url = start_payment(served_shop, shop, "jordan-air")
    return_url = getattr(shop.sandbox, outcome)(payment_url)

    responses = race(32, lambda _: Buyer(served_shop.url).come_back(return_url))

    order = shop.latest_order()
    assert [response.status_code for response in responses] == [303] * 32
    assert {response.headers["Location"] for response in responses} == {
        f"/orders/{order.purchase_order_id}"
    }
    assert order.status == final
    assert shop.events(order).count(f"status:{final}") == 1
    assert shop.stock("jordan-air") == stock_before + stock_change


@pytest.mark.parametrize("quantity", [1, 2])
def test_buyers_racing_for_the_last_units(served_shop, shop, quantity):
    shop.set_product("dslr-camera", stock=5)
    product_id = shop.product("dslr-camera").id
    buyers = [Buyer(served_shop.url) for _ in range(16)]
    for buyer in buyers:
        assert buyer.add(product_id, quantity).status_code == 303

    forms = [buyer.checkout_form() for buyer in buyers]

    responses = race(16, lambda number: buyers[number].checkout(forms[number]))

    winners = [r for r in responses if r.status_code == 303]
    losers = [r for r in responses if r.status_code != 303]
    assert len(winners) == 5 // quantity
    for response in losers:
        assert response.status_code in (400, 409), response.text
        assert "sold out" in response.text or "left in stock" in response.text
    with shop.app.app_context():
        orders = db.session.scalars(db.select(Order)).all()
        reserved = sum(item.quantity for order in orders for item in order.items)
        assert len(orders) == len(winners)
    assert reserved == quantity * len(winners) <= 5
    assert shop.stock("dslr-camera") == 5 - reserved


@pytest.mark.parametrize("initiate_delay", [0, 0.5])
def test_one_form_submitted_ten_times_at_once_makes_one_payment(
    served_shop, shop, initiate_delay
):
    """Ten clicks on "Pay" from one browser: one order, one initiate, one answer.

    With a slow initiate, most of the ten arrive while the first still waits
    for Khalti's payment link, and must wait for it too.
    """
    stock_before = shop.stock("jordan-air")
    buyer = Buyer(served_shop.url)
    assert buyer.add(shop.product("jordan-air").id, 1).status_code == 303
    form = buyer.checkout_form()
    shop.sandbox.fault("initiate", "delay", seconds=initiate_delay)

    def click(_):
        # One browser: the same cookies, on a connection of its own.
        tab = Buyer(served_shop.url)
        tab.http.cookies.update(buyer.http.cookies)
        tab.token = buyer.token
        return tab.checkout(form)

    responses = race(10, click)

    order = shop.latest_order()
    assert [response.status_code for response in responses] == [303] * 10
    assert {response.headers["Location"] for response in responses} == {
        order.payment_url
    }
    assert shop.sandbox.stats()["initiate"] == 1
    with shop.app.app_context():
        assert db.session.scalar(db.select(db.func.count(Order.id))) == 1
    assert shop.stock("jordan-air") == stock_before - 1
    assert shop.events(order).count("initiate_request") == 1
    assert served_shop.log().count("step=initiate_request") == 1


def buy_ten_times(served_shop, sandbox, product_ids: list[int], client: int):
    """One client's ten purchases, start to receipt; every status code seen."""
    buyer = Buyer(served_shop.url)
    codes, bought = [], Counter()
    for n in range(10):
        product_id, quantity = product_ids[(client + n) % len(product_ids)], 1 + n % 3
        codes.append(buyer.add(product_id, quantity).status_code)
        checkout = buyer.checkout()
        codes.append(checkout.status_code)
        back = buyer.come_back(sandbox.pay(checkout.headers["Location"]))
        codes.append(back.status_code)
        receipt = buyer.get(back.headers["Location"])
        codes.append(receipt.status_code)
        assert 'data-order-status="paid"' in receipt.text
        bought[product_id] += quantity
    return codes, bought


def test_200_purchases_from_20_concurrent_clients(served_shop, shop):
    with shop.app.app_context():
        db.session.execute(db.update(Product).values(stock=1000))
        db.session.commit()
        # The sticker alone is under Khalti's Rs 10 minimum.
        product_ids = db.session.scalars(
            db.select(Product.id).where(Product.price_paisa >= 1000)
        ).all()
        prices = dict(
            db.session.execute(db.select(Product.id, Product.price_paisa)).all()
        )

    started = time.monotonic()
    results = race(
        20, lambda client: buy_ten_times(served_shop, shop.sandbox, product_ids, client)
    )
    elapsed = time.monotonic() - started

    codes = [code for client_codes, _ in results for code in client_codes]
    bought = sum((client_bought for _, client_bought in results), Counter())
    assert Counter(codes) == {303: 600, 200: 200}
    with shop.app.app_context():
        orders = db.session.scalars(db.select(Order)).all()
        assert len(orders) == 200
        assert {order.status for order in orders} == {OrderStatus.PAID}
        for order in orders:
            assert order.total_paisa == sum(i.line_total_paisa for i in order.items)
        total_paid = sum(order.total_paisa for order in orders)
        stock = dict(db.session.execute(db.select(Product.id, Product.stock)).all())
    assert total_paid == sum(prices[pid] * qty for pid, qty in bought.items())
    for product_id in product_ids:
        assert stock[product_id] == 1000 - bought[product_id]
    print(f"200 purchases, 20 clients: {elapsed:.1f} s, {200 / elapsed:.1f}/s")
