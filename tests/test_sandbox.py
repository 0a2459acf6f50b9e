"""sandbox.py over real HTTP: does it answer like Khalti's documented contract?"""

import re
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from werkzeug.serving import make_server

import sandbox

KEY = "test-secret-key"
AUTH = {"Authorization": f"Key {KEY}"}
ORDER = {
    "return_url": "http://localhost:5000/payment/return",
    "website_url": "http://localhost:5000/",
    "amount": 1300,
    "purchase_order_id": "order-7",
    "purchase_order_name": "Jordan Air",
}
# Khalti's documented callback parameters, in the documented order (txnId left out).
CALLBACK_PARAMS = [
    "pidx",
    "transaction_id",
    "tidx",
    "amount",
    "total_amount",
    "mobile",
    "status",
    "purchase_order_id",
    "purchase_order_name",
]


@contextmanager
def serve(config):
    """Serve a fresh sandbox on a free loopback port; yield its base URL."""
    server = make_server(
        "127.0.0.1", 0, sandbox.create_app({"TESTING": True, **config}), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def server_url():
    """A sandbox that accepts only KEY."""
    with serve({"KHALTI_SECRET_KEY": KEY}) as url:
        yield url


@pytest.fixture(scope="module")
def quick_expiry_url():
    """A sandbox with one-second payment links and no key configured."""
    with serve({"KHALTI_SECRET_KEY": None, "SANDBOX_EXPIRES_IN": 1}) as url:
        yield url


@pytest.fixture
def url(server_url):
    """The shared sandbox, emptied of payments, faults and counts."""
    requests.post(f"{server_url}/sandbox/reset", timeout=5).raise_for_status()
    yield server_url
    # Release any request a hang fault is still holding.
    requests.post(f"{server_url}/sandbox/reset", timeout=5).raise_for_status()


def initiate(url, payload=ORDER, path="initiate/", headers=AUTH, timeout=5, **kwargs):
    return requests.post(
        f"{url}/api/v2/epayment/{path}",
        json=payload,
        headers=headers,
        timeout=timeout,
        **kwargs,
    )


def lookup(url, pidx, path="lookup/", headers=AUTH, timeout=5, **kwargs):
    return requests.post(
        f"{url}/api/v2/epayment/{path}",
        json={"pidx": pidx},
        headers=headers,
        timeout=timeout,
        **kwargs,
    )


def start_payment(url, **changes) -> str:
    response = initiate(url, ORDER | changes)
    assert response.status_code == 200, response.text
    return response.json()["pidx"]


def portal_post(url, path, **form):
    return requests.post(f"{url}{path}", data=form, allow_redirects=False, timeout=5)


def log_in(url, pidx, mobile="9800000004", mpin="1111"):
    return portal_post(url, "/pay", pidx=pidx, mobile=mobile, mpin=mpin)


def pay(url, pidx, otp="987654"):
    """Log in and confirm on the portal; return the confirm response."""
    assert log_in(url, pidx).status_code == 200
    return portal_post(url, "/confirm", pidx=pidx, otp=otp)


def callback_params(response) -> list[tuple[str, str]]:
    assert response.status_code == 302, response.text
    return parse_qsl(
        urlsplit(response.headers["Location"]).query, keep_blank_values=True
    )


def set_fault(url, endpoint, fault, **extra):
    body = {"endpoint": endpoint, "fault": fault, **extra}
    response = requests.post(f"{url}/sandbox/faults", json=body, timeout=5)
    assert response.status_code == 200, response.text


# --- Authorization ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": f"Bearer {KEY}"}, {"Authorization": f"Token {KEY}"}],
)
def test_missing_key_keyword_means_no_credentials(url, headers):
    response = initiate(url, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "status_code": 401,
    }


