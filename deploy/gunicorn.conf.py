"""gunicorn's settings for the shop behind nginx on the same machine.

    gunicorn -c deploy/gunicorn.conf.py

Options given on the command line win over these (the tests pass --bind).
"""

import multiprocessing
from pathlib import Path

wsgi_app = "app:create_app()"
# The project folder, wherever this file is started from: app.py and .env.
chdir = str(Path(__file__).resolve().parent.parent)

# Only nginx, on this machine, talks to gunicorn.
bind = "127.0.0.1:8000"

# One process per CPU, each with many threads. A buyer waiting on Khalti
# (hundreds of milliseconds on a good day, seconds on a bad one) holds a
# thread but no CPU and no database connection, so a sale needs threads
# enough for every buyer waiting at once; more processes would only split
# the circuit breaker's knowledge of Khalti (khalti.CircuitBreaker, one per
# process) and the memory. docs/BENCHMARKS.md has the sale's numbers.
workers = multiprocessing.cpu_count()
worker_class = "gthread"
threads = 64

# Longer than the slowest checkout: Khalti's client gives up after 3.05 s to
# connect plus 10 s to answer (khalti.DEFAULT_TIMEOUT), and a second click on
# "Pay" waits at most as long for the first one's payment link.
timeout = 30
graceful_timeout = 30

# gunicorn sets the request's scheme from X-Forwarded-Proto, but only for
# connections from these addresses (nginx). Only the header nginx sets is
# listed: with gunicorn's default list, a client's own X-Forwarded-Ssl would
# contradict nginx's header and the request would fail.
forwarded_allow_ips = "127.0.0.1,::1"
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# Requests and errors (the shop's payment log lines too) to standard output
# and error, which systemd keeps in the journal.
accesslog = "-"
errorlog = "-"
