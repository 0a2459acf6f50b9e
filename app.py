"""Khalti Demo Shop: a Flask storefront that takes payments through Khalti.

Read it top to bottom in the order of a buyer's journey: the catalog, the
cart, the checkout that starts a Khalti payment, the return from Khalti where
the payment is verified, and the order page. The payment checks are in
`start_payment`, `verify_payment` and `status_after_lookup`.
"""

import logging
import os
import secrets
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import click
from dotenv import load_dotenv
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from markupsafe import Markup
from sqlalchemy import and_, make_url, or_, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from wtforms import EmailField, HiddenField, IntegerField, StringField, TelField
from wtforms.validators import Email, InputRequired, Length, NumberRange, Regexp

import khalti
from models import (
    OPEN_STATUSES,
    REFUNDABLE_STATUSES,
    CartLine,
    Order,
    OrderStatus,
    Product,
    allow_concurrent_sqlite,
    cart_total_paisa,
    db,
    now_utc,
    seed_catalog,
)

bp = Blueprint("shop", __name__, cli_group=None)
csrf = CSRFProtect()

# Khalti refuses web checkout payments under Rs 10.
MINIMUM_PAISA = 1000

# With no KHALTI_SECRET_KEY the shop talks to sandbox.py, started by `make run`.
BUILTIN_SANDBOX_URL = "http://127.0.0.1:5001/api/v2/"
BUILTIN_SANDBOX_KEY = "built-in-sandbox"

PLACEHOLDER_SECRET_KEYS = {None, "", "change-me"}

# Database ids are 32-bit; a larger number cannot name a product.
MAX_ID = 2**31 - 1

# Where each Khalti API sends buyers to pay; sandbox.py serves both itself.
PAYMENT_PORTALS = {
    khalti.PRODUCTION_BASE_URL: "https://pay.khalti.com",
    khalti.SANDBOX_BASE_URL: "https://test-pay.khalti.com",
}


def create_app(test_config: dict | None = None) -> Flask:
    """Build the shop: configuration, extensions, routes."""
    load_dotenv()
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY"),
        # A relative SQLite path ends up in the instance/ folder.
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL", "sqlite:///shop.db"),
        KHALTI_SECRET_KEY=os.environ.get("KHALTI_SECRET_KEY") or None,
        KHALTI_BASE_URL=os.environ.get("KHALTI_BASE_URL") or None,
        KHALTI_TIMEOUT=khalti.DEFAULT_TIMEOUT,
        # The address buyers open, e.g. https://shop.example. When set, the
        # return_url and website_url sent to Khalti are built on it, never on
        # the request's Host header, which the client chooses.
        SHOP_URL=os.environ.get("SHOP_URL") or None,
        # How many proxies (nginx) in front of the shop to believe about the
        # client's address, scheme and host (X-Forwarded-For/Proto/Host).
        FORWARDED_ALLOW=int(os.environ.get("FORWARDED_ALLOW") or 0),
        SESSION_COOKIE_SAMESITE="Lax",
        # Set SESSION_COOKIE_SECURE=1 when the shop is served over HTTPS, so
        # the browser never sends the session cookie over plain HTTP.
        SESSION_COOKIE_SECURE=os.environ.get("SESSION_COOKIE_SECURE") == "1",
        # Where the back office counts failed logins. In memory, each process
        # counts alone: with several workers use a shared store (redis://...).
        RATELIMIT_STORAGE_URI=os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
    )
    app.config.update(test_config or {})
    check_secret_key(app)
    app.config["KHALTI_BASE_URL"] = khalti_base_url(app.config)
    if app.config["SHOP_URL"]:
        app.config["SHOP_URL"] = app.config["SHOP_URL"].rstrip("/")
    app.config["CONTENT_SECURITY_POLICY"] = content_security_policy(
        app.config["KHALTI_BASE_URL"]
    )
    if proxies := app.config["FORWARDED_ALLOW"]:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    # Each payment step is logged at INFO (see Order.record); Python's
    # default level, WARNING, would hide them.
    app.logger.setLevel(logging.INFO)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            allow_concurrent_sqlite(db.engine, may_write)
    csrf.init_app(app)
    app.register_blueprint(bp)
    # The back office calls this module's payment checks, so it is imported
    # here, once they exist, rather than at the top.
    import admin

    admin.init_app(app)
    app.extensions["khalti_clients"] = threading.local()
    app.extensions["product_cards"] = {}  # see product_cards()
    return app