def test_wrong_key_is_an_invalid_token(url):
    response = initiate(url, headers={"Authorization": "Key some-other-key"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "status_code": 401}


def test_keyword_without_a_key_is_refused(url):
    response = lookup(url, "x", headers={"Authorization": "Key"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token header. No credentials provided."


@pytest.mark.parametrize("keyword", ["key", "KEY", "Key"])
def test_keyword_is_case_insensitive(url, keyword):
    response = initiate(url, headers={"Authorization": f"{keyword} {KEY}"})
    assert response.status_code == 200


def test_any_key_is_accepted_when_none_is_configured(quick_expiry_url):
    response = initiate(quick_expiry_url, headers={"Authorization": "Key anything"})
    assert response.status_code == 200


# --- Initiate -----------------------------------------------------------------------


def test_initiate_returns_a_payment_link(url):
    response = initiate(url)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["pidx", "payment_url", "expires_at", "expires_in"]
    assert re.fullmatch(r"[A-Za-z0-9]{22}", body["pidx"])
    assert body["payment_url"] == f"{url}/?pidx={body['pidx']}"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+05:45", body["expires_at"]
    )
    assert body["expires_in"] == 1800
    seconds_left = (
        datetime.fromisoformat(body["expires_at"]) - datetime.now().astimezone()
    )
    assert 1790 < seconds_left.total_seconds() <= 1800


def test_each_initiate_gets_a_new_pidx(url):
    assert start_payment(url) != start_payment(url)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("return_url", "", "This field may not be blank."),
        ("return_url", "example.com/return", "Enter a valid URL."),
        ("website_url", " ", "This field may not be blank."),
        ("website_url", "ftp://example.com/", "Enter a valid URL."),
        ("website_url", "C:\\xampp\\htdocs\\shop", "Enter a valid URL."),
        ("amount", 999, "Amount should be greater than Rs. 10, that is 1000 paisa."),
        ("amount", "12.5", "A valid integer is required."),
        ("amount", "Rs 100", "A valid integer is required."),
        ("purchase_order_id", "", "This field may not be blank."),
        ("purchase_order_name", "", "This field may not be blank."),
    ],
)
def test_invalid_field_is_a_validation_error(url, field, value, message):
    response = initiate(url, ORDER | {field: value})
    assert response.status_code == 400
    assert response.json() == {field: [message], "error_key": "validation_error"}


@pytest.mark.parametrize("field", list(ORDER))
def test_missing_field_is_required(url, field):
    payload = {name: value for name, value in ORDER.items() if name != field}
    response = initiate(url, payload)
    assert response.status_code == 400
    assert response.json() == {
        field: ["This field is required."],
        "error_key": "validation_error",
    }


def test_all_field_errors_come_together(url):
    payload = {"return_url": "", "website_url": "nope", "amount": 10}
    response = initiate(url, payload)
    assert response.status_code == 400
    assert response.json() == {
        "return_url": ["This field may not be blank."],
        "website_url": ["Enter a valid URL."],
        "amount": ["Amount should be greater than Rs. 10, that is 1000 paisa."],
        "purchase_order_id": ["This field is required."],
        "purchase_order_name": ["This field is required."],
        "error_key": "validation_error",
    }


@pytest.mark.parametrize("amount", [1000, "1000", 1000.0])
def test_minimum_amount_is_accepted_as_integer_or_digit_string(url, amount):
    pidx = start_payment(url, amount=amount)
    assert lookup(url, pidx).json()["total_amount"] == 1000


@pytest.mark.parametrize(
    "return_url",
    [
        "http://127.0.0.1:5000/payment/return?order=7",
        "https://shop.example.com.np/return/",
        "http://localhost/return",
    ],
)
def test_local_and_public_urls_are_valid(url, return_url):
    assert initiate(url, ORDER | {"return_url": return_url}).status_code == 200


def test_amount_breakdown_must_add_up(url):
    lines = [{"label": "Mark Price", "amount": 1000}, {"label": "VAT", "amount": 300}]
    assert initiate(url, ORDER | {"amount_breakdown": lines}).status_code == 200

    lines[1]["amount"] = 200
    response = initiate(url, ORDER | {"amount_breakdown": lines})
    assert response.status_code == 400
    assert response.json() == {
        "amount": ["Amount Breakdown mismatch."],
        "error_key": "validation_error",
    }


