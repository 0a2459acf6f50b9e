"""What anyone can send the back office answers 4xx, never 500, and changes nothing."""

import io

import pytest
from conftest import STAFF_EMAIL, STAFF_PASSWORD, BackOffice

from models import Refund, Staff, db


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(db.select(db.func.count(Staff.id))),
            db.session.scalar(db.select(db.func.count(Refund.id))),
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"email": f"{STAFF_EMAIL}\x00", "password": STAFF_PASSWORD},
        {"email": "\x00", "password": "x"},
        {"email": STAFF_EMAIL, "password": f"{STAFF_PASSWORD}\x00"},
        {"email": STAFF_EMAIL, "password": f"\x00{STAFF_PASSWORD}"},
    ],
)
def test_a_nul_in_the_login_is_refused_never_a_login(app, client, fields):
    BackOffice(app, client).create_staff()
    response = client.post("/admin/login", data=fields)
    assert response.status_code == 400
    assert "That is not a valid value." in response.text
    assert client.get("/admin/").status_code == 303  # not logged in


def test_a_login_field_sent_as_a_file_is_refused(app, client):
    BackOffice(app, client).create_staff()
    response = client.post(
        "/admin/login",
        data={"email": (io.BytesIO(STAFF_EMAIL.encode()), "e"), "password": "x"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "This form takes no files." in response.text
    assert client.get("/admin/").status_code == 303


def test_refund_and_staff_fields_sent_as_files_change_nothing(app, shop, back_office):
    order = shop.buy()
    token = back_office.refund_token(order)
    before = counts(app)
    posts = [
        (
            f"/admin/orders/{order.purchase_order_id}/refund",
            {"token": token, "amount": (io.BytesIO(b"10"), "a"), "reason": "x"},
        ),
        ("/admin/staff", {"email": (io.BytesIO(b"ram@example.com"), "e")}),
        (
            "/admin/staff/password",
            {"current": (io.BytesIO(STAFF_PASSWORD.encode()), "p"), "new": "x"},
        ),
    ]
    for url, data in posts:
        response = back_office.client.post(
            url, data=data, content_type="multipart/form-data"
        )
        assert response.status_code == 400, url
    assert counts(app) == before
    assert shop.sandbox.stats()["refund"] == 0


def test_a_nul_in_a_new_staff_email_is_refused(app, back_office):
    before = counts(app)
    response = back_office.client.post(
        "/admin/staff", data={"email": "ram\x00@example.com"}
    )
    assert response.status_code == 400
    assert counts(app) == before


@pytest.mark.parametrize("url", ["/admin/orders", "/admin/refunds"])
@pytest.mark.parametrize("page", [10**6 + 1, 2**63, 10**30])
def test_a_huge_page_number_is_404_like_a_page_past_the_end(back_office, url, page):
    response = back_office.client.get(f"{url}?page={page}")
    assert response.status_code == 404
    assert "Back to the dashboard" in response.text
