"""Khalti Demo Shop: a Flask storefront that takes payments through Khalti.

This module builds the app (`create_app`) and then follows a buyer's journey,
top to bottom: the catalog, the cart, the checkout that starts a Khalti
payment, the return from Khalti where the payment is verified, the order
pages, and the error pages. The payment checks themselves are in payments.py,
which the back office (admin.py) calls too. docs/architecture.md maps the
modules.
"""

import logging
import time
from datetime import timedelta
from functools import partial

from dotenv import load_dotenv
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import selectinload
from werkzeug.middleware.proxy_fix import ProxyFix

import admin
import cards
import commands
import config
import database
import errors
import i18n
import khalti
import payments
from cart import (
    MINIMUM_PAISA,
    cart_lines,
    cart_problem,
    quantity_problem,
    save_cart,
    session_cart,
)
from database import db
from forms import (
    CartLineForm,
    CheckoutForm,
    OneTimeForm,
    ProductForm,
    first_error,
    group_phone,
    safe_next,
)
from models import (
    OPEN_STATUSES,
    RELEASES_STOCK,
    CartLine,
    Order,
    OrderStatus,
    Product,
    Refund,
    RefundState,
    cart_total_paisa,
    now_utc,
    order_where,
)
from money import format_npr, paisa_to_rupees
from throttle import buyer_actions, limiter

bp = Blueprint("shop", __name__)
csrf = CSRFProtect()

# Product pictures get a new random name whenever they change, so a
# browser may keep one for as long as it likes.
PICTURE_MAX_AGE_S = 365 * 24 * 3600


def create_app(test_config: dict | None = None) -> Flask:
    """Build the shop: settings, extensions, the shop and the back office."""
    load_dotenv()
    app = Flask(__name__)
    app.config.from_mapping(config.from_environment())
    app.config.update(test_config or {})
    config.finish(app)
    if proxies := app.config["FORWARDED_ALLOW"]:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    # Each payment step is logged at INFO (see Order.record); Python's
    # default level, WARNING, would hide them.
    app.logger.setLevel(logging.INFO)
    database.init_app(app)
    payments.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    app.add_template_filter(format_npr, "npr")
    app.add_template_filter(paisa_to_rupees, "rupees")
    app.add_template_filter(group_phone, "phone")
    cards.init_app(app)
    errors.init_app(app)
    app.register_blueprint(bp)
    admin.init_app(app)
    commands.init_app(app)
    return app


@bp.before_app_request
def refuse_files():
    """No form takes a file, but the back office's product form its picture.

    Flask-WTF gives a form's fields the request's file parts too, so a field
    sent as a file would reach the code as a file object, not text, and fail
    there (a 500). Refused here at once, for every form; the product form
    (products.py) refuses a file anywhere but in its picture field itself.
    """
    if request.files and request.blueprint != "admin.products":
        abort(400, _("This form takes no files."))


@bp.after_app_request
def security_headers(response):
    """Headers every page carries, error pages included."""
    response.headers["Content-Security-Policy"] = current_app.config[
        "CONTENT_SECURITY_POLICY"
    ]
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"  # browsers without CSP
    # Order pages' URLs are their only key: never hand them to other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.app_context_processor
def layout_context() -> dict:
    return {
        "cart_count": sum(session_cart().values()),
        "is_sandbox": not config.is_production(current_app.config),
        "has_orders": bool(session.get("orders")),
        "language": str(get_locale()),
        "max_units": current_app.config["MAX_UNITS_PER_PRODUCT"],
    }


# --- The cart: product ids and quantities in the signed session cookie ------


def refuse(message: str, page, status: int = 400):
    """Answer bad input with a message on `page`, changing nothing."""
    flash(message, "error")
    return page(), status


# --- Catalog and cart --------------------------------------------------------


@bp.get("/")
def catalog():
    """List every product on sale."""
    return render_template("catalog.html", product_cards=cards.product_cards())