def check_secret_key(app: Flask) -> None:
    """Refuse to run a real shop with a missing or example SECRET_KEY.

    It signs the session cookie, which holds the cart and proves who placed
    an order. Only local development and tests may fall back to a fixed one.
    """
    if app.config["SECRET_KEY"] not in PLACEHOLDER_SECRET_KEYS:
        return
    if app.debug or app.testing:
        app.config["SECRET_KEY"] = "dev"
        return
    raise RuntimeError(
        "SECRET_KEY is not set. Copy .env.example to .env and set it to the"
        " output of: python -c 'import secrets; print(secrets.token_hex())'"
    )


def khalti_base_url(config) -> str:
    """KHALTI_BASE_URL spelled one way: lower-case host, ending in a slash.

    People type it with or without the slash. The CSP and the sandbox banner
    compare it with Khalti's known hosts, so it is normalised here, once,
    and only this value is used. Empty means a sandbox.
    """
    url = config["KHALTI_BASE_URL"] or (
        khalti.SANDBOX_BASE_URL if config["KHALTI_SECRET_KEY"] else BUILTIN_SANDBOX_URL
    )
    parts = urlsplit(url.strip())
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def is_production(config) -> bool:
    """Whether real money moves: the shop talks to Khalti's production API."""
    return config["KHALTI_BASE_URL"] == khalti.PRODUCTION_BASE_URL


def may_write() -> bool:
    """Whether the transaction about to start may write to the database.

    Forms and commands may write. Pages fetched with GET only read, except
    the return from Khalti once its lookup has been answered (verify_payment
    says so in `g`): the transaction before the lookup only reads the order,
    so it does not queue for SQLite's write lock behind other buyers.
    """
    if not has_request_context():
        return True
    return request.method != "GET" or g.get("writes_after_lookup", False)


def content_security_policy(khalti_base_url: str) -> str:
    """No inline script or style, no framing, forms only to us and Khalti.

    form-action names Khalti's payment portal because checkout POSTs here
    and we answer with a redirect there: browsers apply form-action to the
    redirects that follow a form submission too.
    """
    api = urlsplit(khalti_base_url)
    portal = PAYMENT_PORTALS.get(khalti_base_url, f"{api.scheme}://{api.netloc}")
    return (
        "default-src 'self'; img-src 'self' data:; object-src 'none';"
        f" base-uri 'none'; frame-ancestors 'none'; form-action 'self' {portal}"
    )


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


def get_khalti() -> khalti.KhaltiClient:
    """This worker thread's Khalti client, made on first use.

    The client lives as long as the thread, so its connection to Khalti stays
    open from one request to the next instead of paying for a new TCP and TLS
    handshake on every payment. It is one per thread, not one for the whole
    app, because requests.Session is not documented as thread-safe.
    """
    clients = current_app.extensions["khalti_clients"]
    if not hasattr(clients, "client"):
        config = current_app.config
        clients.client = khalti.KhaltiClient(
            config["KHALTI_SECRET_KEY"] or BUILTIN_SANDBOX_KEY,
            config["KHALTI_BASE_URL"],
            timeout=config["KHALTI_TIMEOUT"],
        )
    return clients.client


@bp.app_template_filter("npr")
def format_npr(paisa: int) -> str:
    """123456 paisa -> "Rs 1,234.56". The only place paisa become rupees."""
    return f"Rs {paisa // 100:,}.{paisa % 100:02d}"


@bp.app_context_processor
def layout_context() -> dict:
    return {
        "cart_count": sum(session_cart().values()),
        "is_sandbox": not is_production(current_app.config),
        "has_orders": bool(session.get("orders")),
    }


# --- The cart: product ids and quantities in the signed session cookie ------


def session_cart() -> dict[str, int]:
    return session.get("cart", {})


def save_cart(cart: dict[str, int]) -> None:
    session["cart"] = cart


