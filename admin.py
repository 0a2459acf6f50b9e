"""The back office: the merchant's half of a payment's life.

Staff log in (Flask-Login), see the orders, settle the ones a person must
look at, and refund through Khalti. Payment decisions stay where the buyer's
journey makes them: a lookup goes through `payments.verify_payment()`, and every
order status change through `Order.move_to()`. This module never sets a
status by hand.

A refund moves money, so it is built like the checkout: a one-time token in
the form (a unique column), a Refund row committed before Khalti is called,
no transaction open during the call, and a lookup afterwards that decides the
order's status. The refund call alone never marks an order refunded.
"""

import csv
import io
import json
import re
import secrets
import time
from collections import Counter
from datetime import date, timedelta
from functools import cache

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, selectinload
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp

import i18n
import khalti
import payments
import products
import staff
from database import db
from forms import first_error, no_nul, safe_next, strip
from models import (
    OPEN_STATUSES,
    REFUNDABLE_STATUSES,
    Order,
    OrderStatus,
    PaymentEvent,
    Refund,
    RefundState,
    Staff,
    now_utc,
    order_where,
)
from money import format_npr, paisa_to_rupees, rupees_to_paisa
from throttle import limiter

bp = Blueprint("admin", __name__, url_prefix="/admin")
# Products (products.py) live under /admin/products, behind the same login.
bp.register_blueprint(products.bp)
# Staff accounts (/admin/staff), nested so this blueprint's checks cover them.
bp.register_blueprint(staff.bp)
login_manager = LoginManager()

ORDERS_PER_PAGE = 50
# No list here comes near a million pages of 50.
MAX_PAGE = 1_000_000
# A staff login ends after this, even in a browser left open.
STAFF_LOGIN_HOURS = 12
CHART_DAYS = 14
# Failed logins are counted three ways. Per email *and* address, so someone
# else's wrong guesses never refuse a staff member's right password from
# their own address; per address, so one address cannot try many emails; and
# per email across all addresses, generously, to slow guessing spread over
# many addresses without locking the merchant out.
FAILED_LOGINS_PER_EMAIL_AND_ADDRESS = "5 per 15 minutes"
FAILED_LOGINS_PER_ADDRESS = "30 per 15 minutes"
FAILED_LOGINS_PER_EMAIL = "50 per hour"
TOO_MANY_LOGINS = "Too many login attempts. Try again later (see Retry-After)."

# Spreadsheets run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def init_app(app: Flask) -> None:
    """Wire the back office into the shop (called by `create_app`)."""
    login_manager.init_app(app)
    dummy_hash()  # made now, so the first unknown email costs no extra time
    app.register_blueprint(bp)


# --- Who may come in -----------------------------------------------------------


@login_manager.user_loader
def load_staff(session_id: str) -> Staff | None:
    """The staff member a session names, if that session has not ended.

    The cookie holds "id.version" (Staff.get_id). A logout, a new password
    or a disabled account raises the version in the database, so every copy
    of an older cookie, on every server, names no one from then on. A login
    lasts STAFF_LOGIN_HOURS, whatever the cookie says.
    """
    staff_id, _, version = session_id.partition(".")
    if not (staff_id.isdecimal() and version.isdecimal()):
        return None
    logged_in_at = session.get("staff_logged_in_at", 0)
    if not time.time() - logged_in_at < STAFF_LOGIN_HOURS * 3600:
        return None
    staff = db.session.get(Staff, int(staff_id))
    if staff is None or not staff.active or staff.session_version != int(version):
        return None
    return staff


@login_manager.unauthorized_handler
def send_to_login():
    """Anonymous visitors go to the login page, and do nothing else."""
    next_path = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("admin.login", next=next_path), code=303)


@bp.before_request
def require_staff():
    """Every back office page and action needs a staff login but the login page.

    One check for the whole blueprint, so a new page cannot forget it. A
    buyer's session holds a cart and orders, never a staff id: anonymous here.
    """
    if request.endpoint == "admin.login":
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    # A password someone else chose is changed before anything else.
    if current_user.must_change_password and request.endpoint not in (
        "admin.staff.change_password",
        "admin.logout",
    ):
        flash("Choose your own password first.", "info")
        return redirect(url_for("admin.staff.change_password"), code=303)
    return None


@bp.after_request
def no_store(response):
    """Keep customers' details out of the browser's and proxies' caches."""
    response.headers["Cache-Control"] = "no-store"
    return response


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired(), Length(max=254), no_nul])
    password = PasswordField("Password", validators=[InputRequired(), no_nul])


