"""An offline stand-in for Khalti's sandbox, so the shop runs without Khalti's servers.

It plays both hosts of Khalti's test environment, as documented at
https://docs.khalti.com/khalti-epayment/ :

- the API at ``dev.khalti.com``: ``POST /api/v2/epayment/initiate/``,
  ``POST /api/v2/epayment/lookup/`` and
  ``POST /api/merchant-transaction/<transaction_id>/refund/``, each with or without the
  trailing slash and each requiring ``Authorization: Key <secret key>``;
- the payment portal at ``test-pay.khalti.com``: ``GET /?pidx=...``, where a buyer logs
  in with a test Khalti ID (9800000000 to 9800000005), MPIN 1111 and OTP 987654, or
  cancels, and is then redirected to the merchant's ``return_url``.

Run it with ``flask --app sandbox run --port 5001`` and point the shop's Khalti base
URL at http://127.0.0.1:5001/api/v2/. Config keys, read from ``create_app(config)``
first and the environment second: ``KHALTI_SECRET_KEY`` (if set, the only key
accepted; otherwise any key is) and ``SANDBOX_EXPIRES_IN`` (payment link lifetime in
seconds, default 1800 like Khalti's sandbox).

Sandbox only, not part of real Khalti (no auth needed):

- the portal's "Sandbox controls" buttons (``POST /sandbox/simulate``) force a Pending,
  Failed or Expired outcome;
- ``POST /sandbox/payments/<pidx>`` with JSON ``{"status", "total_amount"?,
  "transaction_id"?}`` forces what lookup reports; ``GET`` on the same URL shows the
  stored payment, including the initiate payload the merchant sent;
- ``POST /sandbox/faults`` with JSON ``{"endpoint": "initiate" | "lookup" | "refund",
  "fault", "seconds"?}`` makes that endpoint misbehave until changed; faults are
  listed in ``FAULTS``. ``GET /sandbox/faults`` shows them and ``DELETE
  /sandbox/faults`` clears them;
- ``GET /sandbox/stats`` counts the initiate, lookup and refund calls received, and
  ``POST /sandbox/reset`` forgets all payments, faults and counts.

State lives in memory, on the app, so every ``create_app()`` starts empty.
"""

import functools
import json
import os
import re
import secrets
import socket
import struct
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.http import HTTP_STATUS_CODES

# Khalti reports times in Nepal Time, e.g. "2023-05-25T16:26:16.471649+05:45".
NEPAL_TIME = timezone(timedelta(hours=5, minutes=45))

# Khalti's ids (pidx, transaction_id) look like shortuuid strings: 22 characters from
# an alphabet that leaves out look-alikes such as 0/O and 1/l/I.
ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# The test credentials Khalti publishes for its sandbox.
TEST_KHALTI_IDS = {f"980000000{n}" for n in range(6)}
TEST_MPIN = "1111"
TEST_OTP = "987654"

MIN_AMOUNT = 1000  # paisa, i.e. Rs 10
# The statuses of a payment that has moved money and so has a transaction_id.
SETTLED = ("Completed", "Refunded", "Partially Refunded")
# Lookup answers HTTP 400 for these, with the usual body.
LOOKUP_400 = ("Expired", "User canceled")

# Django's URLValidator, simplified (Khalti's API is Django REST Framework): http(s),
# then localhost, an IPv4 address or a dotted domain name, then an optional port.
URL_PATTERN = re.compile(
    r"""
    https?://
    (localhost|\d{1,3}(\.\d{1,3}){3}|([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}\.?)
    (:\d{1,5})?
    ([/?\#]\S*)?
    """,
    re.IGNORECASE | re.VERBOSE,
)

FAULT_ENDPOINTS = ("initiate", "lookup", "refund")
FAULTS = (
    "none",
    "delay",  # sleep, then answer normally
    "hang",  # the same, but long enough to trip a client's read timeout
    "http_500",
    "http_502",
    "http_503",
    "malformed_json",  # 200 with a body cut off mid-JSON
    "html_error",  # 502 with the HTML page a proxy shows when the app behind it is down
    "reset",  # close the TCP connection without any HTTP response
)
DEFAULT_SECONDS = {"delay": 1.0, "hang": 30.0}
PROXY_ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
    "</body></html>"
)

bp = Blueprint("sandbox", __name__)


