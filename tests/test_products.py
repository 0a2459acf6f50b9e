"""Products in the back office: the list, new products, edits, deletes.

Each rule of issue 16 that is about the back office's side: stock is never
overwritten blindly, an order keeps its prices, a product in orders is only
hidden, and every change is recorded with who made it.
"""

import re
from io import BytesIO

import pytest

from models import OrderItem, Product, ProductChange, db


def product_form(**fields) -> dict:
    """A valid product form; `fields` change or add to it."""
    form = {
        "name": "Singing Bowl",
        "description": "Hammered bronze, from Patan.",
        "price": "1250.50",
        "stock": "8",
        "visible": "y",
    }
    return form | fields


def edit_form(client, product_id: int, **fields) -> dict:
    """The edit form as its page shows it, with `fields` changed."""
    page = client.get(f"/admin/products/{product_id}").text
    shown = {
        "name": re.search(r'name="name"[^>]*value="([^"]*)"', page)[1],
        "price": re.search(r'name="price"[^>]*value="([^"]*)"', page)[1],
        "stock": re.search(r'name="stock"[^>]*value="([^"]*)"', page)[1],
        "stock_shown": re.search(r'name="stock_shown"[^>]*value="([^"]*)"', page)[1],
        "description": re.search(
            r'name="description"[^>]*>\s*([^<]*)</textarea>', page
        )[1],
    }
    if re.search(r'<input checked[^>]*name="visible"', page):
        shown["visible"] = "y"
    return shown | fields


def row(page: str, product_id: int) -> str:
    return re.search(rf'<tr data-product-id="{product_id}"[^>]*>.*?</tr>', page, re.S)[
        0
    ]


def test_the_list_shows_every_product_and_is_in_the_navigation(
    back_office, client, shop
):
    shop.buy(("dhaka-topi", 2))
    topi = shop.product("dhaka-topi")
    shop.set_product("jordan-air", visible=False)

    page = client.get("/admin/products").text

    assert 'href="/admin/products"' in client.get("/admin/").text
    assert "Jordan Air" in page  # hidden ones too
    assert 'data-product-visible="false"' in row(page, shop.product("jordan-air").id)
    topi_row = row(page, topi.id)
    assert 'data-product-visible="true"' in topi_row
    assert "Rs 450.00" in topi_row
    assert f"<td>{topi.stock}</td>" in topi_row
    assert topi_row.endswith("<td>2</td>\n    </tr>")  # units sold
    assert f'href="/admin/products/{topi.id}"' in topi_row


def test_the_pages_need_a_staff_login(client):
    for path in ["/admin/products", "/admin/products/new", "/admin/products/1"]:
        assert client.get(path).status_code == 303
    assert client.post("/admin/products/new", data=product_form()).status_code == 303


def test_staff_add_a_product_that_buyers_can_buy(back_office, app, client, shop):
    response = client.post("/admin/products/new", data=product_form())
    assert response.status_code == 303

    with app.app_context():
        product = db.session.scalar(
            db.select(Product).where(Product.name == "Singing Bowl")
        )
        assert (product.price_paisa, product.stock, product.visible) == (125050, 8, 1)
        assert product.slug is None and product.picture is None
    catalog = client.get("/").text
    assert "Singing Bowl" in catalog and "/static/img/placeholder.svg" in catalog
    assert client.post(
        "/cart/add", data={"product_id": product.id, "quantity": 1}
    ).status_code == (303)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "Name"),
        ({"name": "x" * 101}, "Name"),
        ({"name": "Bowl\x00"}, "Name"),
        ({"description": "x" * 1001}, "Description"),
        ({"price": "0.99"}, "at least Rs 1.00"),
        ({"price": "12.505"}, "Enter rupees like 12.50"),
        ({"price": "99999999999999999999"}, "Enter rupees like 12.50"),
        ({"price": "-5"}, "Enter rupees like 12.50"),
        ({"stock": "-1"}, "Stock"),
        ({"stock": "99999999999999999999"}, "Stock"),
        ({"stock": "1e3"}, "Stock"),
    ],
)
def test_bad_input_is_refused_and_adds_nothing(
    back_office, app, client, fields, message
):
    response = client.post("/admin/products/new", data=product_form(**fields))
    assert response.status_code == 400
    assert message in response.text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Product.id))) == 7


