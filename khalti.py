"""A small client for Khalti's ePayment (KPG-2) web checkout API.

Two calls make a payment: `initiate` asks Khalti for a payment link, and
`lookup` asks Khalti what became of it. Nothing else Khalti or a browser says
is proof of payment. A third, `refund`, sends money back; lookup then shows
whether it did. This module knows HTTP and Khalti's JSON, and nothing
about Flask or the shop's database.
"""

import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import requests

SANDBOX_BASE_URL = "https://dev.khalti.com/api/v2/"
PRODUCTION_BASE_URL = "https://khalti.com/api/v2/"

# (connect, read) seconds. Khalti documents no timeout; without one a hung
# gateway would hold the buyer's page, and a worker, forever.
DEFAULT_TIMEOUT = (3.05, 10)

# Lookup answers these two with HTTP 400, yet the body is an ordinary lookup
# result: a payment that will never complete, not a broken request.
FINISHED_WITH_400 = {"Expired", "User canceled"}


class KhaltiError(Exception):
    """Anything that kept us from getting a usable answer from Khalti."""


class KhaltiConnectionError(KhaltiError):
    """Khalti could not be reached, or did not answer in time."""


class KhaltiUnavailable(KhaltiConnectionError):
    """Not even tried: Khalti stopped answering a moment ago (see CircuitBreaker)."""


class KhaltiAPIError(KhaltiError):
    """Khalti answered, but with an error or with something we cannot read."""

    def __init__(self, message: str, *, status_code: int, body: object = None):
        super().__init__(message)
        self.status_code = status_code
        self.body = body


@dataclass(frozen=True)
class InitiatedPayment:
    pidx: str
    payment_url: str
    expires_at: str
    raw: dict


@dataclass(frozen=True)
class PaymentLookup:
    pidx: str
    status: str
    total_amount: int
    transaction_id: str | None
    raw: dict


@dataclass(frozen=True)
class RefundAccepted:
    detail: str
    raw: dict


class CircuitBreaker:
    """Stop waiting on Khalti for a while once it has stopped answering.

    When Khalti hangs, every call waits for the client's whole timeout, and
    every buyer who checks out meanwhile waits with it. After `threshold`
    calls in a row found no Khalti (a timeout or a refused connection), the
    breaker opens: calls fail at once with KhaltiUnavailable, nothing sent.
    `cooldown` seconds later one trial call goes through (half-open); if
    Khalti answers it, anything at all, even an error, the breaker closes
    and calls flow again; if not, it stays open for another cooldown.
    One breaker serves all the threads of a process; each process learns
    about Khalti on its own.
    """

    def __init__(self, threshold: int = 5, cooldown: float = 5.0):
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures_in_a_row = 0
        self.opened_at: float | None = None
        self.trial_running = False
        self.lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.trial_running else "open"

    def before_call(self) -> None:
        """Let a call through, or raise KhaltiUnavailable."""
        with self.lock:
            if self.opened_at is None:
                return
            waited = time.monotonic() - self.opened_at
            if self.trial_running or waited < self.cooldown:
                raise KhaltiUnavailable("Khalti is not answering; not tried.")
            self.trial_running = True

    def answered(self) -> None:
        with self.lock:
            self.failures_in_a_row = 0
            self.opened_at = None
            self.trial_running = False

    def not_answered(self) -> None:
        with self.lock:
            self.failures_in_a_row += 1
            if self.trial_running or self.failures_in_a_row >= self.threshold:
                self.opened_at = time.monotonic()
            self.trial_running = False