def create_app(config: dict | None = None) -> Flask:
    """Create the sandbox app; ``config`` overrides the environment."""
    app = Flask(__name__, template_folder="templates/sandbox", static_folder="static")
    app.config.from_mapping(
        KHALTI_SECRET_KEY=os.environ.get("KHALTI_SECRET_KEY") or None,
        SANDBOX_EXPIRES_IN=int(os.environ.get("SANDBOX_EXPIRES_IN", 1800)),
        # The shop that `make run` serves beside the sandbox, for the front
        # page's link back (the Makefile passes its SHOP_PORT).
        SANDBOX_SHOP_URL=os.environ.get("SANDBOX_SHOP_URL", "http://127.0.0.1:5000/"),
    )
    if config:
        app.config.update(config)
    # Keep Khalti's field order in JSON answers; Flask sorts keys by default.
    app.json.sort_keys = False
    app.extensions["sandbox"] = SandboxState()
    app.register_blueprint(bp)
    return app


@dataclass
class Payment:
    """One payment link, from initiate until it is paid, canceled or expired."""

    pidx: str
    return_url: str
    website_url: str
    purchase_order_id: str
    purchase_order_name: str
    total_amount: int
    expires_at: datetime
    request: dict  # the initiate payload exactly as the merchant sent it
    status: str = "Initiated"
    transaction_id: str | None = None
    refunded: bool = False
    refunded_amount: int = 0  # paisa refunded so far, over one or more refunds
    mobile: str | None = None  # the test Khalti ID that passed the MPIN step

    def lookup(self) -> dict:
        """The body Khalti's lookup returns for this payment."""
        return {
            "pidx": self.pidx,
            "total_amount": self.total_amount,
            "status": self.status,
            "transaction_id": self.transaction_id,
            "fee": 0,
            "refunded": self.refunded,
        }

    def record(self) -> dict:
        """Everything stored about this payment, as JSON-friendly values."""
        return {**asdict(self), "expires_at": format_time(self.expires_at)}


class SandboxState:
    """Everything the sandbox remembers. The server runs a thread per request, so read
    and change it only while holding ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wakeup = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Forget all payments, faults and call counts."""
        self.payments: dict[str, Payment] = {}
        self.stats = dict.fromkeys(FAULT_ENDPOINTS, 0)
        self.clear_faults()

    def clear_faults(self) -> None:
        """Switch every fault off and release requests already held by one."""
        self.faults = {
            name: {"fault": "none", "seconds": None} for name in FAULT_ENDPOINTS
        }
        self.wake_sleepers()

    def wake_sleepers(self) -> None:
        """Cut short the sleep of requests held by a delay or hang fault."""
        self.wakeup.set()
        self.wakeup = threading.Event()

    def find(self, pidx: str) -> Payment | None:
        """Return the payment for ``pidx``, marked Expired if its link has run out."""
        payment = self.payments.get(pidx)
        if (
            payment is not None
            and payment.status == "Initiated"
            and datetime.now(NEPAL_TIME) >= payment.expires_at
        ):
            payment.status = "Expired"
        return payment

    def find_transaction(self, transaction_id: str) -> Payment | None:
        """Return the payment that produced ``transaction_id``, if any."""
        for payment in self.payments.values():
            if payment.transaction_id == transaction_id:
                return payment
        return None


def get_state() -> SandboxState:
    """The state of the app handling the current request."""
    return current_app.extensions["sandbox"]


def new_id() -> str:
    """A fresh, unguessable id shaped like Khalti's pidx and transaction ids."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(22))


def format_time(moment: datetime) -> str:
    """Format a time as Khalti does, with microseconds and the UTC offset."""
    return moment.isoformat(timespec="microseconds")


def mask_mobile(mobile: str) -> str:
    """Hide a Khalti ID the way Khalti's callback does: 9800000004 -> 98XXXXX004."""
    return f"{mobile[:2]}XXXXX{mobile[-3:]}"


@bp.app_template_filter("rupees")
def rupees(paisa: int) -> str:
    """Format paisa as rupees for the portal: 123400 -> "Rs 1,234.00"."""
    return f"Rs {paisa // 100:,}.{paisa % 100:02d}"


# --- Reading requests the way Khalti's API (Django REST Framework) does ------------


