"""Errors under /admin/ are drawn in the back office's layout, with a way back."""

import pytest
from conftest import STAFF_EMAIL, BackOffice
from flask import abort

BACK_OFFICE_LAYOUT = "· Back office · Khalti Demo Shop</title>"
TO_DASHBOARD = (
    '<a class="button button-primary" href="/admin/">Back to the dashboard</a>'
)
TO_LOGIN = 'href="/admin/login">Go to the staff login</a>'


def assert_back_office_error(response, code):
    assert response.status_code == code
    assert BACK_OFFICE_LAYOUT in response.text
    assert f'<p class="error-code">{code}</p>' in response.text
    assert "Back to your cart" not in response.text


@pytest.fixture
def failing_app(make_app):
    """A shop with two more back office URLs: one forbidden, one broken."""
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as in production

    def forbidden():
        abort(403)

    def broken():
        raise RuntimeError("a bug")

    app.add_url_rule("/admin/forbidden-for-test", view_func=forbidden)
    app.add_url_rule("/admin/broken-for-test", view_func=broken)
    return app


@pytest.mark.parametrize(
    ("method", "url", "code"),
    [
        ("GET", "/admin/orders?status=bogus", 400),
        ("GET", "/admin/forbidden-for-test", 403),
        ("GET", "/admin/no-such-page", 404),
        ("GET", "/admin/orders/NoSuchOrder", 404),
        ("GET", "/admin/logout", 405),
        ("GET", "/admin/broken-for-test", 500),
    ],
)
def test_back_office_errors_lead_back_to_the_dashboard(failing_app, method, url, code):
    office = BackOffice(failing_app, failing_app.test_client())
    office.create_staff()
    assert office.log_in().status_code == 303
    response = office.client.open(url, method=method)
    assert_back_office_error(response, code)
    assert TO_DASHBOARD in response.text
    assert STAFF_EMAIL in response.text  # the back office's header, logged in


def test_a_throttled_login_is_a_back_office_page_leading_to_the_login(app, client):
    for _ in range(5):
        client.post("/admin/login", data={"email": STAFF_EMAIL, "password": "x"})
    response = client.post("/admin/login", data={"email": STAFF_EMAIL, "password": "x"})
    assert_back_office_error(response, 429)
    assert TO_LOGIN in response.text
    assert "Retry-After" in response.headers


def test_anonymous_404_under_admin_leads_to_the_login(client):
    response = client.get("/admin/no-such-page")
    assert_back_office_error(response, 404)
    assert TO_LOGIN in response.text


def test_the_shop_keeps_its_own_error_pages(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Back to your cart" in response.text
    assert BACK_OFFICE_LAYOUT not in response.text