def test_a_text_field_sent_as_a_file_is_refused(back_office, app, client):
    form = product_form()
    form["name"] = (BytesIO(b"Singing Bowl"), "name.txt")
    response = client.post("/admin/products/new", data=form)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Product.id))) == 7


def test_staff_change_a_price_and_an_order_keeps_its_own(back_office, client, shop):
    order = shop.buy(("dslr-camera", 1))
    camera = shop.product("dslr-camera")

    response = client.post(
        f"/admin/products/{camera.id}",
        data=edit_form(client, camera.id, price="525.00"),
    )

    assert response.status_code == 303
    assert shop.product("dslr-camera").price_paisa == 525_00
    kept = shop.order(order.purchase_order_id)
    assert kept.total_paisa == 500_00
    assert [item.unit_price_paisa for item in kept.items] == [500_00]
    assert "Rs 500.00" in client.get(f"/orders/{order.purchase_order_id}").text


def test_a_stock_moved_by_a_buyer_meanwhile_is_never_overwritten(
    back_office, client, shop
):
    camera = shop.product("dslr-camera")
    form = edit_form(client, camera.id, stock="60")  # shows 10: a restock of 50
    shop.start(("dslr-camera", 2))  # a buyer takes 2 meanwhile

    response = client.post(f"/admin/products/{camera.id}", data=form)

    assert response.status_code == 409
    assert "the stock changed from 10 to 8 while you were editing" in response.text
    assert shop.stock("dslr-camera") == 8
    # The form now shows 8, and saving from it works.
    again = edit_form(client, camera.id, stock="58")
    assert again["stock_shown"] == "8"
    assert client.post(f"/admin/products/{camera.id}", data=again).status_code == 303
    assert shop.stock("dslr-camera") == 58


def test_the_stock_form_is_refused_without_the_stock_it_showed(
    back_office, client, shop
):
    camera = shop.product("dslr-camera")
    form = edit_form(client, camera.id, stock="60")
    del form["stock_shown"]
    assert client.post(f"/admin/products/{camera.id}", data=form).status_code == 400
    assert shop.stock("dslr-camera") == 10


def test_every_change_is_recorded_and_shown(back_office, app, client, shop):
    tea = shop.product("himalayan-tea")
    client.post(
        f"/admin/products/{tea.id}",
        data=edit_form(client, tea.id, price="700", stock="25"),
    )

    with app.app_context():
        change = db.session.scalar(
            db.select(ProductChange).where(ProductChange.product_id == tea.id)
        )
        assert change.staff_email == "staff@example.com"
        assert change.fields == {"price_paisa": [650_00, 700_00], "stock": [20, 25]}
    page = client.get(f"/admin/products/{tea.id}").text
    assert "staff@example.com" in page
    assert "Rs 650.00" in page and "Rs 700.00" in page


def test_a_product_in_no_order_can_be_deleted(back_office, app, client, shop):
    client.post("/admin/products/new", data=product_form())
    with app.app_context():
        bowl = db.session.scalar(
            db.select(Product).where(Product.name == "Singing Bowl")
        )
    assert ">Delete</button>" in client.get(f"/admin/products/{bowl.id}").text

    response = client.post(f"/admin/products/{bowl.id}/delete")

    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Product, bowl.id) is None
        # The record of the product and of its deletion stays.
        kept = db.session.scalars(db.select(ProductChange)).all()
        assert [c.fields["name"] for c in kept] == [
            [None, "Singing Bowl"],
            ["Singing Bowl", None],
        ]


def test_a_product_in_an_order_can_only_be_hidden(back_office, app, client, shop):
    shop.start(("prayer-flags", 1))  # an order, even an unpaid one, holds it
    flags = shop.product("prayer-flags")
    page = client.get(f"/admin/products/{flags.id}").text
    assert "is in orders, so it cannot be deleted" in page
    assert ">Delete</button>" not in page

    response = client.post(f"/admin/products/{flags.id}/delete")

    assert response.status_code == 409
    assert shop.product("prayer-flags") is not None
    with app.app_context():
        assert db.session.scalar(
            db.select(OrderItem).where(OrderItem.product_id == flags.id)
        )


def test_unknown_or_impossible_product_ids_are_404(back_office, client):
    assert client.get("/admin/products/999").status_code == 404
    assert client.get("/admin/products/99999999999999999999").status_code == 404
    assert client.post("/admin/products/999/delete").status_code == 404