def request_data() -> dict:
    """Read the body as JSON, or as form fields (Khalti's Flutter SDK posts a form).

    Malformed JSON ends the request with DRF's 400 "JSON parse error" answer.
    """
    if not request.is_json:
        return request.form.to_dict()
    try:
        data = json.loads(request.get_data(as_text=True) or "{}")
    except ValueError as error:
        abort(make_response({"detail": f"JSON parse error - {error}"}, 400))
    if not isinstance(data, dict):
        message = f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
        abort(validation_error({"non_field_errors": [message]}))
    return data


def validation_error(errors: dict[str, list[str]]) -> Response:
    """Khalti's 400 answer: every field's messages, plus an ``error_key``."""
    return make_response({**errors, "error_key": "validation_error"}, 400)


def read_text(data: dict, name: str, errors: dict) -> str | None:
    """Return the required text field ``name``, or record why it is unusable."""
    value = data.get(name)
    if name not in data:
        errors[name] = ["This field is required."]
    elif value is None:
        errors[name] = ["This field may not be null."]
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        errors[name] = ["Not a valid string."]
    elif not str(value).strip():
        errors[name] = ["This field may not be blank."]
    else:
        return str(value).strip()
    return None


def read_url(data: dict, name: str, errors: dict) -> str | None:
    """Return the required URL field ``name``, or record why it is unusable."""
    url = read_text(data, name, errors)
    if url is not None and not URL_PATTERN.fullmatch(url):
        errors[name] = ["Enter a valid URL."]
        return None
    return url


def parse_integer(value) -> int | None:
    """Read an integer like DRF's IntegerField: 1000, "1000" and 1000.0 pass, 1000.5
    does not."""
    if isinstance(value, bool):
        return None
    try:
        return int(re.sub(r"\.0*\s*$", "", str(value)))
    except ValueError:
        return None


def read_amount(data: dict, errors: dict) -> int | None:
    """Return ``amount`` in paisa, or record why it is unusable."""
    if "amount" not in data:
        errors["amount"] = ["This field is required."]
        return None
    amount = parse_integer(data["amount"])
    if amount is None:
        errors["amount"] = ["A valid integer is required."]
    elif amount < MIN_AMOUNT:
        # "greater than" in the message, yet Khalti's own examples pay exactly 1000
        errors["amount"] = ["Amount should be greater than Rs. 10, that is 1000 paisa."]
    else:
        return amount
    return None


def breakdown_total(breakdown) -> int | None:
    """Sum the amounts of ``amount_breakdown``, or None if it is not a list of lines."""
    if not isinstance(breakdown, list):
        return None
    total = 0
    for line in breakdown:
        amount = parse_integer(line.get("amount")) if isinstance(line, dict) else None
        if amount is None:
            return None
        total += amount
    return total


def validate_initiate(data: dict) -> tuple[dict, dict[str, list[str]]]:
    """Check an initiate payload the way Khalti does.

    ``customer_info``, ``product_details`` and ``merchant_*`` extras are kept as they
    are: Khalti documents no rules for them.

    :return: the cleaned fields and the errors, as field -> list of messages
    """
    errors: dict[str, list[str]] = {}
    cleaned = {
        "return_url": read_url(data, "return_url", errors),
        "website_url": read_url(data, "website_url", errors),
        "total_amount": read_amount(data, errors),
        "purchase_order_id": read_text(data, "purchase_order_id", errors),
        "purchase_order_name": read_text(data, "purchase_order_name", errors),
    }
    # Like DRF, checks across fields run only once every field is valid on its own.
    breakdown = data.get("amount_breakdown")
    if (
        not errors
        and breakdown is not None
        and breakdown_total(breakdown) != cleaned["total_amount"]
    ):
        errors["amount"] = ["Amount Breakdown mismatch."]
    return cleaned, errors


def key_required(view):
    """Answer 401 unless the request carries ``Authorization: Key <secret key>``.

    Khalti's API uses DRF's token authentication with the keyword ``Key``, matched
    case-insensitively: the docs' own samples send ``key <secret>``.
    """

    @functools.wraps(view)
    def checked_view(**kwargs):
        words = request.headers.get("Authorization", "").split()
        secret_key = current_app.config["KHALTI_SECRET_KEY"]
        if not words or words[0].lower() != "key":
            detail = "Authentication credentials were not provided."
        elif len(words) == 1:
            detail = "Invalid token header. No credentials provided."
        elif len(words) > 2:
            detail = "Invalid token header. Token string should not contain spaces."
        elif secret_key is not None and words[1] != secret_key:
            detail = "Invalid token."
        else:
            return view(**kwargs)
        body = {"detail": detail, "status_code": 401}
        return body, 401, {"WWW-Authenticate": "Key"}

    return checked_view


