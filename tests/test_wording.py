"""The wording defects of issue 18: each page says what is true."""

from test_admin_refunds import review_order


def test_checkout_counts_units_not_lines(client, shop):
    shop.add("jordan-air", 3)
    page = client.get("/checkout").text
    assert "You will pay <strong>Rs 600.00</strong> for 3 items" in page
    shop.add("dslr-camera", 1)
    assert "for 4 items" in client.get("/checkout").text


def test_one_unit_is_one_item(client, shop):
    shop.add("jordan-air", 1)
    assert "for 1 item on" in client.get("/checkout").text


def test_a_removal_names_what_was_removed(client, shop):
    shop.add("dslr-camera", 1)
    removed = client.post(
        "/cart/remove", data={"product_id": shop.product("dslr-camera").id}
    )
    assert removed.status_code == 303
    assert "Removed DSLR Camera from your cart." in client.get("/cart").text


def test_stock_message_counts_what_the_cart_already_holds(client, shop):
    shop.set_product("dslr-camera", stock=8)
    assert shop.add("dslr-camera", 8).status_code == 303
    refused = shop.add("dslr-camera", 1)
    assert refused.status_code == 400
    assert (
        "Your cart already holds 8 of DSLR Camera, and only 8 are in stock."
        in refused.text
    )
    assert "Only 8 of DSLR Camera left" not in refused.text


def test_the_paid_verdict_mentions_a_person_only_when_one_decided(shop, back_office):
    paid = shop.buy()
    receipt = shop.client.get(f"/orders/{paid.purchase_order_id}").text
    assert "Khalti said Completed for exactly the order total" in receipt
    assert "A person at the shop accepted" not in receipt

    order = review_order(shop)
    url = f"/admin/orders/{order.purchase_order_id}/accept"
    back_office.client.post(url, data={"note": "Buyer paid 50 paisa less."})
    receipt = shop.client.get(f"/orders/{order.purchase_order_id}").text
    assert "A person at the shop accepted the amount Khalti reported" in receipt
    assert "for exactly the order total" not in receipt