def cart_lines() -> list[CartLine]:
    """The cart with each product read from the database, prices included."""
    cart = session_cart()
    products = db.session.scalars(
        select(Product)
        .where(Product.id.in_([int(pid) for pid in cart]))
        .order_by(Product.id)
    )
    return [CartLine(product, cart[str(product.id)]) for product in products]


class ProductForm(FlaskForm):
    """Names one product; used as is to remove a cart line."""

    product_id = IntegerField(
        validators=[InputRequired(), NumberRange(min=1, max=MAX_ID)]
    )


class CartLineForm(ProductForm):
    quantity = IntegerField(validators=[InputRequired(), NumberRange(min=1)])


RELOAD_CHECKOUT = "This form is out of date. Reload the checkout page and try again."


def strip(value: str | None) -> str | None:
    return value.strip() if value else value


class CheckoutForm(FlaskForm):
    # A fresh random token each time the form is shown. Submitting the same
    # form again (a double click, a reload, the back button) carries the same
    # token, which the orders table allows only once: see checkout().
    checkout_token = HiddenField(
        "Checkout form",
        default=lambda: secrets.token_urlsafe(16),
        validators=[
            InputRequired(message=RELOAD_CHECKOUT),
            Regexp(r"[A-Za-z0-9_-]{22}\Z", message=RELOAD_CHECKOUT),
        ],
    )
    name = StringField(
        "Full name",
        filters=[strip],
        validators=[
            InputRequired(),
            Length(max=100),
            # Control characters have no place in a name, and PostgreSQL
            # refuses to store a NUL.
            Regexp(r"[^\x00-\x1f\x7f]*\Z", message="Use letters and spaces only."),
        ],
    )
    email = EmailField(
        "Email", filters=[strip], validators=[InputRequired(), Email(), Length(max=254)]
    )
    phone = TelField(
        "Mobile number",
        filters=[strip],
        validators=[
            InputRequired(),
            Regexp(
                r"9[78][0-9]{8}\Z",
                message="Enter a 10-digit mobile number starting with 97 or 98.",
            ),
        ],
    )


def first_error(form: FlaskForm) -> str:
    """The first problem of a form that failed to validate, with its label."""
    field_name, errors = next(iter(form.errors.items()))
    return f"{form[field_name].label.text}: {errors[0]}"


def refuse(message: str, page, status: int = 400):
    """Answer bad input with a message on `page`, changing nothing."""
    flash(message, "error")
    return page(), status


def quantity_problem(product: Product, quantity: int) -> str | None:
    if quantity > product.stock:
        return f"Only {product.stock} of {product.name} left in stock."
    return None


# --- Catalog and cart --------------------------------------------------------


@bp.get("/")
def catalog():
    """List every product."""
    return render_template("catalog.html", product_cards=product_cards())


# Stands in for the buyer's CSRF token in the cached product cards. Jinja
# escapes "<" in product data, so no product text can ever contain it.
TOKEN_SLOT = Markup("<csrf-token>")


def product_cards() -> Markup:
    """The catalog's product cards, rendered again only when a product changed.

    Rendering the cards was most of the catalog's cost, yet they change only
    when a product row does. So this worker keeps the last cards it rendered
    together with the rows they show, and every visit reads the rows again
    (one SELECT of plain tuples, cheaper than loading Product objects): any
    write by anyone, this worker, another one or a person in a SQL shell, is
    seen at once, and no page can show a wrong price or stock. The cards are
    cached with a slot where each page puts its own buyer's CSRF token.
    """
    rows = tuple(db.session.execute(select(Product.__table__).order_by(Product.id)))
    cache = current_app.extensions["product_cards"]
    cached_rows, cards = cache.get("latest", (None, None))
    if rows != cached_rows:
        products = db.session.scalars(select(Product).order_by(Product.id))
        cards = Markup(
            render_template("_product_cards.html", products=products, token=TOKEN_SLOT)
        )
        # One assignment, so another thread never sees new rows with old cards.
        cache["latest"] = (rows, cards)
    # Markup.replace escapes the token it puts in.
    return cards.replace(TOKEN_SLOT, generate_csrf())


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
    quantity = cart.get(str(product.id), 0) + form.quantity.data
    if problem := quantity_problem(product, quantity):
        return refuse(problem, catalog)
    save_cart(cart | {str(product.id): quantity})
    flash(f"Added {form.quantity.data} × {product.name} to your cart.", "success")
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
        return refuse("That product is not in your cart.", render_cart, 404)
    product = db.get_or_404(Product, form.product_id.data)
    if problem := quantity_problem(product, form.quantity.data):
        return refuse(problem, render_cart)
    save_cart(cart | {str(product.id): form.quantity.data})
    flash(f"Updated {product.name}.", "success")
    return redirect(url_for("shop.cart"), code=303)