# --- Fault injection (sandbox only) ------------------------------------------------


def with_faults(view):
    """Count calls to an API view and play the fault switched on for it, if any.

    The view's name ("initiate" or "lookup") is the endpoint name used by
    ``POST /sandbox/faults``.
    """
    endpoint = view.__name__

    @functools.wraps(view)
    def faulty_view(**kwargs):
        state = get_state()
        with state.lock:
            state.stats[endpoint] += 1
            fault = state.faults[endpoint]
            wakeup = state.wakeup
        name = fault["fault"]
        if name in ("delay", "hang"):
            # Waiting on an event rather than sleeping lets a fault change or a reset
            # release the request early; other requests go on in their own threads.
            wakeup.wait(fault["seconds"])
        elif name.startswith("http_"):
            code = int(name.removeprefix("http_"))
            return {"detail": HTTP_STATUS_CODES[code]}, code
        elif name == "malformed_json":
            return Response('{"pidx": ', mimetype="application/json")
        elif name == "html_error":
            return Response(PROXY_ERROR_PAGE, 502, mimetype="text/html")
        elif name == "reset":
            return reset_connection()
        return view(**kwargs)

    return faulty_view


def reset_connection() -> Response:
    """Drop the TCP connection with a reset instead of answering.

    This needs Werkzeug's server (``flask run``), the only one that exposes the socket,
    on Linux or macOS.
    """
    connection = request.environ["werkzeug.socket"]
    # A zero linger time makes closing the connection send a TCP RST, not a FIN.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Close it by putting a socket whose other end is gone in its place (dup2). The
    # server then fails to write the response below, takes the client for gone and
    # moves on quietly. A plain close() would only take effect after that write.
    dead_end, gone = socket.socketpair()
    gone.close()
    os.dup2(dead_end.fileno(), connection.fileno())
    dead_end.close()
    return Response(status=500)  # never reaches the client, only the server's log


# --- The API (dev.khalti.com) -------------------------------------------------------


@bp.post("/api/v2/epayment/initiate/", strict_slashes=False)
@with_faults
@key_required
def initiate():
    """Validate a payment request and open a payment link for it."""
    data = request_data()
    cleaned, errors = validate_initiate(data)
    if errors:
        return validation_error(errors)
    expires_in = current_app.config["SANDBOX_EXPIRES_IN"]
    expires_at = datetime.now(NEPAL_TIME) + timedelta(seconds=expires_in)
    payment = Payment(pidx=new_id(), expires_at=expires_at, request=data, **cleaned)
    state = get_state()
    with state.lock:
        state.payments[payment.pidx] = payment
    return {
        "pidx": payment.pidx,
        # The same server plays Khalti's payment portal, at its root.
        "payment_url": url_for(".portal", pidx=payment.pidx, _external=True),
        "expires_at": format_time(expires_at),
        "expires_in": expires_in,
    }


@bp.post("/api/v2/epayment/lookup/", strict_slashes=False)
@with_faults
@key_required
def lookup():
    """Report a payment's status: the only answer a merchant should trust."""
    errors: dict[str, list[str]] = {}
    pidx = read_text(request_data(), "pidx", errors)
    if errors:
        return validation_error(errors)
    state = get_state()
    with state.lock:
        payment = state.find(pidx)
        if payment is None:
            return {"detail": "Not found.", "error_key": "validation_error"}, 404
        body = payment.lookup()
    # Khalti answers links that can no longer be paid with HTTP 400, yet the body is
    # still a normal lookup result.
    return body, 400 if body["status"] in LOOKUP_400 else 200


