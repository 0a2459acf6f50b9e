"""The payment workflow that the shop and the back office both call.

Start a payment (initiate), verify one (lookup, then the status table), and
reconcile the orders whose buyers never came back. No routes and no pages:
the callers decide what a person sees. Every status change goes through
`Order.move_to()`; the only proof of payment is Khalti's lookup, read here
by `status_after_lookup()`.
"""

import threading
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select

import khalti
from config import BUILTIN_SANDBOX_KEY
from database import db
from models import OPEN_STATUSES, REFUNDABLE_STATUSES, Order, OrderStatus, now_utc


def init_app(app) -> None:
    """Give the app its Khalti clients' homes (called by `create_app`)."""
    app.extensions["khalti_clients"] = threading.local()
    # One circuit breaker for all of this process's threads: what one of
    # them learns about Khalti being down spares the others the wait.
    app.extensions["khalti_breaker"] = khalti.CircuitBreaker()


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
            breaker=current_app.extensions["khalti_breaker"],
        )
    return clients.client


# --- Starting a payment ------------------------------------------------------


def initiate_payload(order: Order, *, return_url: str, website_url: str) -> dict:
    """What Khalti's initiate call needs to know about the order."""
    return {
        "return_url": return_url,
        "website_url": website_url,
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


def start_payment(order: Order, payload: dict) -> bool:
    """Ask Khalti for a payment link and save it on the order.

    The caller has committed the order, its stock and the request: whatever
    happens next, every payment that exists at Khalti has an order row that
    can be looked up. The pidx and payment link are committed here, before
    the buyer is sent anywhere. Returns False when Khalti answered so late
    that reconcile had given the order (and its stock) up: never send the
    buyer to pay for a failed order.

    :raises khalti.KhaltiError: Khalti refused or could not be reached; the
        order is failed and its stock freed.
    """
    try:
        payment = get_khalti().initiate(payload)
    except khalti.KhaltiError as exc:
        fail_unstarted(order, exc)
        raise
    started = order.move_to(
        OrderStatus.AWAITING_PAYMENT,
        steps=[("initiate_response", payment.raw)],
        pidx=payment.pidx,
        payment_url=payment.payment_url,
        expires_at=payment.expires_at,
    )
    db.session.commit()
    return started


def fail_unstarted(order: Order, exc: khalti.KhaltiError) -> None:
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


# --- Verifying a payment: ask Khalti, never trust a callback ----------------

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
    again" button, the back office and the reconcile command. The callback,
    the lookup's answer and any status change are saved in one transaction,
    after the lookup. Returns whether the order's status changed.

    :raises khalti.KhaltiError: Khalti could not answer; nothing changed.
    """
    steps = [] if callback is None else [("callback", callback)]
    pidx = order.pidx
    db.session.commit()  # as in checkout: no transaction open on Khalti
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


# --- Reconcile: the orders whose buyers never came back ---------------------


def reconcile_orders(minutes: int = 0, days: int | None = None, *, report) -> None:
    """Look up every unsettled order at Khalti; `report` gets a line per order.

    Only orders at least `minutes` old. With `days`, also the orders paid or
    partially refunded in the last `days` days, so that refunds made on
    Khalti's dashboard reach them. A paid order counts as paid "in the last
    DAYS days" by when it was placed: Khalti's payment links expire within
    an hour of that.
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