def login_email() -> str:
    """The email a login attempt is for: the key its failures are counted under."""
    return request.form.get("email", "").strip().lower()[:254]


@cache
def dummy_hash() -> str:
    """A hash to check unknown emails against, so they cost the same time."""
    return generate_password_hash(secrets.token_hex())


def staff_with_password(email: str, password: str) -> Staff | None:
    staff = db.session.scalar(select(Staff).where(Staff.email == email))
    good = check_password_hash(staff.password_hash if staff else dummy_hash(), password)
    # A disabled account gets the same answer as a wrong password.
    return staff if staff and good and staff.active else None


def login_email_and_address() -> str:
    return f"{login_email()} from {get_remote_address()}"


def failed(response) -> bool:
    """Only failures count; once a limit is full, every attempt is refused
    up front, the right password included, until the window moves on."""
    return response.status_code == 401


def count_failures(limit: str, key_func):
    return limiter.limit(
        limit,
        key_func=key_func,
        methods=["POST"],
        deduct_when=failed,
        error_message=TOO_MANY_LOGINS,
    )


@bp.route("/login", methods=["GET", "POST"])
@count_failures(FAILED_LOGINS_PER_EMAIL_AND_ADDRESS, login_email_and_address)
@count_failures(FAILED_LOGINS_PER_ADDRESS, get_remote_address)
@count_failures(FAILED_LOGINS_PER_EMAIL, login_email)
def login():
    """The staff login form."""
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("admin/login.html", form=form), (
            400 if form.is_submitted() else 200
        )
    staff = staff_with_password(login_email(), form.password.data)
    if staff is None:
        # The same answer whether the email exists or not.
        flash("Wrong email or password.", "error")
        return render_template("admin/login.html", form=form), 401
    # A fresh session: whatever an attacker planted in the old one is gone.
    session.clear()
    login_user(staff)
    session["staff_logged_in_at"] = int(time.time())
    dashboard = url_for("admin.dashboard")
    return redirect(safe_next(request.args.get("next"), dashboard), code=303)


@bp.post("/logout")
def logout():
    """Log out: end this session and every copy of it (see load_staff)."""
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("admin.login"), code=303)


# --- The dashboard -----------------------------------------------------------------


def paid_per_day(days: int) -> list[tuple[str, int]]:
    """Payments received per day, oldest first, by the day orders were placed.

    The days are the shop's (SHOP_TIMEZONE, Nepal's by default): in UTC,
    Nepal's day would start at 5:45 in the morning. Before refunds: an order
    refunded later still counts on the day it was paid. Khalti's payment
    links expire within the hour, so the day an order was placed is the day
    it was paid.
    """
    first = i18n.local_time(now_utc()).date() - timedelta(days=days - 1)
    placed = db.session.execute(
        select(Order.created_at, Order.total_paisa).where(
            Order.created_at >= i18n.utc_start_of(first),
            Order.status.in_([*REFUNDABLE_STATUSES, OrderStatus.REFUNDED]),
        )
    )
    # Summed here rather than by SQL's date(), which only knows UTC's days
    # (and the zone may have summer time, so no fixed offset would do).
    totals = Counter()
    for created_at, paisa in placed:
        totals[i18n.local_time(created_at).date()] += paisa
    dates = [first + timedelta(days=n) for n in range(days)]
    return [(date.isoformat(), totals[date]) for date in dates]


def refunded_since(first_day: date) -> Counter:
    """Refunds Khalti confirmed, per shop day (as paid_per_day) they were
    asked for, from `first_day` on, keyed by the day's ISO date."""
    refunds = db.session.execute(
        select(Refund.created_at, Refund.amount_paisa).where(
            Refund.created_at >= i18n.utc_start_of(first_day),
            Refund.state == RefundState.SUCCEEDED,
        )
    )
    totals = Counter()
    for created_at, paisa in refunds:
        totals[i18n.local_time(created_at).date().isoformat()] += paisa
    return totals


def orders_needing_a_person(limit: int = 100) -> list[Order]:
    """Orders held for review, pending at Khalti, or unpaid past their link."""
    orders = db.session.scalars(
        select(Order)
        .where(Order.status.in_(OPEN_STATUSES))
        .order_by(Order.created_at)
        .limit(limit)
    )
    return [
        order
        for order in orders
        if order.status != OrderStatus.AWAITING_PAYMENT or order.payment_link_expired
    ]