def test_malformed_json_is_a_parse_error(url):
    response = requests.post(
        f"{url}/api/v2/epayment/initiate/",
        data='{"amount": 1300,}',
        headers=AUTH | {"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")


def test_extras_are_stored_as_sent(url):
    extras = {
        "customer_info": {"name": "Sita Sharma", "phone": "9800000001"},
        "product_details": [{"identity": "1", "name": "Jordan Air", "total_price": 1}],
        "merchant_extra": "anything",
    }
    pidx = start_payment(url, **extras)
    record = requests.get(f"{url}/sandbox/payments/{pidx}", timeout=5).json()
    assert record["request"] == ORDER | extras
    assert record["return_url"] == ORDER["return_url"]
    assert record["status"] == "Initiated"


@pytest.mark.parametrize("slash", ["/", ""])
def test_api_answers_with_and_without_trailing_slash(url, slash):
    response = initiate(url, path=f"initiate{slash}", allow_redirects=False)
    assert response.status_code == 200
    pidx = response.json()["pidx"]
    assert lookup(url, pidx, path=f"lookup{slash}", allow_redirects=False).ok


# --- Lookup -------------------------------------------------------------------------


def test_lookup_of_a_new_payment_is_initiated(url):
    pidx = start_payment(url)
    response = lookup(url, pidx)
    assert response.status_code == 200
    assert response.json() == {
        "pidx": pidx,
        "total_amount": 1300,
        "status": "Initiated",
        "transaction_id": None,
        "fee": 0,
        "refunded": False,
    }


def test_lookup_of_an_unknown_pidx_is_not_found(url):
    response = lookup(url, "NoSuchPidx1234567890ab")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "error_key": "validation_error"}


def test_lookup_needs_a_pidx(url):
    response = requests.post(
        f"{url}/api/v2/epayment/lookup/", json={}, headers=AUTH, timeout=5
    )
    assert response.status_code == 400
    assert response.json() == {
        "pidx": ["This field is required."],
        "error_key": "validation_error",
    }


def test_unpaid_link_expires_and_stays_expired(quick_expiry_url):
    response = initiate(quick_expiry_url, headers={"Authorization": "Key any"})
    assert response.json()["expires_in"] == 1
    pidx = response.json()["pidx"]
    time.sleep(1.05)

    expired = lookup(quick_expiry_url, pidx)
    assert expired.status_code == 400
    assert expired.json()["status"] == "Expired"
    assert expired.json()["transaction_id"] is None
    page = requests.get(f"{quick_expiry_url}/?pidx={pidx}", timeout=5)
    assert "This payment link has expired." in page.text
    assert 'href="http://localhost:5000/"' in page.text
    assert log_in(quick_expiry_url, pidx).status_code == 400


# --- The payment portal -------------------------------------------------------------


def test_portal_shows_the_order_and_the_test_credentials(url):
    pidx = start_payment(url, amount=123400)
    page = requests.get(f"{url}/?pidx={pidx}", timeout=5)
    assert page.status_code == 200
    assert "Jordan Air" in page.text
    assert "Test Khalti ID 9800000000 to 9800000005, MPIN 1111, OTP 987654" in page.text
    assert '<label for="mobile">Khalti ID (mobile number)</label>' in page.text
    assert '<label for="mpin">MPIN</label>' in page.text
    assert "Pay Rs 1,234.00" in page.text
    assert "Cancel payment" in page.text
    assert "Sandbox controls (not part of real Khalti)" in page.text
    assert "<script" not in page.text


def test_the_front_page_says_what_the_sandbox_is_and_links_to_the_shop(url):
    page = requests.get(f"{url}/", timeout=5)
    assert page.status_code == 200
    assert "an offline stand-in for Khalti" in page.text
    assert '<a href="http://127.0.0.1:5000/">Back to the shop</a>' in page.text


@pytest.mark.parametrize("query", ["?pidx=NoSuchPidx1234567890ab", "?pidx="])
def test_portal_without_a_known_pidx_is_not_found(url, query):
    page = requests.get(f"{url}/{query}", timeout=5)
    assert page.status_code == 404
    assert "Payment not found" in page.text


@pytest.mark.parametrize(
    ("mobile", "mpin", "field", "message"),
    [
        ("9800000006", "1111", "mobile", "This Khalti ID is not a test account."),
        ("9800000004", "1234", "mpin", "Incorrect MPIN."),
    ],
)
def test_wrong_login_shows_the_error_by_its_field(url, mobile, mpin, field, message):
    pidx = start_payment(url)
    page = log_in(url, pidx, mobile=mobile, mpin=mpin)
    assert page.status_code == 400
    assert (
        f'<p id="{field}-error" class="error" role="alert">{message}</p>' in page.text
    )
    assert f'aria-describedby="{field}-error"' in page.text


def test_right_login_asks_for_the_otp(url):
    page = log_in(url, start_payment(url))
    assert page.status_code == 200
    assert '<label for="otp">OTP (sent to your phone)</label>' in page.text


