"""khalti.py against the sandbox over real HTTP: each answer Khalti can give."""

import time

import pytest
from conftest import ServedSandbox
from served_shop import free_port

import khalti


def payload(**changes) -> dict:
    return {
        "return_url": "http://localhost:5000/successfull-payment",
        "website_url": "http://localhost:5000/",
        "amount": 1300,
        "purchase_order_id": "order-1",
        "purchase_order_name": "Test order",
        **changes,
    }


@pytest.fixture
def client(khalti_sandbox):
    client = khalti.KhaltiClient("any-key", khalti_sandbox.api_url, timeout=(2, 2))
    yield client
    client.close()


def test_initiate_returns_a_payment_link(client, khalti_sandbox):
    payment = client.initiate(payload())
    assert len(payment.pidx) == 22
    assert payment.payment_url == f"{khalti_sandbox.url}/?pidx={payment.pidx}"
    assert payment.expires_at.endswith("+05:45")


def test_lookup_of_a_new_payment_is_initiated(client):
    payment = client.initiate(payload())
    lookup = client.lookup(payment.pidx)
    assert (lookup.status, lookup.total_amount) == ("Initiated", 1300)
    assert lookup.transaction_id is None


def test_lookup_after_paying_is_completed(client, khalti_sandbox):
    payment = client.initiate(payload())
    khalti_sandbox.pay(payment.payment_url)
    lookup = client.lookup(payment.pidx)
    assert lookup.status == "Completed"
    assert lookup.transaction_id


@pytest.mark.parametrize("status", ["User canceled", "Expired"])
def test_lookup_http_400_with_a_status_is_a_result(client, khalti_sandbox, status):
    payment = client.initiate(payload())
    khalti_sandbox.force(payment.pidx, status)
    assert client.lookup(payment.pidx).status == status


def test_lookup_of_unknown_pidx_raises_not_found(client):
    with pytest.raises(khalti.KhaltiAPIError) as error:
        client.lookup("NoSuchPidxAnywhere1234")
    assert error.value.status_code == 404
    assert str(error.value) == "Not found."


def test_validation_errors_become_one_readable_message(client):
    with pytest.raises(khalti.KhaltiAPIError) as error:
        client.initiate(payload(amount=999))
    assert error.value.status_code == 400
    assert "Amount should be greater than Rs. 10" in str(error.value)


def test_authorization_header_is_key_and_the_secret():
    keyed = ServedSandbox({"KHALTI_SECRET_KEY": "right-secret"})
    try:
        right = khalti.KhaltiClient("right-secret", keyed.api_url)
        assert right.initiate(payload()).pidx
        wrong = khalti.KhaltiClient("wrong-secret", keyed.api_url)
        with pytest.raises(khalti.KhaltiAPIError) as error:
            wrong.initiate(payload())
        assert error.value.status_code == 401
        assert str(error.value) == "Invalid token."
    finally:
        keyed.stop()


@pytest.mark.parametrize("fault", ["http_500", "http_502", "http_503", "html_error"])
def test_server_errors_raise_api_error(client, khalti_sandbox, fault):
    khalti_sandbox.fault("initiate", fault)
    with pytest.raises(khalti.KhaltiAPIError):
        client.initiate(payload())


def test_malformed_json_raises_api_error(client, khalti_sandbox):
    khalti_sandbox.fault("lookup", "malformed_json")
    with pytest.raises(khalti.KhaltiAPIError, match="not JSON"):
        client.lookup("AnyPidx")


def test_hang_raises_connection_error_within_the_timeout(client, khalti_sandbox):
    khalti_sandbox.fault("lookup", "hang", seconds=4)
    started = time.monotonic()
    with pytest.raises(khalti.KhaltiConnectionError):
        client.lookup("AnyPidx")
    assert time.monotonic() - started < 3.5


def test_connection_reset_raises_connection_error(client, khalti_sandbox):
    khalti_sandbox.fault("initiate", "reset")
    with pytest.raises(khalti.KhaltiConnectionError):
        client.initiate(payload())


def test_nothing_listening_raises_connection_error():
    client = khalti.KhaltiClient("k", f"http://127.0.0.1:{free_port()}/api/v2/")
    with pytest.raises(khalti.KhaltiConnectionError):
        client.lookup("AnyPidx")


# --- Refunds -----------------------------------------------------------------


def paid(client, khalti_sandbox) -> tuple[str, str]:
    payment = client.initiate(payload())
    khalti_sandbox.pay(payment.payment_url)
    return payment.pidx, client.lookup(payment.pidx).transaction_id


def test_refund_in_full_and_in_part(client, khalti_sandbox):
    pidx, transaction_id = paid(client, khalti_sandbox)
    accepted = client.refund(transaction_id, 300)
    assert accepted.detail == "Transaction refund successful."
    assert client.lookup(pidx).status == "Partially Refunded"
    client.refund(transaction_id)  # no amount: the rest
    assert client.lookup(pidx).status == "Refunded"


def test_refund_goes_to_the_api_root_not_under_v2(khalti_sandbox):
    # Only /api/merchant-transaction/... exists: a client that put the refund
    # under /api/v2/ would get a 404 here.
    client = khalti.KhaltiClient("any-key", khalti_sandbox.api_url)
    _, transaction_id = paid(client, khalti_sandbox)
    assert client.refund(transaction_id).detail == "Transaction refund successful."
    assert khalti_sandbox.stats()["refund"] == 1


def test_refund_refusals_raise_api_errors_with_khaltis_message(client, khalti_sandbox):
    _, transaction_id = paid(client, khalti_sandbox)
    with pytest.raises(khalti.KhaltiAPIError) as error:
        client.refund(transaction_id, 5000)
    assert error.value.status_code == 400
    assert str(error.value) == "amount: Refund amount must be between 1 and 1300 paisa."
    with pytest.raises(khalti.KhaltiAPIError) as error:
        client.refund("NoSuchTransaction")
    assert error.value.status_code == 404


def test_refund_timeout_is_a_connection_error(client, khalti_sandbox):
    _, transaction_id = paid(client, khalti_sandbox)
    khalti_sandbox.fault("refund", "hang", seconds=5)
    with pytest.raises(khalti.KhaltiConnectionError):
        client.refund(transaction_id)