@bp.get("/pictures/<name>")
def picture(name: str):
    """A picture uploaded in the back office (nginx serves them when deployed)."""
    return send_from_directory(
        current_app.config["PICTURE_FOLDER"], name, max_age=PICTURE_MAX_AGE_S
    )


def render_cart():
    lines = cart_lines()
    return render_template(
        "cart.html",
        lines=lines,
        total_paisa=cart_total_paisa(lines),
        minimum_paisa=MINIMUM_PAISA,
    )


@bp.post("/cart/add")
def add_to_cart():
    """Add some of a product to the cart."""
    form = CartLineForm()
    if not form.validate():
        return refuse(first_error(form), catalog)
    product = db.get_or_404(Product, form.product_id.data)
    cart = session_cart()
    in_cart = cart.get(str(product.id), 0)
    quantity = in_cart + form.quantity.data
    if problem := quantity_problem(product, quantity, in_cart):
        return refuse(problem, catalog)
    save_cart(cart | {str(product.id): quantity})
    flash(
        _(
            "Added %(quantity)s × %(name)s to your cart.",
            quantity=i18n.digits(form.quantity.data),
            name=product.name,
        ),
        "success",
    )
    return redirect(url_for("shop.cart"), code=303)


@bp.get("/cart")
def cart():
    """Show the cart with prices from the database."""
    return render_cart()


@bp.post("/cart/update")
def update_cart_line():
    """Change the quantity of one cart line."""
    form = CartLineForm()
    if not form.validate():
        return refuse(first_error(form), render_cart)
    cart = session_cart()
    if str(form.product_id.data) not in cart:
        return refuse(_("That product is not in your cart."), render_cart, 404)
    product = db.get_or_404(Product, form.product_id.data)
    if problem := quantity_problem(product, form.quantity.data):
        return refuse(problem, render_cart)
    save_cart(cart | {str(product.id): form.quantity.data})
    flash(
        _(
            "Your cart now holds %(quantity)s × %(name)s.",
            quantity=i18n.digits(form.quantity.data),
            name=product.name,
        ),
        "success",
    )
    return redirect(url_for("shop.cart"), code=303)


@bp.post("/cart/remove")
def remove_cart_line():
    """Take one line out of the cart."""
    form = ProductForm()
    cart = session_cart()
    if not form.validate() or str(form.product_id.data) not in cart:
        return refuse(_("That product is not in your cart."), render_cart, 404)
    save_cart(
        {pid: qty for pid, qty in cart.items() if pid != str(form.product_id.data)}
    )
    # The cart may name a product the shop has since deleted.
    product = db.session.get(Product, form.product_id.data)
    name = product.name if product else _("That product")
    flash(_("Removed %(name)s from your cart.", name=name), "success")
    return redirect(url_for("shop.cart"), code=303)


# --- Checkout: create the order, then ask Khalti for a payment link ---------


@bp.route("/checkout", methods=["GET", "POST"])
@buyer_actions
def checkout():
    """Ask for the buyer's details, then place the order and pay."""
    form = CheckoutForm()
    # Validated before the first SQL statement: on SQLite that statement
    # takes the database's one write lock, which other buyers queue for.
    details_ok = form.validate_on_submit()
    lines = cart_lines()
    if problem := cart_problem(lines):
        if request.method == "GET":
            flash(problem, "error")
            return redirect(url_for("shop.cart"), code=303)
        # A form sent again after its order emptied the cart (paid) or took
        # the last of the stock: answer as the first submission was answered.
        if placed_with(form):
            return repeated_checkout(form.checkout_token.data)
        return refuse(problem, render_cart)
    if not details_ok:
        return render_checkout(form, lines, 400 if form.is_submitted() else 200)
    if shown := price_change(form, lines):
        flash(
            _(
                "A price changed while you were checking out: the total is now"
                " %(now)s, not %(shown)s. Check it, then pay again.",
                now=format_npr(cart_total_paisa(lines)),
                shown=format_npr(shown),
            ),
            "error",
        )
        return render_checkout(form, lines, 409)
    details = {"name": form.name.data, "email": form.email.data}
    return place_order(form, lines, details | {"phone": form.phone.data}, render_cart)