@bp.post("/api/merchant-transaction/<transaction_id>/refund/", strict_slashes=False)
@with_faults
@key_required
def refund(transaction_id):
    """Refund a paid transaction: the rest of it with no body, or ``amount`` paisa.

    Khalti documents only the success answer. The refusals here are shaped like its
    other errors: ``detail`` for a transaction that cannot be refunded, field
    messages with ``error_key`` for a bad amount.
    """
    data = request_data()
    state = get_state()
    with state.lock:
        payment = state.find_transaction(transaction_id)
        if payment is None:
            return {"detail": "Not found.", "error_key": "validation_error"}, 404
        if payment.status not in ("Completed", "Partially Refunded"):
            detail = f"Transaction is {payment.status}; it cannot be refunded."
            return {"detail": detail, "error_key": "validation_error"}, 400
        left = payment.total_amount - payment.refunded_amount
        amount = parse_integer(data["amount"]) if "amount" in data else left
        if amount is None:
            return validation_error({"amount": ["A valid integer is required."]})
        if not 0 < amount <= left:
            message = f"Refund amount must be between 1 and {left} paisa."
            return validation_error({"amount": [message]})
        payment.refunded_amount += amount
        payment.refunded = True
        payment.status = "Refunded" if amount == left else "Partially Refunded"
    return {"detail": "Transaction refund successful."}


# --- The payment portal (test-pay.khalti.com) ---------------------------------------


@bp.app_errorhandler(404)
def not_found(error):
    """Answer unknown links with a page, as the portal is what buyers see."""
    detail = "Check the link, or start the payment again from the shop."
    page = render_template("message.html", message="Payment not found", detail=detail)
    return page, 404


def closed_page(payment: Payment, status: int = 200) -> Response:
    """A page saying why ``payment`` can no longer be paid."""
    messages = {
        "Completed": "This payment is already complete.",
        "User canceled": "This payment was canceled.",
        "Expired": "This payment link has expired.",
    }
    message = messages.get(payment.status, f"This payment is {payment.status}.")
    page = render_template("message.html", message=message, payment=payment)
    return make_response(page, status)


def payable_payment() -> Payment:
    """Return the payment a portal form was posted for, if it can still be paid.

    Otherwise end the request: 404 for an unknown pidx, 400 with a message page for a
    finished or expired one. Call with the state's lock held.
    """
    payment = get_state().find(request.form.get("pidx", ""))
    if payment is None:
        abort(404)
    if payment.status != "Initiated":
        abort(closed_page(payment, 400))
    return payment


def callback_url(payment: Payment) -> str:
    """Where to send the buyer back to: ``return_url`` plus the query parameters
    Khalti documents, in its order."""
    transaction_id = payment.transaction_id or ""
    params = {
        "pidx": payment.pidx,
        "transaction_id": transaction_id,
        "tidx": transaction_id,  # "same value as transaction id"
        # txnId is left out: Khalti says it is a bank's transaction id, not its own.
        "amount": payment.total_amount,
        "total_amount": payment.total_amount,
        "mobile": mask_mobile(payment.mobile) if transaction_id else "",
        "status": payment.status,
        "purchase_order_id": payment.purchase_order_id,
        "purchase_order_name": payment.purchase_order_name,
    }
    url = urlsplit(payment.return_url)
    query = "&".join(part for part in (url.query, urlencode(params)) if part)
    return urlunsplit(url._replace(query=query))


def back_to_merchant(payment: Payment) -> Response:
    """Send the buyer's browser to the merchant's ``return_url``."""
    # Khalti sends the buyer's browser back with a 302; Flask 3.2 will default to 303.
    return redirect(callback_url(payment), code=302)


@bp.get("/")
def portal():
    """Show the payment page for ``?pidx=...``, or say why it can't be paid.

    Without a pidx (someone opened the address `make run` prints): say what
    this server is, and link back to the shop.
    """
    if "pidx" not in request.args:
        return render_template(
            "index.html", shop_url=current_app.config["SANDBOX_SHOP_URL"]
        )
    state = get_state()
    with state.lock:
        payment = state.find(request.args.get("pidx", ""))
        if payment is None:
            abort(404)
        if payment.status != "Initiated":
            return closed_page(payment)
        return render_template("pay.html", payment=payment, errors={})


@bp.post("/pay")
def pay():
    """Check the Khalti ID and MPIN, then ask for the OTP."""
    mobile = request.form.get("mobile", "").strip()
    errors = {}
    if mobile not in TEST_KHALTI_IDS:
        errors["mobile"] = "This Khalti ID is not a test account."
    if request.form.get("mpin") != TEST_MPIN:
        errors["mpin"] = "Incorrect MPIN."
    with get_state().lock:
        payment = payable_payment()
        if errors:
            return render_template("pay.html", payment=payment, errors=errors), 400
        # Remember who logged in here, not in the OTP form, where it could be changed.
        payment.mobile = mobile
        return render_template("otp.html", payment=payment, errors={})


