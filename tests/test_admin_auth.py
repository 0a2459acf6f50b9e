"""Staff accounts, logging in and out, and the login required on every admin URL."""

import pytest
import werkzeug.security
from conftest import STAFF_EMAIL, STAFF_PASSWORD, BackOffice

import admin
from models import Order, Staff, db

# Every back office URL, with its method. <ref> becomes a real order's reference.
ADMIN_URLS = [
    ("GET", "/admin/"),
    ("GET", "/admin/orders"),
    ("GET", "/admin/orders.csv"),
    ("GET", "/admin/orders/<ref>"),
    ("POST", "/admin/reconcile"),
    ("POST", "/admin/orders/<ref>/verify"),
    ("POST", "/admin/orders/<ref>/refund"),
    ("POST", "/admin/orders/<ref>/accept"),
    ("POST", "/admin/logout"),
    ("GET", "/admin/refunds"),
    ("GET", "/admin/refunds.csv"),
    ("GET", "/admin/staff"),
    ("POST", "/admin/staff"),
    ("POST", "/admin/staff/1/disable"),
    ("POST", "/admin/staff/1/enable"),
    ("GET", "/admin/staff/password"),
    ("POST", "/admin/staff/password"),
]


def staff_count(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Staff.id)))


def test_create_staff_reads_the_password_from_a_pipe_and_stores_a_hash(app):
    result = BackOffice(app, None).create_staff("Sita@Example.COM ", STAFF_PASSWORD)
    assert result.output == "Created staff account sita@example.com.\n"
    with app.app_context():
        staff = db.session.scalar(db.select(Staff))
        assert staff.email == "sita@example.com"
        assert STAFF_PASSWORD not in staff.password_hash


def test_create_staff_for_an_existing_email_sets_a_new_password(app, client):
    office = BackOffice(app, client)
    office.create_staff()
    result = office.create_staff(password="a-brand-new-password")
    assert result.output == (
        f"Set a new password for {STAFF_EMAIL}; its sessions are ended.\n"
    )
    assert staff_count(app) == 1
    assert office.log_in().status_code == 401
    assert office.log_in(password="a-brand-new-password").status_code == 303


def test_create_staff_refuses_short_passwords(app):
    result = app.test_cli_runner().invoke(
        args=["create-staff", STAFF_EMAIL], input="eleven-char\n"
    )
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
    assert staff_count(app) == 0