def test_wrong_otp_is_refused(url):
    pidx = start_payment(url)
    page = pay(url, pidx, otp="123456")
    assert page.status_code == 400
    assert 'role="alert">Incorrect OTP.</p>' in page.text
    assert lookup(url, pidx).json()["status"] == "Initiated"


def test_otp_without_login_is_refused(url):
    pidx = start_payment(url)
    page = portal_post(url, "/confirm", pidx=pidx, otp="987654")
    assert page.status_code == 400
    assert lookup(url, pidx).json()["status"] == "Initiated"


def test_paying_redirects_back_with_khalti_callback_params(url):
    pidx = start_payment(url)
    response = pay(url, pidx)
    assert response.headers["Location"].startswith(f"{ORDER['return_url']}?pidx=")
    params = callback_params(response)
    assert [name for name, _ in params] == CALLBACK_PARAMS
    values = dict(params)
    assert re.fullmatch(r"[A-Za-z0-9]{22}", values["transaction_id"])
    assert values == {
        "pidx": pidx,
        "transaction_id": values["transaction_id"],
        "tidx": values["transaction_id"],
        "amount": "1300",
        "total_amount": "1300",
        "mobile": "98XXXXX004",
        "status": "Completed",
        "purchase_order_id": "order-7",
        "purchase_order_name": "Jordan Air",
    }
    completed = lookup(url, pidx)
    assert completed.status_code == 200
    assert completed.json()["status"] == "Completed"
    assert completed.json()["transaction_id"] == values["transaction_id"]


def test_callback_keeps_the_return_url_query(url):
    pidx = start_payment(url, return_url="http://localhost:5000/return?order=7")
    location = pay(url, pidx).headers["Location"]
    assert location.startswith(f"http://localhost:5000/return?order=7&pidx={pidx}&")


def test_payer_is_the_one_who_logged_in(url):
    pidx = start_payment(url)
    assert log_in(url, pidx, mobile="9800000002").status_code == 200
    response = portal_post(
        url, "/confirm", pidx=pidx, otp="987654", mobile="9800000005"
    )
    assert dict(callback_params(response))["mobile"] == "98XXXXX002"


def test_a_paid_payment_cannot_be_paid_again(url):
    pidx = start_payment(url)
    pay(url, pidx)
    assert log_in(url, pidx).status_code == 400
    assert portal_post(url, "/cancel", pidx=pidx).status_code == 400
    page = requests.get(f"{url}/?pidx={pidx}", timeout=5)
    assert "This payment is already complete." in page.text
    assert lookup(url, pidx).json()["status"] == "Completed"


def test_cancel_redirects_with_empty_ids_and_lookup_answers_400(url):
    pidx = start_payment(url)
    response = portal_post(url, "/cancel", pidx=pidx)
    params = callback_params(response)
    assert [name for name, _ in params] == CALLBACK_PARAMS
    assert dict(params) == {
        "pidx": pidx,
        "transaction_id": "",
        "tidx": "",
        "amount": "1300",
        "total_amount": "1300",
        "mobile": "",
        "status": "User canceled",
        "purchase_order_id": "order-7",
        "purchase_order_name": "Jordan Air",
    }
    canceled = lookup(url, pidx)
    assert canceled.status_code == 400
    assert canceled.json()["status"] == "User canceled"
    assert canceled.json()["transaction_id"] is None


@pytest.mark.parametrize("outcome", ["Pending", "Failed"])
def test_simulated_outcome_redirects_back(url, outcome):
    pidx = start_payment(url)
    response = portal_post(url, "/sandbox/simulate", pidx=pidx, outcome=outcome)
    values = dict(callback_params(response))
    assert values["status"] == outcome
    assert values["transaction_id"] == ""
    result = lookup(url, pidx)
    assert result.status_code == 200
    assert result.json()["status"] == outcome


def test_simulated_expiry_shows_the_expired_page(url):
    pidx = start_payment(url)
    response = portal_post(url, "/sandbox/simulate", pidx=pidx, outcome="Expired")
    assert response.status_code == 303
    page = requests.get(f"{url}{response.headers['Location']}", timeout=5)
    assert "This payment link has expired." in page.text
    assert lookup(url, pidx).status_code == 400


