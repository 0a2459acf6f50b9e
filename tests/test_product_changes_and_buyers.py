"""What buyers see while staff change products.

A hidden product leaves the catalog and cannot be bought; a buyer pays the
total the checkout page showed or is asked again; and every change shows on
the next catalog page in every worker (two apps on one database).
"""

import re
from io import BytesIO

from PIL import Image

from models import CartLine, Order, Product, db


def card_names(page: str) -> list[str]:
    return re.findall(r'<h2 class="product-name">([^<]+)</h2>', page)


def shown_total(page: str) -> str:
    return re.search(r'name="total_paisa" type="hidden" value="(\d+)"', page)[1]


def orders(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Order.id)))


def nothing_sent_to_khalti(shop) -> bool:
    return shop.sandbox.stats()["initiate"] == 0


# --- Hidden products ---------------------------------------------------------


def test_a_hidden_product_leaves_the_catalog_and_cannot_be_added(client, shop):
    shop.set_product("dhaka-topi", visible=False)

    assert "Dhaka Topi" not in card_names(client.get("/").text)
    response = shop.add("dhaka-topi")
    assert response.status_code == 400
    assert "Dhaka Topi is no longer for sale." in response.text
    assert "dhaka-topi" not in client.get("/cart").text


def test_a_cart_holding_a_hidden_product_says_so_and_cannot_check_out(
    app, client, shop
):
    shop.add("dhaka-topi")
    token_page = client.get("/checkout").text
    shop.set_product("dhaka-topi", visible=False)

    cart = client.get("/cart").text
    assert "No longer for sale: remove it to check out." in cart
    opened = client.get("/checkout")
    assert opened.status_code == 303  # back to the cart, with the reason
    assert "Dhaka Topi is no longer for sale." in client.get("/cart").text

    response = shop.checkout(total_paisa=shown_total(token_page))
    assert response.status_code == 400
    assert "Dhaka Topi is no longer for sale." in response.text
    assert orders(app) == 0 and nothing_sent_to_khalti(shop)


def test_a_product_hidden_after_the_cart_was_checked_is_not_reserved(app, shop):
    # The checkout's one stock UPDATE takes only from products on sale, so a
    # product hidden between the cart's check and the order is not sold.
    stock = shop.stock("dhaka-topi")
    with app.app_context():
        topi = db.session.scalar(db.select(Product).where(Product.slug == "dhaka-topi"))
        order = Order.from_cart(
            [CartLine(topi, 1)],
            checkout_token="t" * 22,
            name="Sita",
            email="sita@example.com",
            phone="9812345678",
        )
        db.session.add(order)
        db.session.flush()
        db.session.execute(
            db.update(Product).where(Product.id == topi.id).values(visible=False)
        )
        assert order.reserve_stock() is topi
        db.session.rollback()
    assert shop.stock("dhaka-topi") == stock


# --- The total the buyer saw -------------------------------------------------


def test_a_price_changed_after_the_checkout_page_shows_the_new_total(app, client, shop):
    shop.add("jordan-air", 2)
    page = client.get("/checkout").text
    assert shown_total(page) == "40000"
    shop.set_product("jordan-air", price_paisa=250_00)

    response = shop.checkout(total_paisa="40000")

    assert response.status_code == 409
    assert (
        "A price changed while you were checking out: the total is now"
        " Rs 500.00, not Rs 400.00." in response.text
    )
    assert shown_total(response.text) == "50000"
    assert "Pay Rs 500.00 with Khalti" in response.text
    assert orders(app) == 0 and nothing_sent_to_khalti(shop)
    # Paying from the page just shown works, for the new total.
    assert shop.checkout(total_paisa="50000").status_code == 303
    assert shop.latest_order().total_paisa == 500_00


def test_a_checkout_at_the_total_shown_goes_through(client, shop):
    shop.add("jordan-air")
    total = shown_total(client.get("/checkout").text)
    assert shop.checkout(total_paisa=total).status_code == 303


def test_a_malformed_total_is_refused(app, shop):
    shop.add("jordan-air")
    for bad in ["-1", "1e5", "9" * 40, "20000\x00"]:
        response = shop.checkout(total_paisa=bad)
        assert response.status_code == 400, bad
    assert orders(app) == 0 and nothing_sent_to_khalti(shop)


# --- Every change on the next page, in every worker --------------------------


def staff_client(app):
    """A logged-in staff browser on `app` (the account is made once)."""
    client = app.test_client()
    response = client.post(
        "/admin/login",
        data={"email": "staff@example.com", "password": "staff-password-never-shown"},
    )
    assert response.status_code == 303
    return client


def picture() -> bytes:
    out = BytesIO()
    Image.new("RGB", (640, 480), "teal").save(out, "PNG")
    return out.getvalue()


def test_every_product_change_shows_at_once_in_another_worker(
    make_app, back_office, shop
):
    # Two gunicorn workers are two apps, each with its own cache, one database;
    # staff use the first, a buyer the second.
    staff = back_office.client
    buyer = make_app().test_client()
    assert "Prayer Flags" in card_names(buyer.get("/").text)
    flags = shop.product("prayer-flags")
    form = {
        "name": "Prayer Flags",
        "description": flags.description,
        "price": "120",
        "stock": str(flags.stock),
        "stock_shown": str(flags.stock),
        "visible": "y",
    }

    def save(**changes):
        response = staff.post(f"/admin/products/{flags.id}", data=form | changes)
        assert response.status_code == 303, response.text

    save(price="135.50")
    assert "Rs 135.50" in buyer.get("/").text

    save(name="Prayer Flags, long")
    assert "Prayer Flags, long" in card_names(buyer.get("/").text)

    save(picture=(BytesIO(picture()), "flags.png"))
    assert shop.product("prayer-flags").picture in buyer.get("/").text

    form.pop("visible")
    save()
    assert "Prayer Flags" not in buyer.get("/").text

    new = staff.post(
        "/admin/products/new",
        data={"name": "Singing Bowl", "price": "900", "stock": "3", "visible": "y"},
    )
    assert new.status_code == 303
    assert "Singing Bowl" in card_names(buyer.get("/").text)

    bowl_id = int(new.headers["Location"].rsplit("/", 1)[1])
    assert staff.post(f"/admin/products/{bowl_id}/delete").status_code == 303
    assert "Singing Bowl" not in card_names(buyer.get("/").text)