@bp.post("/cart/remove")
def remove_cart_line():
    """Take one line out of the cart."""
    form = ProductForm()
    cart = session_cart()
    if not form.validate() or str(form.product_id.data) not in cart:
        return refuse("That product is not in your cart.", render_cart, 404)
    save_cart(
        {pid: qty for pid, qty in cart.items() if pid != str(form.product_id.data)}
    )
    flash("Removed from your cart.", "success")
    return redirect(url_for("shop.cart"), code=303)


# --- Checkout: create the order, then ask Khalti for a payment link ---------


def cart_problem(lines: list[CartLine]) -> str | None:
    """Why this cart cannot be checked out, or None."""
    if not lines:
        return "Your cart is empty."
    if cart_total_paisa(lines) < MINIMUM_PAISA:
        return (
            f"Khalti accepts payments of {format_npr(MINIMUM_PAISA)} or more."
            " Add a little more to your cart."
        )
    for line in lines:
        if problem := quantity_problem(line.product, line.quantity):
            return problem
    return None


@bp.route("/checkout", methods=["GET", "POST"])
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
        status = 400 if form.is_submitted() else 200
        return render_template(
            "checkout.html", form=form, lines=lines, total_paisa=cart_total_paisa(lines)
        ), status

    token = form.checkout_token.data
    order = Order.from_cart(
        lines,
        checkout_token=token,
        name=form.name.data,
        email=form.email.data,
        phone=form.phone.data,
    )
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
        return refuse(f"Sorry, {short.name} just sold out.", render_cart, 409)
    # The order is flushed: it has its id and its reference.
    payload = initiate_payload(order)
    order.record(
        ("order_created", {"total_paisa": order.total_paisa}),
        ("initiate_request", payload),
    )
    # One commit saves the order, its items, its stock and the request we are
    # about to send, all before Khalti is called. No transaction stays open
    # while Khalti thinks: a slow gateway must not hold row locks (PostgreSQL)
    # or SQLite's write lock from other buyers.
    db.session.commit()
    remember_order(order.purchase_order_id)
    return start_payment(order, payload)


def placed_with(form: CheckoutForm) -> bool:
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


def initiate_payload(order: Order) -> dict:
    """What Khalti's initiate call needs to know about the order."""
    return {
        "return_url": shop_url_for("shop.payment_return"),
        "website_url": shop_url_for("shop.catalog"),
        "amount": order.total_paisa,  # paisa, never rupees
        "purchase_order_id": order.purchase_order_id,
        "purchase_order_name": ", ".join(item.name for item in order.items)[:100],
        "customer_info": {
            "name": order.customer_name,
            "email": order.customer_email,
            "phone": order.customer_phone,
        },
        # Khalti checks that the breakdown adds up to the amount exactly.
        "amount_breakdown": [{"label": "Items", "amount": order.total_paisa}],
        "product_details": [
            {
                "identity": str(item.product_id),
                "name": item.name,
                "unit_price": item.unit_price_paisa,
                "quantity": item.quantity,
                "total_price": item.line_total_paisa,
            }
            for item in order.items
        ],
    }


def start_payment(order: Order, payload: dict):
    """Ask Khalti for a payment link and send the buyer there.

    The order and its stock are committed before Khalti is called, and the
    pidx is committed before the redirect: whatever happens next, every
    payment that exists at Khalti has an order row that can be looked up.
    """
    try:
        payment = get_khalti().initiate(payload)
    except khalti.KhaltiError as exc:
        return payment_not_started(order, exc)
    started = order.move_to(
        OrderStatus.AWAITING_PAYMENT,
        steps=[("initiate_response", payment.raw)],
        pidx=payment.pidx,
        payment_url=payment.payment_url,
        expires_at=payment.expires_at,
    )
    db.session.commit()
    if not started:
        # Khalti answered so late that reconcile had given the order (and
        # its stock) up: never send the buyer to pay for a failed order.
        abort(502, "Khalti took too long to start your payment. Nothing was charged.")
    return redirect(payment.payment_url, code=303)