def bar_chart(days: list[tuple[str, int]]) -> dict:
    """Bar sizes for the revenue chart, drawn as SVG by the template."""
    tallest = max((paisa for _, paisa in days), default=0) or 1
    bars = [
        {"date": date, "paisa": paisa, "height": round(120 * paisa / tallest)}
        for date, paisa in days
    ]
    return {"bars": bars, "tallest": tallest}


@bp.get("/")
def dashboard(reconcile_report: list[str] | None = None):
    """Orders per status, money received, what needs a person."""
    counts = dict(
        db.session.execute(
            select(Order.status, func.count(Order.id)).group_by(Order.status)
        ).all()
    )
    days = paid_per_day(CHART_DAYS)
    week = [date for date, _ in days[-7:]]
    refunded = refunded_since(date.fromisoformat(week[0]))
    return render_template(
        "admin/dashboard.html",
        counts={status: counts.get(status, 0) for status in OrderStatus},
        paid_today=days[-1][1],
        paid_week=sum(paisa for _, paisa in days[-7:]),
        refunded_today=refunded.get(week[-1], 0),
        refunded_week=sum(refunded.values()),
        chart=bar_chart(days),
        attention=orders_needing_a_person(),
        reconcile_report=reconcile_report,
    )


@bp.post("/reconcile")
def reconcile_now():
    """The "Reconcile now" button: the reconcile command, run here."""
    lines: list[str] = []
    payments.reconcile_orders(report=lines.append)
    return dashboard(reconcile_report=lines)


# --- The order list and its CSV --------------------------------------------------


def filtered_orders():
    """The orders the list's ?status= and ?q= ask for, newest first."""
    query = select(Order).order_by(Order.id.desc())
    status = request.args.get("status", "")
    if status:
        if status not in {member.value for member in OrderStatus}:
            abort(400, f"There is no order status {status[:40]!r}.")
        query = query.where(Order.status == status)
    if q := request.args.get("q", "").strip()[:254].replace("\x00", ""):
        query = query.where(matching(q))
    return query


def matching(q: str):
    """What the search box finds: one condition, so one statement per page.

    References are read aloud, so their case is ignored; names and emails
    match in part, whatever the case; a phone number matches with its spaces
    and dashes left out, as people type it.
    """
    conditions = [
        func.lower(Order.purchase_order_id) == q.lower(),
        Order.pidx == q,
        Order.transaction_id == q,
        Order.customer_email.icontains(q, autoescape=True),
        Order.customer_name.icontains(q, autoescape=True),
    ]
    digits = re.sub(r"[\s-]", "", q)
    if digits.isdecimal():
        conditions.append(Order.customer_phone.contains(digits, autoescape=True))
    return or_(*conditions)


def page_of(query):
    """The ?page= asked for, 50 rows a page; past the end is a 404.

    A page number beyond any list is a 404 before the database sees it: its
    OFFSET would overflow the database's 64-bit integer (a 500 otherwise).
    """
    if request.args.get("page", 1, type=int) > MAX_PAGE:
        abort(404)
    return db.paginate(query, per_page=ORDERS_PER_PAGE, max_per_page=ORDERS_PER_PAGE)


@bp.get("/orders")
def orders():
    """Every order, 50 a page, with a status filter and a search box."""
    page = page_of(filtered_orders())
    return render_template(
        "admin/orders.html",
        page=page,
        statuses=list(OrderStatus),
        status=request.args.get("status", ""),
        q=request.args.get("q", ""),
    )


def spreadsheet_safe(value) -> str:
    """A cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


CSV_HEADER = [
    "reference",
    "placed_at",  # ISO 8601 in SHOP_TIMEZONE, with its offset
    "status",
    "customer_name",
    "email",
    "phone",
    "total_paisa",
    "total_rupees",
    "pidx",
    "transaction_id",
    "refunded_paisa",
]


def refunded_paisa():
    """What Khalti confirmed refunding through this shop, per order."""
    return (
        select(func.coalesce(func.sum(Refund.amount_paisa), 0))
        .where(Refund.order_id == Order.id, Refund.state == RefundState.SUCCEEDED)
        .scalar_subquery()
    )


@bp.get("/orders.csv")
def orders_csv():
    """The list's orders, every page of them, as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for order, refunded in db.session.execute(
        filtered_orders().add_columns(refunded_paisa())
    ):
        row = [
            order.purchase_order_id,
            i18n.iso_time(order.created_at),
            order.status,
            order.customer_name,
            order.customer_email,
            order.customer_phone,
            order.total_paisa,
            paisa_to_rupees(order.total_paisa),
            order.pidx,
            order.transaction_id,
            refunded,
        ]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=orders.csv"},
    )