def test_a_good_login_clears_the_old_session_and_goes_to_the_dashboard(app, client):
    office = BackOffice(app, client)
    office.create_staff()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    response = office.log_in()
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    with client.session_transaction() as session:
        assert "planted" not in session
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    ("next_url", "landing"),
    [
        ("/admin/orders?status=paid", "/admin/orders?status=paid"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("javascript:alert(1)", "/admin/"),
    ],
)
def test_next_never_leaves_the_site(app, client, next_url, landing):
    office = BackOffice(app, client)
    office.create_staff()
    response = client.post(
        "/admin/login",
        query_string={"next": next_url},
        data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == landing


def test_wrong_password_and_unknown_email_look_the_same(app, client, monkeypatch):
    BackOffice(app, client).create_staff()
    # Both must cost a password hash check, or the time taken would tell
    # which emails have accounts. (Timing itself is not measured in tests.)
    checked = []

    def check_password_hash(pwhash, password):
        checked.append(pwhash.split("$")[0])
        return werkzeug.security.check_password_hash(pwhash, password)

    monkeypatch.setattr(admin, "check_password_hash", check_password_hash)

    def attempt(email):
        return client.post(
            "/admin/login", data={"email": email, "password": "not-the-password"}
        )

    wrong, unknown = attempt(STAFF_EMAIL), attempt("nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert wrong.text.replace(STAFF_EMAIL, "X") == unknown.text.replace(
        "nobody@example.com", "X"
    )
    assert len(checked) == 2 and checked[0] == checked[1]  # same method and cost


def test_the_sixth_failed_login_is_refused_even_with_the_right_password(app, client):
    office = BackOffice(app, client)
    office.create_staff()
    for _ in range(5):
        assert office.log_in(password="wrong-password-1").status_code == 401
    refused = office.log_in()
    assert refused.status_code == 429
    assert "Too many login attempts" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    # Another email is not held up by these failures.
    office.create_staff("ram@example.com")
    assert office.log_in("ram@example.com").status_code == 303


def log_in_from(client, address, email=STAFF_EMAIL, password=STAFF_PASSWORD):
    return client.post(
        "/admin/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failures_from_another_address_never_refuse_the_right_password(app, client):
    BackOffice(app, client).create_staff()
    attempts = [
        log_in_from(client, "203.0.113.66", password="guess-1234567").status_code
        for _ in range(10)
    ]
    assert attempts == [401] * 5 + [429] * 5
    assert log_in_from(client, "203.0.113.66").status_code == 429
    assert log_in_from(client, "198.51.100.7").status_code == 303


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(make_app):
    app = make_app(FORWARDED_ALLOW=1)
    client = app.test_client()
    BackOffice(app, client).create_staff()

    def log_in(address, password=STAFF_PASSWORD):
        return client.post(
            "/admin/login",
            data={"email": STAFF_EMAIL, "password": password},
            headers={"X-Forwarded-For": address},
        )

    for _ in range(5):
        assert log_in("203.0.113.66", "guess-1234567").status_code == 401
    assert log_in("203.0.113.66").status_code == 429
    assert log_in("198.51.100.7").status_code == 303


def test_fifty_failures_an_hour_across_addresses_slow_down_one_email(app, client):
    BackOffice(app, client).create_staff()
    for n in range(50):
        address = f"203.0.113.{n}"
        assert log_in_from(client, address, password="guess").status_code == 401
    refused = log_in_from(client, "198.51.100.7")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    # Other staff are not held up.
    BackOffice(app, client).create_staff("ram@example.com")
    assert log_in_from(client, "198.51.100.7", "ram@example.com").status_code == 303


def test_too_many_attempts_from_one_address_are_refused(app, client):
    for n in range(30):
        response = client.post(
            "/admin/login", data={"email": f"u{n}@example.com", "password": "x"}
        )
        assert response.status_code == 401
    response = client.post(
        "/admin/login", data={"email": "u99@example.com", "password": "x"}
    )
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def admin_request(client, method, url, order):
    url = url.replace("<ref>", order.purchase_order_id)
    return client.open(url, method=method, data={"note": "x", "amount": "1"})


@pytest.mark.parametrize(("method", "url"), ADMIN_URLS)
def test_anonymous_visitors_are_sent_to_log_in_and_change_nothing(
    app, shop, method, url
):
    order = shop.buy()
    buyer = shop.client  # a session that placed an order is no staff session
    lookups = shop.sandbox.stats()

    response = admin_request(buyer, method, url, order)

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/login")
    # No order data: not the buyer's details, not the amounts.
    for detail in ("Sita Sharma", "sita@example.com", "9812345678", "Rs 200"):
        assert detail not in response.text
    assert shop.sandbox.stats() == lookups
    after = shop.order(order.purchase_order_id)
    assert (after.status, len(after.events)) == (order.status, len(order.events))


def test_an_anonymous_get_comes_back_to_the_page_after_logging_in(app, client):
    BackOffice(app, client).create_staff()
    response = client.get("/admin/orders?status=paid")
    assert response.headers["Location"] == (
        "/admin/login?next=/admin/orders?status%3Dpaid"
    )
    login = client.post(
        response.headers["Location"],
        data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD},
    )
    assert login.headers["Location"] == "/admin/orders?status=paid"


@pytest.mark.parametrize(("method", "url"), [u for u in ADMIN_URLS if u[0] == "POST"])
def test_csrf_is_enforced_on_every_admin_post(make_app, khalti_sandbox, method, url):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        order = Order(
            customer_name="A",
            customer_email="a@example.com",
            customer_phone="9800000000",
            total_paisa=2000,
            pidx="SomePidx",
            transaction_id="SomeTransaction",
        )
        db.session.add(order)
        db.session.commit()
        ref = order.purchase_order_id
    office = BackOffice(app, client)
    office.create_staff()
    page = client.get("/admin/login")
    token = page.text.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    logged_in = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": STAFF_EMAIL, "password": STAFF_PASSWORD},
    )
    assert logged_in.status_code == 303

    response = client.post(url.replace("<ref>", ref), data={"note": "x"})

    assert response.status_code == 400
    assert "Form expired" in response.text
    assert khalti_sandbox.stats() == {"initiate": 0, "lookup": 0, "refund": 0}
    assert client.get("/admin/").status_code == 200  # still logged in


def test_logout_ends_the_staff_session(back_office, client):
    response = client.post("/admin/logout")
    assert response.status_code == 303
    assert client.get("/admin/").status_code == 303


def test_staff_pages_are_not_cached(back_office, client):
    for url in ("/admin/", "/admin/orders", "/admin/login"):
        assert client.get(url).headers["Cache-Control"] == "no-store"
    assert client.get("/").headers.get("Cache-Control") != "no-store"


def test_the_staff_password_appears_in_no_page_and_no_log(app, shop, caplog):
    caplog.set_level("DEBUG")
    order = shop.buy()
    office = BackOffice(app, shop.client)
    created = office.create_staff()
    pages = [office.log_in(password="a-wrong-password"), office.log_in()]
    for url in ("/admin/", "/admin/orders", f"/admin/orders/{order.purchase_order_id}"):
        pages.append(shop.client.get(url))
    pages.append(office.refund(order, amount="10"))
    pages.append(shop.client.get("/admin/orders.csv"))
    assert STAFF_PASSWORD not in created.output
    for page in pages:
        assert STAFF_PASSWORD not in page.text
    assert STAFF_PASSWORD not in caplog.text
    with app.app_context():
        assert STAFF_PASSWORD not in db.session.scalar(db.select(Staff.password_hash))