class KhaltiClient:
    def __init__(
        self,
        secret_key: str,
        base_url: str = SANDBOX_BASE_URL,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        breaker: CircuitBreaker | None = None,
    ):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        # Guards initiate and lookup (see CircuitBreaker); a new one, of this
        # client's alone, unless the caller shares one between clients.
        self.breaker = breaker or CircuitBreaker()
        # One session per client reuses the TCP and TLS connection to Khalti.
        self.session = session or requests.Session()
        # Proxy and CA bundle settings from the environment (HTTPS_PROXY,
        # NO_PROXY, REQUESTS_CA_BUNDLE), read once here rather than on every
        # call: requests would otherwise scan os.environ and look for a
        # ~/.netrc on each request, a few percent of a checkout's time.
        settings = self.session.merge_environment_settings(
            self.base_url, {}, None, None, None
        )
        self.session.proxies.update(settings["proxies"])
        self.session.verify = settings["verify"]
        self.session.trust_env = False
        # The word "Key" and a space, then the key: Khalti answers 401
        # "Authentication credentials were not provided." without the prefix.
        self.session.headers["Authorization"] = f"Key {secret_key}"

    def initiate(self, payload: dict) -> InitiatedPayment:
        """Ask Khalti for a payment link (POST epayment/initiate/).

        `payload` is Khalti's request body: amount in paisa, purchase_order_id,
        return_url and the rest. Initiate is not idempotent (every call makes a
        new pidx), so it is never retried here.

        :raises KhaltiConnectionError: Khalti could not be reached in time, or
            (KhaltiUnavailable) was not tried because it has stopped answering.
        :raises KhaltiAPIError: Khalti refused the request or answered nonsense.
        """
        status_code, body = self._post_guarded("epayment/initiate/", payload)
        if status_code != 200:
            raise KhaltiAPIError(
                describe_error(body), status_code=status_code, body=body
            )
        try:
            return InitiatedPayment(
                pidx=body["pidx"],
                payment_url=body["payment_url"],
                expires_at=body["expires_at"],
                raw=body,
            )
        except (KeyError, TypeError) as exc:
            raise KhaltiAPIError(
                "Khalti's answer has no payment link.", status_code=200, body=body
            ) from exc

    def lookup(self, pidx: str) -> PaymentLookup:
        """Ask Khalti for the state of a payment (POST epayment/lookup/).

        :raises KhaltiConnectionError: Khalti could not be reached in time, or
            (KhaltiUnavailable) was not tried because it has stopped answering.
        :raises KhaltiAPIError: Khalti answered with an error (401, 404 for an
            unknown pidx, 5xx) or with something we cannot read.
        """
        status_code, body = self._post_guarded("epayment/lookup/", {"pidx": pidx})
        is_result = status_code == 200 or (
            status_code == 400
            and isinstance(body, dict)
            and body.get("status") in FINISHED_WITH_400
        )
        if not is_result:
            raise KhaltiAPIError(
                describe_error(body), status_code=status_code, body=body
            )
        try:
            lookup = PaymentLookup(
                pidx=body["pidx"],
                status=body["status"],
                total_amount=int(body["total_amount"]),
                transaction_id=body.get("transaction_id"),
                raw=body,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KhaltiAPIError(
                "Khalti's lookup answer is incomplete.", status_code=200, body=body
            ) from exc
        # An answer about some other payment is no answer about this one.
        if lookup.pidx != pidx:
            raise KhaltiAPIError(
                "Khalti answered about a different payment.", status_code=200, body=body
            )
        return lookup

    def refund(
        self, transaction_id: str, amount_paisa: int | None = None
    ) -> RefundAccepted:
        """Refund a paid transaction, in full (no amount) or in part.

        The refund API is not under the epayment API's /api/v2/ but one level
        up: POST <API root>/merchant-transaction/<transaction_id>/refund/,
        e.g. https://khalti.com/api/merchant-transaction/.../refund/. Khalti
        documents only its success answer; any other answer is an error.
        Like initiate it moves money, so it is never retried here. It does
        not go through the circuit breaker: a refund not even tried would
        be a third outcome for staff to tell from "refused" and "unknown",
        and a member of staff can wait out a timeout.

        :raises KhaltiConnectionError: no answer in time; the refund may or
            may not have happened.
        :raises KhaltiAPIError: Khalti refused (4xx, nothing refunded) or had
            trouble (5xx, the refund may or may not have happened).
        """
        # "../" from .../api/v2/ is .../api/: urljoin resolves it like a browser.
        path = f"../merchant-transaction/{quote(transaction_id, safe='')}/refund/"
        payload = {} if amount_paisa is None else {"amount": amount_paisa}
        status_code, body = self._post(path, payload)
        if status_code != 200 or not isinstance(body, dict):
            raise KhaltiAPIError(
                describe_error(body), status_code=status_code, body=body
            )
        return RefundAccepted(detail=str(body.get("detail", "")), raw=body)

    def close(self) -> None:
        self.session.close()

    def _post_guarded(self, path: str, payload: dict) -> tuple[int, object]:
        """_post, through the circuit breaker."""
        self.breaker.before_call()
        try:
            answer = self._post(path, payload)
        except KhaltiConnectionError:
            self.breaker.not_answered()
            raise
        except KhaltiAPIError:
            self.breaker.answered()  # an error, but from a Khalti that is up
            raise
        self.breaker.answered()
        return answer

    def _post(self, path: str, payload: dict) -> tuple[int, object]:
        """POST JSON to Khalti; return the HTTP status and the decoded body."""
        url = urljoin(self.base_url, path)
        try:
            response = self.session.post(url, json=payload, timeout=self.timeout)
        except requests.RequestException as exc:
            raise KhaltiConnectionError(f"Could not reach Khalti: {exc}") from exc
        if response.status_code >= 500:
            raise KhaltiAPIError(
                f"Khalti is having trouble (HTTP {response.status_code}).",
                status_code=response.status_code,
            )
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise KhaltiAPIError(
                f"Khalti's answer is not JSON (HTTP {response.status_code}).",
                status_code=response.status_code,
            ) from exc


def describe_error(body: object) -> str:
    """Turn Khalti's error body into one readable sentence.

    Khalti uses two shapes: {"detail": "..."} for authentication and lookup
    errors, and {"field": ["message", ...], "error_key": ...} for validation.
    """
    if not isinstance(body, dict):
        return "Khalti refused the request."
    if isinstance(body.get("detail"), str):
        return body["detail"]
    messages = [
        f"{field}: {' '.join(map(str, problems))}"
        for field, problems in body.items()
        if isinstance(problems, list)
    ]
    return "; ".join(messages) or "Khalti refused the request."