# --- Test controls ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "has_transaction", "refunded"),
    [
        ("Refunded", True, True),
        ("Partially Refunded", True, True),
        ("Completed", True, False),
        ("Failed", False, False),
        ("Pending", False, False),
        ("Weird", False, False),
    ],
)
def test_forced_status_is_what_lookup_reports(url, status, has_transaction, refunded):
    pidx = start_payment(url)
    forced = requests.post(
        f"{url}/sandbox/payments/{pidx}", json={"status": status}, timeout=5
    )
    assert forced.status_code == 200
    response = lookup(url, pidx)
    assert response.status_code == 200
    assert response.json() == forced.json()
    assert response.json()["status"] == status
    assert (response.json()["transaction_id"] is not None) == has_transaction
    assert response.json()["refunded"] is refunded


def test_forced_amount_and_transaction_id(url):
    pidx = start_payment(url)
    body = {"status": "Completed", "total_amount": 500, "transaction_id": "T" * 22}
    requests.post(f"{url}/sandbox/payments/{pidx}", json=body, timeout=5)
    result = lookup(url, pidx).json()
    assert (result["total_amount"], result["transaction_id"]) == (500, "T" * 22)


def test_controls_for_an_unknown_pidx_are_not_found(url):
    control = f"{url}/sandbox/payments/NoSuchPidx1234567890ab"
    assert requests.get(control, timeout=5).status_code == 404
    forced = requests.post(control, json={"status": "Completed"}, timeout=5)
    assert forced.status_code == 404


def test_stats_count_every_call_and_reset_clears_everything(url):
    pidx = start_payment(url)
    initiate(url, headers={})
    set_fault(url, "lookup", "http_500")
    lookup(url, pidx)
    stats = requests.get(f"{url}/sandbox/stats", timeout=5).json()
    assert stats == {"initiate": 2, "lookup": 1, "refund": 0}

    assert requests.post(f"{url}/sandbox/reset", timeout=5).status_code == 204
    assert requests.get(f"{url}/sandbox/stats", timeout=5).json() == {
        "initiate": 0,
        "lookup": 0,
        "refund": 0,
    }
    assert requests.get(f"{url}/sandbox/faults", timeout=5).json() == {
        "initiate": {"fault": "none", "seconds": None},
        "lookup": {"fault": "none", "seconds": None},
        "refund": {"fault": "none", "seconds": None},
    }
    assert lookup(url, pidx).status_code == 404


# --- Faults -------------------------------------------------------------------------


def test_faults_are_shown_and_cleared(url):
    set_fault(url, "initiate", "hang", seconds=12)
    faults = requests.get(f"{url}/sandbox/faults", timeout=5).json()
    assert faults["initiate"] == {"fault": "hang", "seconds": 12}
    assert faults["lookup"] == {"fault": "none", "seconds": None}

    cleared = requests.delete(f"{url}/sandbox/faults", timeout=5).json()
    assert cleared["initiate"] == {"fault": "none", "seconds": None}


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "portal", "fault": "http_500"},
        {"endpoint": "lookup", "fault": "explode"},
        {"endpoint": "lookup", "fault": "delay", "seconds": "soon"},
    ],
)
def test_unknown_fault_settings_are_refused(url, body):
    response = requests.post(f"{url}/sandbox/faults", json=body, timeout=5)
    assert response.status_code == 400


def test_fault_applies_to_its_endpoint_only(url):
    pidx = start_payment(url)
    set_fault(url, "initiate", "http_503")
    assert initiate(url).status_code == 503
    assert lookup(url, pidx).status_code == 200


def test_delay_answers_late_but_normally(url):
    set_fault(url, "initiate", "delay", seconds=0.3)
    started = time.monotonic()
    response = initiate(url)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_hang_trips_the_client_timeout_without_blocking_others(url):
    pidx = start_payment(url)
    set_fault(url, "lookup", "hang", seconds=12)
    with pytest.raises(requests.Timeout):
        lookup(url, pidx, timeout=(2, 0.3))
    assert initiate(url).status_code == 200


def test_clearing_faults_releases_a_hanging_request(url):
    set_fault(url, "initiate", "hang", seconds=12)
    answers = []
    caller = threading.Thread(target=lambda: answers.append(initiate(url)))
    caller.start()
    time.sleep(0.2)
    requests.delete(f"{url}/sandbox/faults", timeout=5)
    caller.join(timeout=3)
    assert [answer.status_code for answer in answers] == [200]


@pytest.mark.parametrize("code", [500, 502, 503])
def test_http_error_faults(url, code):
    set_fault(url, "initiate", f"http_{code}")
    response = initiate(url)
    assert response.status_code == code
    assert "detail" in response.json()