def payment_not_started(order: Order, exc: khalti.KhaltiError):
    """Khalti refused or could not be reached: fail the order, free its stock."""
    current_app.logger.warning(
        "Initiate failed for %s: %s", order.purchase_order_id, exc
    )
    error = {"error": str(exc), "body": getattr(exc, "body", None)}
    order.move_to(
        OrderStatus.FAILED,
        steps=[("initiate_error", error)],
        failure_reason=str(exc),
    )
    db.session.commit()
    if isinstance(exc, khalti.KhaltiAPIError) and exc.status_code == 400:
        status, message = 400, f"Khalti could not accept this payment: {exc}"
    else:
        status = 502
        message = (
            "We could not reach Khalti to start your payment. Nothing was charged."
        )
    return render_template(
        "error.html", code=status, title="Payment not started", message=message
    ), status


# --- Coming back from Khalti: verify, never trust --------------------------

# How each lookup status moves an order (compared case-insensitively, since
# Khalti's own docs spell "Partially Refunded" two ways). Completed is
# handled apart because it also needs the amount to match.
STATUS_AFTER_LOOKUP = {
    "initiated": OrderStatus.AWAITING_PAYMENT,
    "pending": OrderStatus.PENDING,
    "user canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "refunded": OrderStatus.REFUNDED,
    "partially refunded": OrderStatus.PARTIALLY_REFUNDED,
    "failed": OrderStatus.FAILED,
}


def status_after_lookup(lookup: khalti.PaymentLookup, order: Order) -> OrderStatus:
    """The order status that Khalti's lookup answer calls for."""
    if lookup.status == "Completed":
        # Completed for a different amount is not this order's payment in
        # full: a person must look at it before anything ships.
        if lookup.total_amount == order.total_paisa:
            return OrderStatus.PAID
        return OrderStatus.NEEDS_REVIEW
    # Anything Khalti has not documented is held for a person to check.
    return STATUS_AFTER_LOOKUP.get(lookup.status.casefold(), OrderStatus.NEEDS_REVIEW)


def verify_payment(order: Order, callback: dict | None = None) -> bool:
    """Look the order's payment up at Khalti and apply the answer.

    Every path that settles a payment comes through here: the return from
    Khalti (which passes the `callback` arguments it came with), the "Check
    again" button and the reconcile command. The callback, the lookup's
    answer and any status change are saved in one transaction, after the
    lookup. Returns whether the order's status changed.

    :raises khalti.KhaltiError: Khalti could not answer; nothing changed.
    """
    steps = [] if callback is None else [("callback", callback)]
    pidx = order.pidx
    db.session.commit()  # as in checkout: no transaction open on Khalti
    g.writes_after_lookup = True  # see may_write
    try:
        lookup = get_khalti().lookup(pidx)
    except khalti.KhaltiError as exc:
        order.record(*steps, ("lookup_error", {"error": str(exc)}))
        db.session.commit()
        raise
    steps.append(("lookup_response", lookup.raw))
    changes = {"transaction_id": lookup.transaction_id} if lookup.transaction_id else {}
    changed = order.move_to(status_after_lookup(lookup, order), steps=steps, **changes)
    db.session.commit()
    return changed


def order_where(column, value: str, *options) -> Order:
    """The order whose `column` (pidx or purchase_order_id) is `value`, or 404.

    PostgreSQL rejects a string holding a NUL character with an error, not
    a miss, and no id is that long: such values name no order.
    """
    if len(value) > 64 or "\x00" in value:
        abort(404)
    return db.one_or_404(select(Order).where(column == value).options(*options))


def order_by_pidx(pidx: str) -> Order:
    return order_where(Order.pidx, pidx)


def order_by_reference(purchase_order_id: str) -> Order:
    return order_where(Order.purchase_order_id, purchase_order_id)