def place_order(
    form: OneTimeForm,
    lines: list[CartLine],
    details: dict,
    page,
    retry_of: Order | None = None,
):
    """Save the order, take its stock, then send the buyer to pay at Khalti.

    `details` are the buyer's name, email and phone; `page` shows a refusal;
    `retry_of` is the order that "Pay again" pays again for.
    """
    # A repeat of a form that was placed goes on to find its order below.
    if too_many_unpaid_orders() and not placed_with(form):
        return refuse(unpaid_orders_message(), page, 409)
    token = form.checkout_token.data
    order = Order.from_cart(lines, checkout_token=token, **details)
    order.retry_of = retry_of
    db.session.add(order)
    try:
        # Insert the order before anything else: a repeat of this form stops
        # here, on the unique checkout token, and takes no stock.
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return repeated_checkout(token)
    if short := order.reserve_stock():
        db.session.rollback()
        # Read again: hidden or sold out since the cart was checked above?
        db.session.refresh(short)
        problem = quantity_problem(short, order.quantities()[short.id])
        sold_out = _("Sorry, %(name)s just sold out.", name=short.name)
        return refuse(problem or sold_out, page, 409)
    # The order is flushed: it has its id and its reference.
    payload = payments.initiate_payload(
        order,
        return_url=shop_url_for("shop.payment_return"),
        website_url=shop_url_for("shop.catalog"),
    )
    created = {"total_paisa": order.total_paisa}
    if retry_of:
        created["pays_again_for"] = retry_of.purchase_order_id
    order.record(("order_created", created), ("initiate_request", payload))
    # One commit saves the order, its items, its stock and the request we are
    # about to send, all before Khalti is called. No transaction stays open
    # while Khalti thinks: a slow gateway must not hold row locks (PostgreSQL)
    # or SQLite's write lock from other buyers.
    db.session.commit()
    remember_order(order.purchase_order_id)
    return start_payment(order, payload)


def render_checkout(form: CheckoutForm, lines: list[CartLine], status: int):
    """The checkout page, carrying the total it shows for the buyer to pay."""
    total = cart_total_paisa(lines)
    form.total_paisa.data = str(total)
    return render_template(
        "checkout.html", form=form, lines=lines, total_paisa=total
    ), status


def price_change(form: CheckoutForm, lines: list[CartLine]) -> int | None:
    """The total the form showed, if the cart's total is no longer that."""
    if not form.total_paisa.data:
        return None
    shown = int(form.total_paisa.data)
    return shown if shown != cart_total_paisa(lines) else None


# Orders that hold their items' stock while the buyer has not paid yet.
UNPAID_STATUSES = (OrderStatus.CREATED, OrderStatus.AWAITING_PAYMENT)


def too_many_unpaid_orders() -> bool:
    """Whether this browser already holds MAX_UNPAID_ORDERS unpaid orders."""
    limit = current_app.config["MAX_UNPAID_ORDERS"]
    references = session.get("orders", [])
    # A browser that placed fewer orders than that costs no query.
    if len(references) < limit:
        return False
    unpaid = db.session.scalar(
        select(func.count(Order.id)).where(
            Order.purchase_order_id.in_(references),
            Order.status.in_(UNPAID_STATUSES),
        )
    )
    return unpaid >= limit


def unpaid_orders_message() -> str:
    return _(
        "You already have %(count)s orders waiting for payment. Pay for one of"
        " them, or cancel it on Khalti's payment page, before placing another.",
        count=i18n.digits(current_app.config["MAX_UNPAID_ORDERS"]),
    )


def placed_with(form: OneTimeForm) -> bool:
    """Whether an order was already placed with this form's (valid) token."""
    token = form.checkout_token
    return (
        token.validate(form)
        and db.session.scalar(
            select(Order.id).where(Order.checkout_token == token.data)
        )
        is not None
    )