# --- The refund list and its CSV ------------------------------------------------


def all_refunds():
    """Every refund, newest first, with its order in the same statement."""
    return (
        select(Refund)
        .join(Refund.order)
        .options(contains_eager(Refund.order))
        .order_by(Refund.id.desc())
    )


@bp.get("/refunds")
def refunds():
    """Every refund staff asked Khalti for, 50 a page, newest first."""
    return render_template("admin/refunds.html", page=page_of(all_refunds()))


REFUNDS_CSV_HEADER = [
    "asked_at_utc",
    "reference",
    "amount_paisa",
    "amount_rupees",
    "state",
    "staff",
    "reason",
]


@bp.get("/refunds.csv")
def refunds_csv():
    """Every refund, as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REFUNDS_CSV_HEADER)
    for refund in db.session.scalars(all_refunds()):
        row = [
            refund.created_at.isoformat(timespec="seconds"),
            refund.order.purchase_order_id,
            refund.amount_paisa,
            paisa_to_rupees(refund.amount_paisa),
            refund.state,
            refund.staff_email,
            refund.reason,
        ]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=refunds.csv"},
    )


# --- One order, and what staff can do with it ------------------------------------


class RefundForm(FlaskForm):
    token = HiddenField(validators=[InputRequired(), Length(max=64)])
    # Always typed: an empty amount is a mistake, never "everything". The
    # "Refund everything left" button sends the remainder as its amount.
    amount = StringField(
        "Amount in rupees",
        filters=[strip],
        validators=[
            InputRequired(message="Enter the amount to refund, like 12.50."),
            Regexp(r"[0-9]{1,7}(\.[0-9]{1,2})?\Z", message="Enter rupees like 12.50."),
        ],
    )
    reason = StringField("Reason", filters=[strip], validators=[Length(max=500)])


class AcceptForm(FlaskForm):
    note = TextAreaField(
        "Why the difference is fine",
        filters=[strip],
        validators=[DataRequired(), Length(max=500)],
    )


def latest_lookup(order: Order) -> dict | None:
    """Khalti's latest lookup answer for this order, as recorded."""
    event = db.session.scalar(
        select(PaymentEvent)
        .where(
            PaymentEvent.order_id == order.id, PaymentEvent.kind == "lookup_response"
        )
        .order_by(PaymentEvent.id.desc())
        .limit(1)
    )
    return event.payload if event else None


def completed_at_khalti(order: Order) -> bool:
    lookup = latest_lookup(order)
    return bool(lookup) and lookup.get("status") == "Completed"


def may_accept(order: Order) -> bool:
    """A person may accept a needs_review order that Khalti says is Completed."""
    return order.status == OrderStatus.NEEDS_REVIEW and completed_at_khalti(order)


def may_refund(order: Order) -> bool:
    """Paid orders, and needs_review ones Khalti says are Completed."""
    if not order.transaction_id:
        return False
    return order.status in REFUNDABLE_STATUSES or may_accept(order)


def paid_paisa(order: Order) -> int:
    """What Khalti took for this order: its lookup's total_amount.

    That is the order total for paid orders, and may differ from it for an
    order in review, whose money can still be sent back in full.
    """
    lookup = latest_lookup(order) or {}
    amount = lookup.get("total_amount")
    return amount if isinstance(amount, int) else order.total_paisa


def refundable_paisa(order: Order) -> int:
    """What may still be refunded: what was paid, less refunds that went out.

    Refunds in state unknown count as gone too, since the money may have
    moved: the shop never risks refunding the same paisa twice.
    """
    gone = db.session.scalar(
        select(func.coalesce(func.sum(Refund.amount_paisa), 0)).where(
            Refund.order_id == order.id,
            Refund.state.in_([RefundState.SUCCEEDED, RefundState.UNKNOWN]),
        )
    )
    return paid_paisa(order) - gone