@bp.get("/successfull-payment")
def payment_return():
    """Khalti sends the buyer back here. Only pidx is used, as a lookup key."""
    pidx = request.args.get("pidx", "")
    if not pidx:
        abort(400, "The link from Khalti is missing the payment id (pidx).")
    order = order_by_pidx(pidx)
    # A reload or the back button after the payment settled: nothing to do.
    if order.status not in OPEN_STATUSES:
        return show_order(order)
    # Kept for the learners' timeline; none of it is believed.
    return settle_and_show(order, callback=request.args.to_dict())


@bp.post("/orders/<purchase_order_id>/verify")
def check_again(purchase_order_id):
    """The "Check again" button: ask Khalti once more."""
    order = order_by_reference(purchase_order_id)
    if order.status not in OPEN_STATUSES:
        return show_order(order)
    return settle_and_show(order)


def settle_and_show(order: Order, callback: dict | None = None):
    try:
        changed = verify_payment(order, callback)
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
    OrderStatus.PAID: ("Payment received. Thank you!", "success"),
    OrderStatus.CANCELED: (
        "You canceled the payment. Your cart is still here.",
        "info",
    ),
    OrderStatus.EXPIRED: ("The payment link expired. Your cart is still here.", "info"),
    OrderStatus.FAILED: (
        "Khalti says the payment failed. Nothing was charged.",
        "error",
    ),
    OrderStatus.PENDING: ("Khalti is still processing your payment.", "info"),
    OrderStatus.NEEDS_REVIEW: (
        "We need to check this payment by hand before we ship.",
        "error",
    ),
}


def flash_outcome(order: Order) -> None:
    if outcome := OUTCOME_MESSAGES.get(order.status):
        flash(*outcome)


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
    )


def timeline(order: Order, show_customer: bool):
    """The order's events and their data, the buyer's details hidden from others."""
    for event in order.events:
        payload = event.payload
        if "customer_info" in payload and not show_customer:
            payload |= {"customer_info": "(only the buyer's browser sees this)"}
        # Staff actions are part of the lesson; who did them is not public.
        if "staff" in payload:
            payload |= {"staff": "(shop staff)"}
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


@bp.get("/healthz")
def healthz():
    """For the proxy or load balancer: can this server reach its database?

    No session, no login, one SELECT 1. The reason a check failed goes to the
    log only: this page is public, and a database error names its host.
    """
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        current_app.logger.warning("Health check failed: %s", exc)
        return {"database": "unreachable", "reason": type(exc).__name__}, 503
    return {"database": "ok"}


# --- Errors ------------------------------------------------------------------


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    return render_template(
        "error.html", code=error.code, title=error.name, message=error.description
    ), error.code


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError):
    message = (
        "This form has expired or did not come from this site."
        " Reload the page and try again."
    )
    return render_template(
        "error.html", code=400, title="Form expired", message=message
    ), 400


@bp.app_errorhandler(500)
def server_error(error):
    db.session.rollback()
    return render_template(
        "error.html",
        code=500,
        title="Something went wrong",
        message="Please try again in a moment.",
    ), 500


# --- Command-line tools --------------------------------------------------------


@bp.cli.command("init-db")
def init_db():
    """Create the tables and add the sample products (safe to run twice)."""
    db.create_all()
    added = seed_catalog()
    click.echo(f"Database ready; {added} sample products added.")


def deploy_findings(config) -> list[tuple[str, str]]:
    """What check-deploy reports about a configuration: (level, message) pairs.

    The README's go-live checklist, as code. It reads the configuration only.
    (With the example's placeholder SECRET_KEY the app, so this command too,
    does not even start: see check_secret_key.)
    """
    findings = []
    if len(config["SECRET_KEY"]) < 32:
        findings.append(("ERROR", "SECRET_KEY is shorter than 32 characters."))
    shop_url = config["SHOP_URL"] or ""
    if is_production(config):
        if config["KHALTI_SECRET_KEY"] in (None, BUILTIN_SANDBOX_KEY):
            findings.append(
                (
                    "ERROR",
                    "KHALTI_SECRET_KEY is not your live key from admin.khalti.com.",
                )
            )
        if not config["SESSION_COOKIE_SECURE"]:
            findings.append(("ERROR", "SESSION_COOKIE_SECURE is off: set it to 1."))
        if not shop_url.startswith("https://"):
            findings.append(("ERROR", "SHOP_URL must be the shop's https:// address."))
        if make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "sqlite":
            findings.append(
                ("ERROR", "DATABASE_URL is SQLite: use a server database (PostgreSQL).")
            )
    if shop_url.startswith("https://") and not config["FORWARDED_ALLOW"]:
        findings.append(
            (
                "WARNING",
                "FORWARDED_ALLOW is 0: behind a proxy the client address and"
                " request.is_secure will be the proxy's.",
            )
        )
    return findings


