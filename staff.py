"""Staff accounts in the browser, under /admin/staff: the list, adding an
account, disabling and enabling one, and "change my password".

A blueprint nested in the back office's (admin.init_app registers it), so
the back office's login check, no-store header and error pages cover it.
`flask create-staff` stays, for the first account and as the way back in.

Every change that should end someone's sessions goes through
`Staff.end_sessions()` (a new password, a disabled account): see
`admin.load_staff`.
"""

import secrets

from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import EqualTo, InputRequired, Length, Regexp

from database import db
from forms import no_nul, strip
from models import MIN_PASSWORD_LENGTH, Staff

bp = Blueprint("staff", __name__, url_prefix="/staff")


class AddStaffForm(FlaskForm):
    email = EmailField(
        "Email",
        filters=[strip],
        validators=[
            InputRequired(),
            Length(max=254),
            no_nul,
            Regexp(r"[^@\s]+@[^@\s]+\Z", message="Enter an email address."),
        ],
    )


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired(), no_nul])
    new = PasswordField(
        "New password",
        validators=[
            InputRequired(),
            no_nul,
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=200,
                message=f"Use at least {MIN_PASSWORD_LENGTH} characters.",
            ),
        ],
    )
    again = PasswordField(
        "New password again",
        validators=[InputRequired(), EqualTo("new", message="The two do not match.")],
    )


def render_list(form: AddStaffForm | None = None, status: int = 200, **shown):
    accounts = db.session.scalars(select(Staff).order_by(Staff.email)).all()
    return render_template(
        "admin/staff.html",
        accounts=accounts,
        form=form or AddStaffForm(formdata=None),
        **shown,
    ), status


@bp.get("")
def staff_list():
    """Every staff account, whether it may log in, and a form to add one."""
    return render_list()


@bp.post("")
def add_staff():
    """Add an account with a one-time password, shown here once.

    The password is in this page only: never in a flash message (those
    travel in the session cookie) and never in the log. Its owner must
    change it at their first login.
    """
    form = AddStaffForm()
    if not form.validate():
        return render_list(form, 400)
    password = secrets.token_urlsafe(12)
    added = Staff(
        email=form.email.data.lower(),
        password_hash=generate_password_hash(password),
        must_change_password=True,
    )
    db.session.add(added)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.email.errors = ["There is already an account with this email."]
        return render_list(form, 409)
    return render_list(added_email=added.email, one_time_password=password)


def active_accounts() -> list[Staff]:
    """The accounts that may log in, locked until this transaction ends
    (PostgreSQL), so two staff cannot disable the last two at once."""
    return db.session.scalars(select(Staff).where(Staff.active).with_for_update()).all()


def refuse(message: str):
    db.session.rollback()
    flash(message, "error")
    return render_list(status=409)


@bp.post("/<int:staff_id>/disable")
def disable(staff_id: int):
    """Disable an account: it cannot log in, and its sessions end now."""
    account = db.get_or_404(Staff, staff_id)
    if account.id == current_user.id:
        return refuse("You cannot disable your own account.")
    active = active_accounts()
    if account.active and len(active) <= 1:
        return refuse("This is the last active account; it stays enabled.")
    account.active = False
    account.end_sessions()
    db.session.commit()
    flash(f"{account.email} is disabled and logged out everywhere.", "success")
    return redirect(url_for("admin.staff.staff_list"), code=303)


@bp.post("/<int:staff_id>/enable")
def enable(staff_id: int):
    account = db.get_or_404(Staff, staff_id)
    account.active = True
    db.session.commit()
    flash(f"{account.email} may log in again.", "success")
    return redirect(url_for("admin.staff.staff_list"), code=303)


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    """Change my password: every other session of mine ends, this one stays."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("admin/password.html", form=form), status
    me = db.session.get(Staff, current_user.id)
    if not check_password_hash(me.password_hash, form.current.data):
        form.current.errors = ["This is not your current password."]
        return render_template("admin/password.html", form=form), 400
    me.set_password(form.new.data)
    me.must_change_password = False
    db.session.commit()
    # This browser logs in again with the new session version.
    logged_in_at = session["staff_logged_in_at"]
    login_user(me)
    session["staff_logged_in_at"] = logged_in_at
    flash("Your password is changed; your other sessions are logged out.", "success")
    return redirect(url_for("admin.dashboard"), code=303)