def repeated_checkout(token: str):
    """Answer a checkout form submitted again as its first submission was.

    The first one may still be waiting for Khalti's payment link (its order
    is `created`): wait for it, at most as long as the Khalti client itself
    may wait, rather than start a second payment. Then send this request
    where the first one went: to Khalti's payment page, or to the order page
    once the payment has got further (or failed to start).
    """
    deadline = time.monotonic() + sum(current_app.config["KHALTI_TIMEOUT"])
    while True:
        # Plain columns, not the Order object: nothing cached between reads.
        order = db.session.execute(
            select(Order.purchase_order_id, Order.status, Order.payment_url).where(
                Order.checkout_token == token
            )
        ).one()
        # End the transaction, so that the next read sees the first request's
        # commit (and no lock is held while this one waits).
        db.session.rollback()
        if order.status != OrderStatus.CREATED or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # The token came from the form this browser was shown: it placed the order.
    remember_order(order.purchase_order_id)
    if order.status == OrderStatus.AWAITING_PAYMENT:
        return redirect(order.payment_url, code=303)
    return show_order(order)


def remember_order(purchase_order_id: str) -> None:
    """Note in the buyer's session that they placed this order.

    Only that browser may see the buyer's name, email and phone on the order
    page; anyone else with the link sees just the items and status.
    """
    orders = session.get("orders", [])
    if purchase_order_id not in orders:
        session["orders"] = [*orders[-19:], purchase_order_id]


def placed_here(order: Order) -> bool:
    return order.purchase_order_id in session.get("orders", [])


def shop_url_for(endpoint: str) -> str:
    """An absolute URL of this shop, for Khalti to send the buyer to.

    On SHOP_URL when it is set. Otherwise (development) on the address the
    request came to, which only a trusted proxy (FORWARDED_ALLOW) may change.
    """
    if shop_url := current_app.config["SHOP_URL"]:
        return shop_url + url_for(endpoint)
    return url_for(endpoint, _external=True)


def start_payment(order: Order, payload: dict):
    """Ask Khalti for a payment link and send the buyer there."""
    try:
        started = payments.start_payment(order, payload)
    except khalti.KhaltiError as exc:
        return payment_not_started(exc)
    if not started:
        abort(
            502, _("Khalti took too long to start your payment. Nothing was charged.")
        )
    return redirect(order.payment_url, code=303)


def payment_not_started(exc: khalti.KhaltiError):
    """Khalti refused or could not be reached (the order is failed by now)."""
    if isinstance(exc, khalti.KhaltiUnavailable):
        message = _(
            "Khalti is not answering, nothing was charged. Try again in a minute."
        )
        page = render_template(
            "error.html", code=503, title=_("Payment not started"), message=message
        )
        return page, 503, {"Retry-After": "60"}
    if isinstance(exc, khalti.KhaltiAPIError) and exc.status_code == 400:
        # Khalti's reason stays in Khalti's words.
        status = 400
        message = _("Khalti could not accept this payment: %(reason)s", reason=exc)
    else:
        status = 502
        message = _(
            "We could not reach Khalti to start your payment. Nothing was charged."
        )
    return render_template(
        "error.html", code=status, title=_("Payment not started"), message=message
    ), status


# --- Coming back from Khalti: verify, never trust --------------------------


def order_by_pidx(pidx: str) -> Order:
    return order_where(Order.pidx, pidx)


def order_by_reference(purchase_order_id: str) -> Order:
    return order_where(Order.purchase_order_id, purchase_order_id)


# The parameters Khalti documents for its return_url; only these are kept.
CALLBACK_PARAMETERS = (
    "pidx",
    "status",
    "transaction_id",
    "tidx",
    "txnId",
    "amount",
    "total_amount",
    "mobile",
    "purchase_order_id",
    "purchase_order_name",
)
# Khalti's values are short; anything longer is not Khalti's.
CALLBACK_VALUE_LENGTH = 100