@bp.cli.command("check-deploy")
def check_deploy():
    """Check the configuration for going live; exit 1 if anything is wrong.

    It reads the settings only and connects to nothing.
    """
    config = current_app.config
    findings = deploy_findings(config)
    for level, message in findings:
        click.echo(f"{level}: {message}")
    host = "production" if is_production(config) else "sandbox"
    click.echo(
        f"{len(findings)} findings; Khalti API {config['KHALTI_BASE_URL']} ({host})."
    )
    if any(level == "ERROR" for level, _ in findings):
        raise SystemExit(1)


@bp.cli.command("reconcile")
@click.option(
    "--older-than",
    "minutes",
    default=0,
    type=click.IntRange(min=0),
    help="Only orders at least this many minutes old.",
)
@click.option(
    "--paid-within",
    "days",
    default=None,
    type=click.IntRange(min=1),
    help="Also look up orders paid or partially refunded in the last DAYS days.",
)
def reconcile(minutes, days):
    """Look up every unsettled order at Khalti and apply the answer.

    Buyers who pay and close the tab never come back, and Khalti has no
    webhook, so run this from cron every few minutes. Orders abandoned
    before their payment started are failed, freeing their stock. With
    --paid-within, run daily, refunds made on Khalti's dashboard reach
    their orders too.
    """
    reconcile_orders(minutes, days, report=click.echo)


def reconcile_orders(minutes: int = 0, days: int | None = None, *, report) -> None:
    """The reconcile command's work; `report` gets one line per order.

    A paid order counts as paid "in the last DAYS days" by when it was
    placed: Khalti's payment links expire within an hour of that.
    """
    cutoff = now_utc() - timedelta(minutes=minutes)
    wanted = and_(Order.status.in_(OPEN_STATUSES), Order.created_at <= cutoff)
    if days:
        recently_paid = and_(
            Order.status.in_(REFUNDABLE_STATUSES),
            Order.created_at >= now_utc() - timedelta(days=days),
        )
        wanted = or_(wanted, recently_paid)
    orders = db.session.scalars(select(Order).where(wanted).order_by(Order.id)).all()
    changed = failed = 0
    for order in orders:
        before = order.status
        try:
            moved = verify_payment(order)
        except khalti.KhaltiError as exc:
            failed += 1
            report(f"{order.purchase_order_id}  {before}  lookup failed: {exc}")
            continue
        changed += moved
        report(f"{order.purchase_order_id}  {before} -> {order.status}")
    report(f"Checked {len(orders)} orders: {changed} changed, {failed} lookups failed.")
    fail_abandoned_orders(cutoff, report)


def fail_abandoned_orders(cutoff, report) -> None:
    """Fail orders whose payment link never reached the buyer.

    An order is `created` only while its initiate call is in flight, which
    the client's timeout bounds. One still `created` after that belongs to a
    shop process that died between asking Khalti and saving the answer: the
    buyer never saw a payment page, so nobody can pay, and Khalti's payment
    (if one was made) expires unpaid. Its items go back on the shelf.
    """
    budget = timedelta(seconds=sum(current_app.config["KHALTI_TIMEOUT"]))
    orders = db.session.scalars(
        select(Order)
        .where(
            Order.status == OrderStatus.CREATED,
            Order.created_at <= min(cutoff, now_utc() - budget),
        )
        .order_by(Order.id)
    ).all()
    for order in orders:
        order.move_to(
            OrderStatus.FAILED,
            failure_reason="The shop stopped before Khalti's payment link was saved.",
        )
        db.session.commit()
        report(f"{order.purchase_order_id}  created -> {order.status}")
