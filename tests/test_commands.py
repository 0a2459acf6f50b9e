"""The command-line tools and the configuration checks."""

import pytest

import app as shop_module
from config import BUILTIN_SANDBOX_URL
from models import OrderStatus, Product, db


def test_init_db_is_safe_to_run_twice(make_app):
    app = make_app(create_tables=False)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["init-db"])
    second = runner.invoke(args=["init-db"])
    assert first.exit_code == second.exit_code == 0
    assert "0 sample products added" in second.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Product.id))) == 7


def test_reconcile_settles_every_open_order(app, shop):
    paid = shop.start()
    shop.sandbox.pay(paid.payment_url)
    canceled = shop.start()
    shop.sandbox.cancel(canceled.payment_url)
    untouched = shop.start()
    down = shop.start()

    result = app.test_cli_runner().invoke(args=["reconcile"])

    assert result.exit_code == 0, result.output
    assert f"{paid.purchase_order_id}  awaiting_payment -> paid" in result.output
    assert (
        f"{canceled.purchase_order_id}  awaiting_payment -> canceled" in result.output
    )
    assert f"{untouched.purchase_order_id}  awaiting_payment -> awaiting_payment" in (
        result.output
    )
    assert "Checked 4 orders: 2 changed, 0 lookups failed." in result.output
    assert shop.order(down.purchase_order_id).status == OrderStatus.AWAITING_PAYMENT
    # Settled orders are not looked up again.
    again = app.test_cli_runner().invoke(args=["reconcile"])
    assert "Checked 2 orders" in again.output


def test_reconcile_reports_lookup_failures_and_changes_nothing(app, shop):
    order = shop.start()
    shop.sandbox.pay(order.payment_url)
    shop.sandbox.fault("lookup", "http_502")
    result = app.test_cli_runner().invoke(args=["reconcile"])
    assert result.exit_code == 0
    assert "lookup failed" in result.output
    assert "Checked 1 orders: 0 changed, 1 lookups failed." in result.output
    assert shop.order(order.purchase_order_id).status == OrderStatus.AWAITING_PAYMENT


def test_reconcile_older_than_skips_recent_orders(app, shop):
    shop.start()
    result = app.test_cli_runner().invoke(args=["reconcile", "--older-than", "5"])
    assert "Checked 0 orders" in result.output
    assert shop.sandbox.stats()["lookup"] == 0


@pytest.mark.parametrize("secret_key", [None, "", "change-me"])
def test_refuses_to_start_without_a_real_secret_key(monkeypatch, secret_key):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        shop_module.create_app({"SECRET_KEY": secret_key})


def test_defaults_to_the_built_in_sandbox_without_a_khalti_key():
    config = {"TESTING": True, "KHALTI_BASE_URL": None}
    app = shop_module.create_app(config | {"KHALTI_SECRET_KEY": None})
    assert app.config["KHALTI_BASE_URL"] == BUILTIN_SANDBOX_URL.format(port=5001)
    keyed = shop_module.create_app(config | {"KHALTI_SECRET_KEY": "k"})
    assert keyed.config["KHALTI_BASE_URL"] == "https://dev.khalti.com/api/v2/"