# A return within this long of a lookup shows the order as it stands, with
# "Check again", instead of asking Khalti once more: the return URL is a GET
# anyone can repeat, and each repeat would cost a lookup and a timeline row.
RECENT_LOOKUP = timedelta(seconds=10)


def khalti_callback() -> dict:
    """The documented parameters of this return, cut to a sane length."""
    return {
        name: request.args[name][:CALLBACK_VALUE_LENGTH]
        for name in CALLBACK_PARAMETERS
        if name in request.args
    }


@bp.get("/successfull-payment")
def payment_return():
    """Khalti sends the buyer back here. Only pidx is used, as a lookup key."""
    pidx = request.args.get("pidx", "")
    if not pidx:
        abort(400, _("The link from Khalti is missing the payment id (pidx)."))
    order = order_by_pidx(pidx)
    # A reload or the back button after the payment settled: nothing to do.
    if order.status not in OPEN_STATUSES:
        return show_order(order)
    looked_up_at, last_callback = order.last_lookup_and_callback()
    if looked_up_at and now_utc() - looked_up_at < RECENT_LOOKUP:
        return show_order(order)
    # Kept for the learners' timeline; none of it is believed. The same
    # parameters again (a reload) are on the timeline already.
    callback = khalti_callback()
    return settle_and_show(
        order, callback=None if callback == last_callback else callback
    )


@bp.post("/orders/<purchase_order_id>/verify")
@buyer_actions
def check_again(purchase_order_id):
    """The "Check again" button: ask Khalti once more."""
    order = order_by_reference(purchase_order_id)
    if order.status not in OPEN_STATUSES:
        return show_order(order)
    return settle_and_show(order)


def settle_and_show(order: Order, callback: dict | None = None):
    try:
        changed = payments.verify_payment(order, callback)
    except khalti.KhaltiError:
        return render_template("confirming.html", order=order), 502
    if changed and order.status == OrderStatus.PAID and placed_here(order):
        save_cart({})
    flash_outcome(order)
    return show_order(order)


def show_order(order: Order):
    """Send the buyer on to the order's page (303, so a reload is harmless)."""
    return redirect(
        url_for("shop.order_detail", purchase_order_id=order.purchase_order_id),
        code=303,
    )


OUTCOME_MESSAGES = {
    OrderStatus.PAID: (_l("Payment received. Thank you!"), "success"),
    OrderStatus.CANCELED: (
        _l("You canceled the payment. Your cart is still here."),
        "info",
    ),
    OrderStatus.EXPIRED: (
        _l("The payment link expired. Your cart is still here."),
        "info",
    ),
    OrderStatus.FAILED: (
        _l("Khalti says the payment failed. Nothing was charged."),
        "error",
    ),
    OrderStatus.PENDING: (_l("Khalti is still processing your payment."), "info"),
    OrderStatus.NEEDS_REVIEW: (
        _l("We need to check this payment by hand before we ship."),
        "error",
    ),
}


def flash_outcome(order: Order) -> None:
    if outcome := OUTCOME_MESSAGES.get(order.status):
        message, category = outcome
        # The session stores text: the lazy message is read in today's language.
        flash(str(message), category)


# --- The order page ----------------------------------------------------------


@bp.get("/orders/<purchase_order_id>")
def order_detail(purchase_order_id):
    """The receipt, with the payment's timeline."""
    order = order_where(
        Order.purchase_order_id,
        purchase_order_id,
        # One query for all the items and one for all the events, however many.
        selectinload(Order.items),
        selectinload(Order.events),
    )
    show_customer = placed_here(order)
    return render_template(
        "order.html",
        order=order,
        show_customer=show_customer,
        timeline=list(timeline(order, show_customer)),
        refunds=confirmed_refunds(order),
        # Only the browser that placed an unpaid order may pay for it again.
        pay_again_form=OneTimeForm() if may_pay_again(order) else None,
    )