@bp.post("/confirm")
def confirm():
    """Check the OTP, complete the payment and send the buyer back to the merchant."""
    with get_state().lock:
        payment = payable_payment()
        if payment.mobile is None:
            errors = {"mobile": "Enter your Khalti ID and MPIN first."}
            return render_template("pay.html", payment=payment, errors=errors), 400
        if request.form.get("otp", "").strip() != TEST_OTP:
            errors = {"otp": "Incorrect OTP."}
            return render_template("otp.html", payment=payment, errors=errors), 400
        payment.status = "Completed"
        payment.transaction_id = new_id()
        return back_to_merchant(payment)


@bp.post("/cancel")
def cancel():
    """Cancel the payment and send the buyer back to the merchant."""
    with get_state().lock:
        payment = payable_payment()
        payment.status = "User canceled"
        return back_to_merchant(payment)


@bp.post("/sandbox/simulate")
def simulate():
    """Sandbox only: force an outcome from the portal's sandbox controls."""
    outcome = request.form.get("outcome")
    if outcome not in ("Pending", "Failed", "Expired"):
        abort(400)
    with get_state().lock:
        payment = payable_payment()
        payment.status = outcome
        if outcome == "Expired":
            # Nobody is sent back when a link expires; the buyer just sees that it has.
            return redirect(url_for(".portal", pidx=payment.pidx), code=303)
        return back_to_merchant(payment)


# --- Test controls (sandbox only) ---------------------------------------------------


@bp.get("/sandbox/payments/<pidx>")
def show_payment(pidx):
    """Show everything stored for a payment, including the initiate payload."""
    state = get_state()
    with state.lock:
        payment = state.find(pidx)
        if payment is None:
            return {"detail": "Not found."}, 404
        return payment.record()


@bp.post("/sandbox/payments/<pidx>")
def force_status(pidx):
    """Force what lookup reports for a payment; the status can be any string."""
    data = request_data()
    status = data.get("status")
    if not isinstance(status, str) or not status:
        return {"status": ["This field is required."]}, 400
    state = get_state()
    with state.lock:
        payment = state.find(pidx)
        if payment is None:
            return {"detail": "Not found."}, 404
        payment.status = status
        # Stored as given, so tests can also try odd values.
        payment.total_amount = data.get("total_amount", payment.total_amount)
        if "transaction_id" in data:
            payment.transaction_id = data["transaction_id"]
        elif status in SETTLED:
            payment.transaction_id = payment.transaction_id or new_id()
        else:
            payment.transaction_id = None
        payment.refunded = status in ("Refunded", "Partially Refunded")
        return payment.lookup()


@bp.get("/sandbox/faults")
def show_faults():
    """Show the fault switched on for each API endpoint."""
    state = get_state()
    with state.lock:
        return dict(state.faults)


@bp.post("/sandbox/faults")
def set_fault():
    """Make an API endpoint misbehave in one of the ways in ``FAULTS``."""
    data = request_data()
    endpoint, fault = data.get("endpoint"), data.get("fault")
    errors = {}
    if endpoint not in FAULT_ENDPOINTS:
        errors["endpoint"] = [f"Choose one of {', '.join(FAULT_ENDPOINTS)}."]
    seconds = None
    if fault not in FAULTS:
        errors["fault"] = [f"Choose one of {', '.join(FAULTS)}."]
    elif fault in DEFAULT_SECONDS:
        seconds = data.get("seconds", DEFAULT_SECONDS[fault])
        if not isinstance(seconds, int | float) or seconds < 0:
            errors["seconds"] = ["Enter a number of seconds."]
    if errors:
        return errors, 400
    state = get_state()
    with state.lock:
        state.faults[endpoint] = {"fault": fault, "seconds": seconds}
        state.wake_sleepers()
        return dict(state.faults)


@bp.delete("/sandbox/faults")
def clear_faults():
    """Switch every fault off."""
    state = get_state()
    with state.lock:
        state.clear_faults()
        return dict(state.faults)


@bp.get("/sandbox/stats")
def stats():
    """Count the initiate and lookup calls received, faulted ones included."""
    state = get_state()
    with state.lock:
        return dict(state.stats)


@bp.post("/sandbox/reset")
def reset():
    """Forget all payments, faults and counts."""
    state = get_state()
    with state.lock:
        state.reset()
    return "", 204
