"""Flask-Limiter's one Limiter, for the back office's login throttle and the
buyer's checkout alike. Its own module so that both halves can import it.

The counters live in RATELIMIT_STORAGE_URI: in memory, each process counts
alone; with several workers use a shared store (redis://...).
"""

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# Keyed on the client's address (the real one behind a trusted proxy: see
# FORWARDED_ALLOW). A 429 carries Retry-After (RATELIMIT_HEADERS_ENABLED).
limiter = Limiter(key_func=get_remote_address)

# Checkout POSTs, "Pay again" and "Check again" share one budget per address:
# each starts or looks up a payment at Khalti. CHECKOUT_RATE_LIMIT sets it.
buyer_actions = limiter.shared_limit(
    lambda: current_app.config["CHECKOUT_RATE_LIMIT"],
    scope="buyer-actions",
    methods=["POST"],
)