def render_order(order: Order, status: int = 200, refund_form=None):
    """The order's page; `refund_form` is a refused one, shown as it was typed."""
    order_refunds = db.session.scalars(
        select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)
    ).all()
    return render_template(
        "admin/order.html",
        order=order,
        refunds=order_refunds,
        timeline=[(event, event.payload) for event in order.events],
        may_refund=may_refund(order),
        may_accept=may_accept(order),
        refundable_paisa=refundable_paisa(order),
        refund_form=refund_form
        or RefundForm(token=secrets.token_urlsafe(24), formdata=None),
        accept_form=AcceptForm(formdata=None),
    ), status


def load_order(purchase_order_id: str) -> Order:
    return order_where(
        Order.purchase_order_id,
        purchase_order_id,
        selectinload(Order.items),
        selectinload(Order.events),
    )


def refuse(order: Order, message: str, status: int = 400):
    """Answer a refused action with the order's page and why; nothing changed."""
    db.session.rollback()
    flash(message, "error")
    return render_order(load_order(order.purchase_order_id), status)


def refuse_amount(order: Order, form: RefundForm, message: str | None = None):
    """Give the refund form back as typed, the message next to the amount.

    Nothing was claimed (the rollback drops the Refund row), so the same
    token may be sent again once the amount is fixed.
    """
    db.session.rollback()
    if message:
        form.amount.errors = [message]
    return render_order(load_order(order.purchase_order_id), 400, form)


def show(order: Order):
    return redirect(
        url_for("admin.order_detail", purchase_order_id=order.purchase_order_id),
        code=303,
    )


@bp.get("/orders/<purchase_order_id>")
def order_detail(purchase_order_id):
    """Everything about one order, and the actions its status allows."""
    return render_order(load_order(purchase_order_id))


@bp.post("/orders/<purchase_order_id>/verify")
def check_at_khalti(purchase_order_id):
    """ "Check at Khalti": look the payment up, whatever the order's status."""
    order = load_order(purchase_order_id)
    if not order.pidx:
        return refuse(order, "This order never reached Khalti: nothing to look up.")
    order.record(("staff_check", {"staff": current_user.email}))
    try:
        payments.verify_payment(order)
    except khalti.KhaltiError as exc:
        flash(f"Khalti could not answer: {exc}. Nothing changed.", "error")
        return show(order)
    settle_unknown_refunds(order)
    flash(f"Khalti says the order is {order.status.replace('_', ' ')}.", "info")
    return show(order)


def settle_unknown_refunds(order: Order) -> None:
    """Decide refunds Khalti never clearly answered, from the lookup just made.

    Lookup gives a status, not refunded amounts: "Completed" means nothing
    was refunded, "Refunded" that everything was. "Partially Refunded"
    settles a lone unknown refund only when no other refund went out;
    otherwise it cannot tell which did, and a person checks Khalti's
    dashboard.
    """
    unknown = db.session.scalars(
        select(Refund).where(
            Refund.order_id == order.id, Refund.state == RefundState.UNKNOWN
        )
    ).all()
    if not unknown:
        return
    lookup = latest_lookup(order) or {}
    status = str(lookup.get("status", "")).casefold()
    outcome = None
    if status == "completed":
        outcome = RefundState.FAILED
    elif status == "refunded":
        outcome = RefundState.SUCCEEDED
    elif status == "partially refunded" and len(unknown) == 1:
        sent = db.session.scalar(
            select(func.count(Refund.id)).where(
                Refund.order_id == order.id, Refund.state == RefundState.SUCCEEDED
            )
        )
        outcome = RefundState.SUCCEEDED if sent == 0 else None
    if outcome is None:
        flash(
            "Khalti's lookup cannot tell whether the unclear refund went out:"
            " check Khalti's dashboard.",
            "error",
        )
        return
    for refund in unknown:
        if refund.move_to(outcome, {"lookup": lookup}):
            order.record(
                (
                    "refund_settled",
                    {"refund": refund.id, "state": outcome, "lookup_status": status},
                )
            )
    db.session.commit()


@bp.post("/orders/<purchase_order_id>/accept")
def accept_as_paid(purchase_order_id):
    """ "Accept as paid": a person decides a Completed payment is fine as it is."""
    order = load_order(purchase_order_id)
    form = AcceptForm()
    if not form.validate():
        return refuse(order, "A note is required: say why the payment is fine.")
    if not may_accept(order):
        return refuse(
            order,
            "Only an order in review that Khalti says is Completed can be accepted.",
            409,
        )
    order.record(
        ("staff_accept", {"staff": current_user.email, "note": form.note.data})
    )
    if not order.move_to(OrderStatus.PAID):
        return refuse(order, "The order changed meanwhile; nothing was done.", 409)
    db.session.commit()
    flash("Accepted as paid.", "success")
    return show(order)


