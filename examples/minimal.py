"""The smallest correct Khalti integration: this file plus khalti.py.

docs/tutorial.md builds it step by step, from an empty folder. It reads its
settings from the environment, or from .env when started with `flask`:
SECRET_KEY, KHALTI_SECRET_KEY, KHALTI_BASE_URL and SITE_URL.

`make example` runs it against the project's offline sandbox. Only Khalti's
lookup decides whether money moved: the buyer's browser supplies neither the
price nor the verdict.
"""

import logging
import os
import secrets
from datetime import UTC, datetime, timedelta

import click
from flask import Flask, abort, redirect, render_template_string, request, url_for
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import khalti

app = Flask(__name__)
app.config.from_mapping(
    SECRET_KEY=os.environ["SECRET_KEY"],  # signs the forms' CSRF tokens
    SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL", "sqlite:///payments.db"),
)
app.logger.setLevel(logging.INFO)
CSRFProtect(app)


def gateway() -> khalti.KhaltiClient:
    """A Khalti client for this request: the key and host come from the environment."""
    return khalti.KhaltiClient(
        os.environ["KHALTI_SECRET_KEY"],  # just the key: khalti.py adds "Key "
        os.environ.get("KHALTI_BASE_URL") or khalti.SANDBOX_BASE_URL,
    )


def site_url(endpoint: str) -> str:
    """The full address of one of this app's pages, on SITE_URL.

    Not url_for(_external=True): that takes the host from the request's Host
    header, which any client can set, and says http:// behind an https:// proxy.
    """
    return os.environ["SITE_URL"].rstrip("/") + url_for(endpoint)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(app, model_class=Base)