def test_malformed_json_fault(url):
    pidx = start_payment(url)
    set_fault(url, "lookup", "malformed_json")
    response = lookup(url, pidx)
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_html_error_fault(url):
    set_fault(url, "initiate", "html_error")
    response = initiate(url)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in response.text


def test_reset_fault_drops_the_connection(url):
    set_fault(url, "initiate", "reset")
    # The client sees the connection reset or, when the kernel's timing differs,
    # closed without an answer: either way no HTTP response ever arrives.
    with pytest.raises(requests.ConnectionError, match="reset|aborted|closed"):
        initiate(url)
    # The server itself carries on.
    assert requests.get(f"{url}/sandbox/stats", timeout=5).json()["initiate"] == 1


# --- Refunds ------------------------------------------------------------------------


def refund(url, transaction_id, headers=AUTH, **kwargs):
    return requests.post(
        f"{url}/api/merchant-transaction/{transaction_id}/refund/",
        headers=headers,
        timeout=5,
        **kwargs,
    )


def paid_transaction(url) -> tuple[str, str]:
    pidx = start_payment(url)
    return pidx, dict(callback_params(pay(url, pidx)))["transaction_id"]


def test_refund_without_amount_is_full(url):
    pidx, transaction_id = paid_transaction(url)
    response = refund(url, transaction_id)
    assert response.status_code == 200
    assert response.json() == {"detail": "Transaction refund successful."}
    result = lookup(url, pidx)
    assert result.status_code == 200
    assert result.json()["status"] == "Refunded"
    assert result.json()["refunded"] is True


def test_refund_of_part_of_the_amount_is_partial(url):
    pidx, transaction_id = paid_transaction(url)
    assert refund(url, transaction_id, json={"amount": 500}).status_code == 200
    assert lookup(url, pidx).json()["status"] == "Partially Refunded"


def test_refund_errors(url):
    _, transaction_id = paid_transaction(url)
    assert refund(url, transaction_id, headers={}).status_code == 401
    assert refund(url, transaction_id, json={"amount": 99999}).status_code == 400
    assert refund(url, "NoSuchTransaction12345").json() == {
        "detail": "Not found.",
        "error_key": "validation_error",
    }
    assert refund(url, transaction_id).status_code == 200
    again = refund(url, transaction_id)
    assert again.status_code == 400
    assert "detail" in again.json()


def test_partial_refunds_add_up_to_a_full_one(url):
    pidx, transaction_id = paid_transaction(url)
    assert refund(url, transaction_id, json={"amount": 300}).status_code == 200
    too_much = refund(url, transaction_id, json={"amount": 1001})
    assert too_much.status_code == 400
    assert too_much.json() == {
        "amount": ["Refund amount must be between 1 and 1000 paisa."],
        "error_key": "validation_error",
    }
    assert lookup(url, pidx).json()["status"] == "Partially Refunded"
    assert refund(url, transaction_id).status_code == 200  # the remaining 1000
    assert lookup(url, pidx).json()["status"] == "Refunded"


@pytest.mark.parametrize("amount", [0, -5, "ten", 12.5])
def test_refund_amounts_that_are_not_positive_whole_paisa_are_refused(url, amount):
    pidx, transaction_id = paid_transaction(url)
    response = refund(url, transaction_id, json={"amount": amount})
    assert response.status_code == 400
    assert "amount" in response.json()
    assert lookup(url, pidx).json()["status"] == "Completed"


def test_an_unpaid_transaction_cannot_be_refunded(url):
    pidx = start_payment(url)
    forced = requests.post(
        f"{url}/sandbox/payments/{pidx}",
        json={"status": "Pending", "transaction_id": "PendingTransaction1234"},
        timeout=5,
    )
    assert forced.status_code == 200
    response = refund(url, "PendingTransaction1234")
    assert response.status_code == 400
    assert response.json()["detail"] == "Transaction is Pending; it cannot be refunded."


def test_refund_faults_and_counts(url):
    pidx, transaction_id = paid_transaction(url)
    set_fault(url, "refund", "http_503")
    assert refund(url, transaction_id).status_code == 503
    assert lookup(url, pidx).json()["status"] == "Completed"
    assert requests.get(f"{url}/sandbox/stats", timeout=5).json()["refund"] == 1
