"""Staff sessions end: a copied session cookie stops working everywhere."""

import time

from conftest import BackOffice

from models import Staff, db

CUSTOMER_CSV = "/admin/orders.csv"


def copied_cookie(app, client):
    """Another browser (or an attacker) holding a copy of this session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_a_copied_cookie_works_until_the_staff_member_logs_out(app, back_office):
    thief = copied_cookie(app, back_office.client)
    assert thief.get(CUSTOMER_CSV).status_code == 200

    assert back_office.client.post("/admin/logout").status_code == 303

    replay = thief.get(CUSTOMER_CSV)
    assert replay.status_code == 303
    assert replay.headers["Location"].startswith("/admin/login")


def test_logging_out_in_one_browser_ends_the_sessions_of_the_others(app, back_office):
    laptop = BackOffice(app, app.test_client())
    assert laptop.log_in().status_code == 303
    assert back_office.client.post("/admin/logout").status_code == 303
    assert laptop.client.get("/admin/").status_code == 303


def test_create_staff_with_a_new_password_ends_every_session(app, back_office):
    thief = copied_cookie(app, back_office.client)
    back_office.create_staff(password="a-brand-new-password")
    assert thief.get(CUSTOMER_CSV).status_code == 303
    assert back_office.client.get("/admin/").status_code == 303


def test_a_login_lasts_at_most_12_hours(app, back_office, monkeypatch):
    thief = copied_cookie(app, back_office.client)
    assert back_office.client.get("/admin/").status_code == 200
    later = time.time() + 12 * 3600 + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert back_office.client.get("/admin/").status_code == 303
    assert thief.get(CUSTOMER_CSV).status_code == 303


def test_a_cookie_from_before_the_version_existed_names_no_one(app, back_office):
    with back_office.client.session_transaction() as session:
        session["_user_id"] = "1"  # what the cookie held before: the bare id
    assert back_office.client.get("/admin/").status_code == 303


def test_create_staff_enables_a_disabled_account_again(app, back_office):
    back_office.create_staff("ram@example.com")
    with app.app_context():
        ram = db.session.scalar(
            db.select(Staff).where(Staff.email == "ram@example.com")
        )
        ram_id = ram.id
    assert back_office.client.post(f"/admin/staff/{ram_id}/disable").status_code == 303
    ram = BackOffice(app, app.test_client())
    assert ram.log_in("ram@example.com").status_code == 401
    back_office.create_staff("ram@example.com", "ram-new-password-1")
    assert ram.log_in("ram@example.com", "ram-new-password-1").status_code == 303
