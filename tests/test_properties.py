"""Property-based tests: whatever a visitor sends, no 5xx and no wrong change.

Hypothesis makes up form fields and query strings (long, non-UTF-8, control
characters, repeated keys); each example runs on the same shop, so the
checks compare the database before and after every single request.
"""

from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from models import Order, PaymentEvent, Product, db

# One shop per test function, reused across examples on purpose.
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

FORM_FIELDS = ["product_id", "quantity", "name", "email", "phone", "csrf_token"]

# Any text, and a few values known to trip databases and parsers up often
# enough that every run tries them (PostgreSQL refuses NUL characters).
hostile_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["\x00", "a\x00b", "\u202e", "' OR 1=1 --", "../../etc"]),
    st.just("x" * 5000),
)
# Values a visitor can type: any text, numbers as text, huge and tiny.
field_values = st.one_of(
    hostile_text,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "1", "0", "-1", "1e3", "NaN", "9812345678"]),
)
# Any fields, known or not, each possibly repeated.
form_data = st.lists(
    st.tuples(st.sampled_from(FORM_FIELDS) | st.text(max_size=20), field_values),
    max_size=8,
).map(MultiDict)
# Raw query strings: percent-encoded arbitrary bytes, so not always UTF-8.
raw_query_values = st.binary(max_size=200).map(lambda raw: quote_from_bytes(raw))
query_pairs = st.lists(
    st.tuples(
        st.sampled_from(["pidx", "status", "purchase_order_id", "amount", "x"]),
        raw_query_values | hostile_text.map(lambda text: quote(text)),
    ),
    max_size=8,
)


def database_state(app) -> tuple:
    """What only a lookup (or a valid checkout) may change."""
    with app.app_context():
        orders = tuple(db.session.execute(db.select(Order.id, Order.status)).all())
        stock = tuple(db.session.scalars(db.select(Product.stock).order_by(Product.id)))
        events = db.session.scalar(db.select(db.func.count(PaymentEvent.id)))
    return orders, stock, events


def assert_answered_clearly(response):
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("route", ["/cart/add", "/cart/update", "/cart/remove"])
@PROPERTY_SETTINGS
@given(data=form_data)
def test_cart_forms_never_fail_and_touch_only_the_cart(app, shop, route, data):
    shop.add("jordan-air", 1)
    before = database_state(app)
    response = shop.client.post(route, data=data)
    assert_answered_clearly(response)
    assert database_state(app) == before


@PROPERTY_SETTINGS
@given(data=form_data)
def test_checkout_form_never_fails_and_orders_only_when_valid(app, shop, data):
    shop.add("jordan-air", 1)
    before = database_state(app)
    response = shop.client.post("/checkout", data=data)
    assert_answered_clearly(response)
    if response.status_code != 303:
        assert database_state(app) == before


@PROPERTY_SETTINGS
@given(name=hostile_text, email=st.sampled_from(["a@example.com", "x" * 300]))
def test_checkout_with_an_odd_name_orders_or_refuses_cleanly(app, shop, name, email):
    """The other fields valid, so the name alone decides what happens."""
    shop.add("jordan-air", 1)
    before = database_state(app)
    response = shop.checkout(name=name, email=email)
    assert_answered_clearly(response)
    if response.status_code == 303:
        assert shop.latest_order().customer_name == name.strip()
    else:
        assert database_state(app) == before


@PROPERTY_SETTINGS
@given(pairs=query_pairs, use_real_pidx=st.booleans())
def test_return_url_changes_nothing_a_lookup_did_not_say(
    app, shop, pairs, use_real_pidx
):
    """Forged, replayed, repeated or garbled callbacks: only lookup counts."""
    if not hasattr(shop, "awaiting"):
        shop.awaiting = shop.start()
    order = shop.awaiting
    if use_real_pidx:
        pairs = [("pidx", order.pidx), *pairs]
    orders, stock, _ = database_state(app)
    query = "&".join(f"{key}={value}" for key, value in pairs)
    response = shop.client.get(f"/successfull-payment?{query}")
    assert_answered_clearly(response)
    # The sandbox still says Initiated, so nothing may move, whatever the
    # query claims (status=Completed, another purchase_order_id, ...).
    assert database_state(app)[:2] == (orders, stock)
    assert set(shop.events(order)) <= {
        *("order_created", "initiate_request", "initiate_response"),
        *("status:awaiting_payment", "callback", "lookup_response"),
    }


@PROPERTY_SETTINGS
@given(reference=hostile_text, pairs=query_pairs)
def test_order_pages_never_fail_nor_change_anything(app, shop, reference, pairs):
    if not hasattr(shop, "awaiting"):
        shop.awaiting = shop.start()
    before = database_state(app)
    query = "&".join(f"{key}={value}" for key, value in pairs)
    for path in (
        f"/orders/{quote(reference, safe='')}?{query}",
        f"/orders/{shop.awaiting.purchase_order_id}?{query}",
    ):
        assert_answered_clearly(shop.client.get(path))
    verify = shop.client.post(f"/orders/{quote(reference, safe='')}/verify")
    assert_answered_clearly(verify)
    assert database_state(app) == before
