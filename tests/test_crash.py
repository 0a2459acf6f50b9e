"""The shop's processes killed (SIGKILL) mid-payment, then started again."""

import threading
import time
from datetime import timedelta

import pytest
import requests
from served_shop import Buyer, ServedShop

from models import Order, OrderStatus, db, now_utc

pytestmark = pytest.mark.load


@pytest.fixture
def served_shop(app, database_url, khalti_sandbox, tmp_path):
    served = ServedShop(database_url, khalti_sandbox.api_url, tmp_path / "shop.log")
    yield served
    served.stop()


def test_killed_after_initiate_then_reconcile_settles_it(served_shop, shop):
    stock_before = shop.stock("jordan-air")
    buyer = Buyer(served_shop.start().url)
    buyer.add(shop.product("jordan-air").id, 1)
    payment_url = buyer.checkout().headers["Location"]

    served_shop.kill()
    # The buyer pays at Khalti while the shop is down; their return is lost.
    return_url = shop.sandbox.pay(payment_url)
    with pytest.raises(requests.ConnectionError):
        buyer.come_back(return_url)

    order = shop.latest_order()
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert order.pidx == payment_url.split("pidx=")[1]
    sent = shop.sandbox.record(order.pidx)["request"]
    assert sent["purchase_order_id"] == order.purchase_order_id

    served_shop.start()
    result = served_shop.flask("reconcile")
    assert result.returncode == 0, result.stderr
    assert f"{order.purchase_order_id}  awaiting_payment -> paid" in result.stdout
    assert shop.order(order.purchase_order_id).status == OrderStatus.PAID
    assert shop.events(order).count("status:paid") == 1
    assert shop.stock("jordan-air") == stock_before - 1
    # The buyer's late return lands on the receipt.
    back = buyer.come_back(return_url)
    assert back.status_code == 303
    assert 'data-order-status="paid"' in buyer.get(back.headers["Location"]).text


def test_killed_while_initiating_then_reconcile_frees_the_stock(served_shop, shop):
    stock_before = shop.stock("jordan-air")
    buyer = Buyer(served_shop.start().url)
    buyer.add(shop.product("jordan-air").id, 1)
    shop.sandbox.fault("initiate", "delay", seconds=1)
    outcome = []

    def check_out():
        try:
            outcome.append(buyer.checkout())
        except requests.ConnectionError as exc:
            outcome.append(exc)

    checkout = threading.Thread(target=check_out)
    checkout.start()
    while shop.sandbox.stats()["initiate"] == 0:  # Khalti has the request
        time.sleep(0.05)
    served_shop.kill()
    checkout.join()
    assert isinstance(outcome[0], requests.ConnectionError)

    order = shop.latest_order()
    assert order.status == OrderStatus.CREATED
    assert shop.events(order) == ["order_created", "initiate_request"]
    assert shop.stock("jordan-air") == stock_before - 1

    result = served_shop.flask("reconcile")
    assert f"{order.purchase_order_id}  created" not in result.stdout  # too recent
    with shop.app.app_context():
        db.session.execute(
            db.update(Order).values(created_at=now_utc() - timedelta(minutes=1))
        )
        db.session.commit()
    result = served_shop.flask("reconcile")
    assert result.returncode == 0, result.stderr
    assert f"{order.purchase_order_id}  created -> failed" in result.stdout
    assert shop.order(order.purchase_order_id).status == OrderStatus.FAILED
    assert shop.stock("jordan-air") == stock_before