@bp.post("/orders/<purchase_order_id>/refund")
def refund(purchase_order_id):
    """ "Refund": send money back through Khalti, then look the payment up."""
    order = load_order(purchase_order_id)
    form = RefundForm()
    if not form.validate():
        if form.amount.errors:
            return refuse_amount(order, form)
        return refuse(order, first_error(form))
    amount = rupees_to_paisa(form.amount.data)
    staff_email = current_user.email
    claim = Refund(
        order_id=order.id,
        token=form.token.data,
        amount_paisa=amount,
        staff_email=staff_email,
        reason=form.reason.data or "",
    )
    db.session.add(claim)
    try:
        # The INSERT claims the form's token and the order's one in-flight
        # slot (both unique): of ten identical submissions, one gets past.
        db.session.flush()
    except IntegrityError:
        return refund_not_claimed(order, form.token.data)
    # With the slot held, no other refund of this order can change what is
    # left to refund until this transaction ends: check it now.
    if not may_refund(order):
        return refuse(order, "This order cannot be refunded in its current state.")
    left = refundable_paisa(order)
    if not 0 < amount <= left:
        message = f"Refund between Rs 0.01 and {format_npr(left)}; nothing was sent."
        return refuse_amount(order, form, message)
    order.record(
        (
            "refund_request",
            {"staff": staff_email, "amount_paisa": amount, "reason": claim.reason},
        )
    )
    everything = amount == paid_paisa(order)
    transaction_id = order.transaction_id
    # Committed before Khalti is called: whatever happens next, the refund
    # is on record, and no transaction stays open during the call.
    db.session.commit()
    return send_refund(order, claim, transaction_id, None if everything else amount)


def refund_not_claimed(order: Order, token: str):
    """The INSERT lost: this form was sent before, or another refund is running."""
    db.session.rollback()
    if db.session.scalar(select(Refund.id).where(Refund.token == token)):
        # The same form again (a double click, a reload): show how it went.
        flash("This refund was already submitted; here is how it went.", "info")
        return show(order)
    return refuse(
        order,
        "Another refund of this order is in progress. Wait for it, then try again.",
        409,
    )


def send_refund(order: Order, claim: Refund, transaction_id: str, amount: int | None):
    """Ask Khalti to refund, record its answer, then let a lookup decide."""
    try:
        answer = payments.get_khalti().refund(transaction_id, amount)
    except khalti.KhaltiError as exc:
        return refund_not_confirmed(order, claim, exc)
    claim.move_to(RefundState.SUCCEEDED, answer.raw)
    order.record(("refund_response", answer.raw))
    db.session.commit()
    # Khalti's "Transaction refund successful." is not the order's new
    # status: its lookup, as for payments, is the only word that counts.
    try:
        payments.verify_payment(order)
    except khalti.KhaltiError:
        flash(
            "Khalti accepted the refund, but its lookup did not answer yet."
            " Press “Check at Khalti” in a moment.",
            "error",
        )
        return show(order)
    status = order.status.replace("_", " ")
    flash(f"Khalti accepted the refund. The order is now {status}.", "success")
    return show(order)


def refund_not_confirmed(order: Order, claim: Refund, exc: khalti.KhaltiError):
    """Khalti refused (4xx: failed), or gave no clear answer (unknown).

    A timeout or a 5xx does not say whether the money moved, so the refund
    is `unknown`, not failed, and "Check at Khalti" settles it. Either way
    the order keeps its status: only a lookup changes that.
    """
    refused = isinstance(exc, khalti.KhaltiAPIError) and 400 <= exc.status_code < 500
    state = RefundState.FAILED if refused else RefundState.UNKNOWN
    answer = {"error": str(exc), "body": getattr(exc, "body", None)}
    claim.move_to(state, answer)
    order.record(("refund_error", {"state": state, **answer}))
    db.session.commit()
    if refused:
        flash(f"Khalti refused the refund: {exc}", "error")
    else:
        flash(
            f"Khalti gave no clear answer ({exc}). The money may have moved:"
            " press “Check at Khalti” to find out.",
            "error",
        )
    return show(order)


@bp.app_template_filter("pretty_json")
def pretty_json(text: str | None) -> str:
    return json.dumps(json.loads(text), indent=2) if text else ""