def confirmed_refunds(order: Order) -> list[Refund]:
    """The refunds Khalti confirmed for this order, oldest first.

    Asked only for a refunded order, so other receipts cost no query.
    """
    if order.status not in (OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED):
        return []
    return list(
        db.session.scalars(
            select(Refund)
            .where(Refund.order_id == order.id, Refund.state == RefundState.SUCCEEDED)
            .order_by(Refund.id)
        )
    )


def may_pay_again(order: Order) -> bool:
    return order.status in RELEASES_STOCK and placed_here(order)


@bp.post("/orders/<purchase_order_id>/pay-again")
@buyer_actions
def pay_again(purchase_order_id):
    """The "Pay again" button: a new order, same items at today's prices.

    The old order stays as it was; the new one links to it. The buyer's
    details come from the old order, and the rest is the checkout's.
    """
    old = order_where(
        Order.purchase_order_id, purchase_order_id, selectinload(Order.items)
    )
    # Refusals show the old order's page, with the reason.
    page = partial(order_detail, purchase_order_id)
    form = OneTimeForm()
    if not form.validate():
        return refuse(first_error(form), page)
    if not may_pay_again(old):
        # A form sent again once its new order was placed: that order decides.
        if placed_with(form):
            return repeated_checkout(form.checkout_token.data)
        abort(403, _("Only the browser that placed an unpaid order can pay again."))
    lines = order_lines(old)
    if problem := cart_problem(lines):
        if placed_with(form):
            return repeated_checkout(form.checkout_token.data)
        return refuse(problem, page)
    details = {"name": old.customer_name, "email": old.customer_email}
    details["phone"] = old.customer_phone
    return place_order(form, lines, details, page, retry_of=old)


def order_lines(order: Order) -> list[CartLine]:
    """The order's items as cart lines: the products as they are today."""
    quantities = order.quantities()
    products = db.session.scalars(
        select(Product).where(Product.id.in_(quantities)).order_by(Product.id)
    )
    return [CartLine(product, quantities[product.id]) for product in products]


def timeline(order: Order, show_customer: bool):
    """The order's events and their data, the buyer's details hidden from others."""
    for event in order.events:
        payload = event.payload
        if "customer_info" in payload and not show_customer:
            payload |= {"customer_info": _("(only the buyer's browser sees this)")}
        # Staff actions are part of the lesson; who did them is not public.
        if "staff" in payload:
            payload |= {"staff": _("(shop staff)")}
        yield event, payload


# --- Orders placed from this browser, and the health check -----------------


@bp.get("/orders")
def my_orders():
    """The orders placed from this browser, newest first."""
    references = session.get("orders", [])
    orders = db.session.scalars(
        select(Order)
        .where(Order.purchase_order_id.in_(references))
        .order_by(Order.id.desc())
    )
    return render_template("orders.html", orders=orders)


@bp.get("/language/<code>")
def choose_language(code):
    """The header's language switch: a plain link, so it works without JavaScript.

    The choice is kept in the session; `next` brings the buyer back to the
    page they were reading (a path on this site only).
    """
    if code not in i18n.LANGUAGES:
        abort(404)
    session["language"] = code
    return redirect(
        safe_next(request.args.get("next"), url_for("shop.catalog")), code=303
    )


@bp.get("/healthz")
def healthz():
    """For the proxy or load balancer: can this server reach its database?

    No session, no login, one SELECT 1. The reason a check failed goes to the
    log only: this page is public, and a database error names its host. It
    also tells whether this process is sparing buyers the wait for a Khalti
    that stopped answering ("khalti": "open"), which does not make the
    server unhealthy: the catalog and the receipts still work.
    """
    khalti_circuit = current_app.extensions["khalti_breaker"].state
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        current_app.logger.warning("Health check failed: %s", exc)
        answer = {"database": "unreachable", "reason": type(exc).__name__}
        return answer | {"khalti": khalti_circuit}, 503
    return {"database": "ok", "khalti": khalti_circuit}