class Payment(db.Model):
    """One Khalti payment link: what we asked for, and what lookup said."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    pidx: Mapped[str] = mapped_column(unique=True)  # Khalti's id for the payment
    purchase_order_id: Mapped[str] = mapped_column(unique=True)  # ours, sent along
    total_paisa: Mapped[int]  # what the buyer must pay, in paisa
    payment_url: Mapped[str]  # Khalti's page, to send the buyer back to
    expires_at: Mapped[datetime]  # in UTC: when payment_url stops working
    status: Mapped[str] = mapped_column(default="initiated")
    transaction_id: Mapped[str | None]  # Khalti's, only once money moved
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


with app.app_context():
    db.create_all()  # your app would use its migrations instead


PRICE_PAISA = 10_000  # Rs 100. Yours comes from your order, never the browser.


@app.get("/")
def index():
    """Your checkout page: one button that starts a payment."""
    return render_template_string(CHECKOUT_PAGE, note="")


@app.post("/pay")
def pay():
    """Ask Khalti for a payment link, save it, send the buyer there."""
    order_id = secrets.token_hex(8)  # your order's reference, unique per payment
    try:
        started = gateway().initiate(
            {
                "return_url": site_url("khalti_return"),
                "website_url": site_url("index"),
                "amount": PRICE_PAISA,  # integer paisa: Rs 100 is 10000
                "purchase_order_id": order_id,
                "purchase_order_name": "Minimal example order",
            }
        )
    except khalti.KhaltiError as exc:  # a refused key or field, or no answer
        # The details are for you, in the log; the buyer gets a plain sentence.
        app.logger.error("Khalti did not start a payment: %s", exc)
        note = "Khalti could not start the payment. Nothing was charged."
        return render_template_string(CHECKOUT_PAGE, note=note), 502
    expires_at = datetime.fromisoformat(started.expires_at).astimezone(UTC)
    db.session.add(
        Payment(
            pidx=started.pidx,
            purchase_order_id=order_id,
            total_paisa=PRICE_PAISA,
            payment_url=started.payment_url,
            expires_at=expires_at.replace(tzinfo=None),
        )
    )
    # Committed before the redirect: any payment the buyer can make is on file.
    db.session.commit()
    return redirect(started.payment_url, code=303)


CHECKOUT_PAGE = """<!doctype html><title>Minimal Khalti example</title>
<p>{{ note }}</p>
<form method="post" action="{{ url_for('pay') }}">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <button>Pay Rs 100 with Khalti</button></form>
"""


# Khalti's lookup status -> ours (compared case-insensitively: Khalti's docs
# spell "Partially Refunded" two ways). Completed is decided apart, by amount.
STATUS_AFTER_LOOKUP = {
    "initiated": "initiated",  # link open, not paid yet: ask again later
    "pending": "pending",  # hold, do not fulfil: ask again later
    "user canceled": "canceled",
    "expired": "expired",
    "failed": "failed",  # Khalti's notes: treat Failed as failed
    "refunded": "refunded",
    "partially refunded": "partially_refunded",
}
OPEN = ("initiated", "pending")  # the statuses a later lookup may still change


def status_after_lookup(lookup: khalti.PaymentLookup, total_paisa: int) -> str:
    if lookup.status == "Completed":
        # Paid, but not what we asked for: a person must look before shipping.
        return "paid" if lookup.total_amount == total_paisa else "needs_review"
    return STATUS_AFTER_LOOKUP.get(lookup.status.casefold(), "needs_review")


def settle(pidx: str, total_paisa: int) -> str:
    """Look the payment up at Khalti and record the answer; return the new status.

    :raises khalti.KhaltiError: Khalti did not answer; nothing changed.
    """
    db.session.commit()  # no transaction stays open while Khalti answers
    lookup = gateway().lookup(pidx)
    status = status_after_lookup(lookup, total_paisa)
    # One conditional UPDATE: of a reload, two tabs and reconcile racing
    # here, only the first changes an open payment, so only one fulfils it.
    changed = db.session.execute(
        update(Payment)
        .where(Payment.pidx == pidx, Payment.status.in_(OPEN))
        .values(status=status, transaction_id=lookup.transaction_id)
    ).rowcount
    db.session.commit()
    if changed and status == "paid":
        app.logger.info("Paid: %s. Fulfil the order here, exactly once.", pidx)
    if changed and status == "needs_review":
        app.logger.warning(
            "Needs review: %s. Khalti says %s for %s paisa; we asked %s. Check it"
            " in Khalti's merchant dashboard, then refund it or fulfil by hand.",
            pidx,
            lookup.status,
            lookup.total_amount,
            total_paisa,
        )
    return status


@app.cli.command("reconcile")
@click.option("--older-than", "minutes", default=0, type=click.IntRange(min=0))
def reconcile(minutes):
    """Look up every open payment started at least MINUTES ago.

    Khalti has no webhook: a buyer who pays and closes the tab never comes
    back to the return URL. Run this from cron every few minutes.
    """
    cutoff = now_utc() - timedelta(minutes=minutes)
    open_payments = db.session.execute(
        select(Payment.pidx, Payment.total_paisa).where(
            Payment.status.in_(OPEN), Payment.created_at <= cutoff
        )
    ).all()
    for pidx, total_paisa in open_payments:
        try:
            click.echo(f"{pidx} {settle(pidx, total_paisa)}")
        except khalti.KhaltiError as exc:
            click.echo(f"{pidx} lookup failed: {exc}")
    click.echo(f"Checked {len(open_payments)} open payments.")


@app.get("/khalti/return")
def khalti_return():
    """Khalti sends the buyer back here, paid or canceled. Only pidx is read."""
    # status, amount, transaction_id... are in the URL too, and anyone can type
    # them: pidx only says which payment to look up.
    pidx = request.args.get("pidx", "")
    if not pidx:
        abort(400, "The link from Khalti has no payment id (pidx).")
    return settle_and_show(payment_or_404(pidx))


@app.post("/payments/<pidx>/check")
def check_again(pidx):
    """The "Check again" button on a payment still pending or not yet paid."""
    return settle_and_show(payment_or_404(pidx))


def payment_or_404(pidx: str) -> Payment:
    # Khalti's pidx is letters and digits: anything else names no payment
    # (and PostgreSQL answers a NUL character with an error, not a miss).
    if not pidx.isalnum():
        abort(404)
    return db.one_or_404(select(Payment).filter_by(pidx=pidx))


def settle_and_show(payment: Payment):
    if payment.status in OPEN:  # a reload of a settled payment asks nobody
        try:
            settle(payment.pidx, payment.total_paisa)
        except khalti.KhaltiError as exc:
            app.logger.warning("Lookup of %s failed: %s", payment.pidx, exc)
            note = "Khalti did not answer; nothing changed."
            return render_payment(payment, note), 502
    return redirect(url_for("show_payment", pidx=payment.pidx), code=303)


@app.get("/payments/<pidx>")
def show_payment(pidx):
    """The buyer's page for one payment: its status, and what they can do."""
    return render_payment(payment_or_404(pidx))


def render_payment(payment: Payment, note: str = ""):
    return render_template_string(
        PAYMENT_PAGE, payment=payment, open=OPEN, now=now_utc(), note=note
    )


PAYMENT_PAGE = """<!doctype html><title>Minimal Khalti example</title>
<p>Payment {{ payment.pidx }} for Rs {{ payment.total_paisa // 100 }}:
   <strong>{{ payment.status }}</strong>. {{ note }}</p>
{% if payment.status == "initiated" and payment.expires_at > now %}
  <p><a href="{{ payment.payment_url }}">Continue to payment</a>
     (Khalti's link works until {{ payment.expires_at }} UTC).</p>
{% elif payment.status == "needs_review" %}
  <p>Khalti received a payment that does not match this order. Please do not
     pay again: we will check it and contact you.</p>
{% endif %}
{% if payment.status in open %}
  <form method="post" action="{{ url_for('check_again', pidx=payment.pidx) }}">
    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
    <button>Check again</button></form>
{% endif %}
<p><a href="{{ url_for('index') }}">Start another payment</a></p>
"""
