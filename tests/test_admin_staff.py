"""Staff accounts in the browser: list, add, disable, enable, change my password."""

import re

from conftest import STAFF_EMAIL, STAFF_PASSWORD, BackOffice

from models import Staff, db

NEW_PASSWORD = "my-own-new-password"


def account(app, email) -> Staff:
    with app.app_context():
        return db.session.scalar(db.select(Staff).where(Staff.email == email))


def add(back_office, email="ram@example.com"):
    return back_office.client.post("/admin/staff", data={"email": email})


def one_time_password(page) -> str:
    return re.search(
        r"data-one-time-password>.*?<code>([^<]+)</code>", page.text, re.S
    )[1]


def staff_id(app, email) -> int:
    return account(app, email).id


def test_the_list_shows_every_account_and_who_may_log_in(app, back_office):
    add(back_office)
    page = back_office.client.get("/admin/staff")
    assert page.status_code == 200
    assert f'data-staff="{STAFF_EMAIL}" data-staff-active="yes"' in page.text
    assert 'data-staff="ram@example.com" data-staff-active="yes"' in page.text
    assert "Disable ram@example.com" in page.text
    assert f"Disable {STAFF_EMAIL}" not in page.text  # never yourself


def test_a_new_account_gets_a_one_time_password_shown_once(app, back_office, caplog):
    caplog.set_level("DEBUG")
    added = add(back_office, " Ram@Example.com ")
    assert added.status_code == 200
    assert added.headers["Cache-Control"] == "no-store"
    password = one_time_password(added)
    assert len(password) >= 12
    assert password not in back_office.client.get("/admin/staff").text
    assert password not in caplog.text
    assert account(app, "ram@example.com").must_change_password

    ram = BackOffice(app, app.test_client())
    assert ram.log_in("ram@example.com", password).status_code == 303
    # Every page asks for a new password first.
    orders = ram.client.get("/admin/orders")
    assert orders.status_code == 303
    assert orders.headers["Location"] == "/admin/staff/password"
    changed = ram.client.post(
        "/admin/staff/password",
        data={"current": password, "new": NEW_PASSWORD, "again": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert ram.client.get("/admin/orders").status_code == 200
    assert not account(app, "ram@example.com").must_change_password


def test_adding_an_existing_email_or_a_bad_one_is_refused(app, back_office):
    assert add(back_office, STAFF_EMAIL.upper()).status_code == 409
    bad = add(back_office, "not-an-email")
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.text
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Staff.id))) == 1


def test_disabling_an_account_ends_its_sessions_and_its_logins(app, back_office):
    back_office.create_staff("ram@example.com")
    ram = BackOffice(app, app.test_client())
    assert ram.log_in("ram@example.com").status_code == 303

    ram_id = staff_id(app, "ram@example.com")
    response = back_office.client.post(f"/admin/staff/{ram_id}/disable")
    assert response.status_code == 303

    assert ram.client.get("/admin/orders.csv").status_code == 303
    assert ram.log_in("ram@example.com").status_code == 401
    page = back_office.client.get("/admin/staff")
    assert 'data-staff="ram@example.com" data-staff-active="no"' in page.text

    assert back_office.client.post(f"/admin/staff/{ram_id}/enable").status_code == 303
    assert ram.log_in("ram@example.com").status_code == 303


def test_nobody_disables_their_own_account(app, back_office):
    me = staff_id(app, STAFF_EMAIL)
    refused = back_office.client.post(f"/admin/staff/{me}/disable")
    assert refused.status_code == 409
    assert "You cannot disable your own account." in refused.text
    assert account(app, STAFF_EMAIL).active
    assert back_office.client.get("/admin/").status_code == 200


def test_two_staff_disabling_each_other_leave_one_active(app, back_office):
    """The last active account stays: the second of two crossed disables,
    whose page was loaded while both were active, is refused."""
    back_office.create_staff("ram@example.com")
    ram = BackOffice(app, app.test_client())
    assert ram.log_in("ram@example.com").status_code == 303
    me, ram_id = staff_id(app, STAFF_EMAIL), staff_id(app, "ram@example.com")
    assert ram.client.post(f"/admin/staff/{me}/disable").status_code == 303
    # My session is over, so I cannot answer by disabling Ram.
    assert back_office.client.post(f"/admin/staff/{ram_id}/disable").status_code == 303
    assert account(app, "ram@example.com").active
    assert not account(app, STAFF_EMAIL).active


def test_changing_my_password_ends_my_other_sessions_only(app, back_office):
    laptop = BackOffice(app, app.test_client())
    assert laptop.log_in().status_code == 303

    changed = back_office.client.post(
        "/admin/staff/password",
        data={"current": STAFF_PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert back_office.client.get("/admin/").status_code == 200
    assert laptop.client.get("/admin/").status_code == 303
    assert laptop.log_in().status_code == 401
    assert laptop.log_in(password=NEW_PASSWORD).status_code == 303


def test_a_wrong_current_password_or_a_short_new_one_changes_nothing(app, back_office):
    wrong = back_office.client.post(
        "/admin/staff/password",
        data={"current": "not-it-at-all", "new": NEW_PASSWORD, "again": NEW_PASSWORD},
    )
    assert wrong.status_code == 400
    assert "This is not your current password." in wrong.text
    short = back_office.client.post(
        "/admin/staff/password",
        data={"current": STAFF_PASSWORD, "new": "short", "again": "short"},
    )
    assert short.status_code == 400
    assert "Use at least 12 characters." in short.text
    assert back_office.client.get("/admin/").status_code == 200
    assert BackOffice(app, app.test_client()).log_in().status_code == 303
