"""`make bench`'s sale: a hundred buyers while Khalti is slow, then while it hangs.

The shop runs with the production recipe's gunicorn settings as shipped
(deploy/gunicorn.conf.py), the sandbox under gunicorn with threads enough
never to be the bottleneck. Each buyer is a browser of its own (cookies,
CSRF tokens) coming from an address of its own through a trusted proxy
(FORWARDED_ALLOW=1 and X-Forwarded-For, as behind nginx), and does what a
buyer does: catalog, add to cart, checkout page, checkout POST, return URL
(a lookup). Meanwhile one visitor loads the catalog every 50 ms: what the
storefront feels like to everyone else during the sale.

- Slow: initiate and lookup each answer after 1 s; 100 buyers at once.
- Hanging: initiate and lookup never answer within the client's timeout;
  100 buyers, one every 250 ms. Then Khalti comes back, and a few more
  buyers check that checkouts work again without anyone doing anything.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import create_engine, func, make_url, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import Order  # noqa: E402

BUYERS = 100
SANDBOX_KEY = "sale-key"
BUYER = {"name": "Sale Buyer", "email": "sale@example.com", "phone": "9812345678"}

# The goals, in milliseconds.
CATALOG_P99_GOAL = 100
PAYMENT_P50_GOAL, PAYMENT_P99_GOAL = 1100, 1500
OUTAGE_P90_GOAL = 1000
OUTAGE_LATE_AFTER_S = 15  # "buyers arriving 15 s or more into the outage"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(
    stack: ExitStack, args: list[str], env: dict, tree: Path = ROOT
) -> tuple[str, int]:
    """gunicorn with `args`, from `tree`, on a free port; return (url, master pid)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *args, "--bind", f"127.0.0.1:{port}"],
        cwd=tree,
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(process.wait, 30)
    stack.callback(process.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/", timeout=10)
            return url, process.pid
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start: {args}")


def rss_mb(master_pid: int) -> float:
    """Resident memory of all of a gunicorn master's workers, in MB."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text()
    total = 0
    for pid in children.split():
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return total / 1024


class Buyer:
    """One browser, from its own address, through the buyer's five steps."""

    def __init__(self, shop_url: str, number: int):
        self.url = shop_url
        self.http = requests.Session()
        self.http.headers["X-Forwarded-For"] = f"10.{number // 250}.{number % 250}.7"
        self.timings: dict[str, float] = {}
        self.problems: list[str] = []

    def timed(self, step: str, method: str, path: str, **kwargs) -> requests.Response:
        started = time.monotonic()
        response = self.http.request(
            method, self.url + path, allow_redirects=False, timeout=60, **kwargs
        )
        self.timings[step] = (time.monotonic() - started) * 1000
        return response

    def shop(self) -> None:
        catalog = self.timed("catalog", "GET", "/")
        # The session's CSRF token, good for every form of this browser.
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', catalog.text)[1]
        added = self.timed(
            "add",
            "POST",
            "/cart/add",
            data={"csrf_token": csrf, "product_id": 1, "quantity": 1},
        )
        self.expect("add", added, 303)
        page = self.timed("checkout page", "GET", "/checkout").text
        form = BUYER | {
            "csrf_token": csrf,
            "checkout_token": re.search(
                r'name="checkout_token"[^>]* value="([^"]+)"', page
            )[1],
        }
        checkout = self.timed("checkout", "POST", "/checkout", data=form)
        if checkout.status_code != 303:
            self.problems.append(f"checkout {checkout.status_code}")
            return
        pidx = dict(
            part.split("=")
            for part in urlsplit(checkout.headers["Location"]).query.split("&")
        )["pidx"]
        back = self.timed("return", "GET", f"/successfull-payment?pidx={pidx}")
        self.expect("return", back, 303)

    def expect(self, step: str, response: requests.Response, status: int) -> None:
        if response.status_code != status:
            self.problems.append(f"{step} {response.status_code}")


class CatalogWatcher(threading.Thread):
    """One visitor loading the catalog every 50 ms until told to stop."""

    def __init__(self, shop_url: str):
        super().__init__(daemon=True)
        self.url = shop_url + "/"
        self.latencies: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        http = requests.Session()
        while not self.stopping.wait(0.05):
            started = time.monotonic()
            http.get(self.url, timeout=60)
            self.latencies.append((time.monotonic() - started) * 1000)

    def stop(self) -> list[float]:
        self.stopping.set()
        self.join()
        return self.latencies


class ConnectionWatcher(threading.Thread):
    """PostgreSQL's open client connections, sampled every 50 ms (its own
    connection not counted): how many the shop's pools really hold."""

    def __init__(self, database_url: str):
        super().__init__(daemon=True)
        self.engine = create_engine(database_url)
        self.most = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        count = text(
            "SELECT count(*) - 1 FROM pg_stat_activity"
            " WHERE datname = current_database() AND backend_type = 'client backend'"
        )
        with self.engine.connect() as connection:
            while not self.stopping.wait(0.05):
                self.most = max(self.most, connection.scalar(count))
                connection.rollback()

    def stop(self) -> int:
        self.stopping.set()
        self.join()
        self.engine.dispose()
        return self.most


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_buyers(shop_url: str, arrive_every: float, first: int) -> list[Buyer]:
    """BUYERS buyers, one every `arrive_every` seconds (0: all at once)."""
    buyers = [Buyer(shop_url, first + n) for n in range(BUYERS)]
    threads = []
    for buyer in buyers:
        thread = threading.Thread(target=buyer.shop)
        buyer.arrived = time.monotonic()
        thread.start()
        threads.append(thread)
        time.sleep(arrive_every)
    for thread in threads:
        thread.join()
    return buyers


def set_faults(sandbox_url: str, fault: str, seconds: float | None = None) -> None:
    for endpoint in ("initiate", "lookup"):
        requests.post(
            f"{sandbox_url}/sandbox/faults",
            json={"endpoint": endpoint, "fault": fault, "seconds": seconds},
            timeout=10,
        ).raise_for_status()


def committed_payments(database_url: str) -> int:
    """Orders whose payment link (pidx) is committed."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.scalar(
            select(func.count(Order.id)).where(Order.pidx.isnot(None))
        )
    engine.dispose()
    return count


def sale(database_url: str, compared_dir: str | None = None) -> list[str]:
    """Run both sales on the (ready) database; return the report's lines.

    With `compared_dir` (another checkout of the shop), its shop, with its
    own recipe, goes through the same two sales after this one's.
    """
    trees = [("this tree", ROOT)]
    if compared_dir:
        trees.append((f"compared: {compared_dir}", Path(compared_dir)))
    lines = []
    with ExitStack() as stack:
        sandbox_url, _ = serve(
            stack,
            ["sandbox:create_app()", "--worker-class", "gthread", "--threads", "400"],
            {"KHALTI_SECRET_KEY": SANDBOX_KEY},
        )
        for label, tree in trees:
            lines += ["", f"### {label}"]
            lines += sales_of(tree, sandbox_url, database_url)
    return lines


def sales_of(tree: Path, sandbox_url: str, database_url: str) -> list[str]:
    """Both sales on the shop of `tree`, served with its own recipe."""
    with ExitStack() as stack:
        shop_url, shop_pid = serve(
            stack,
            ["-c", "deploy/gunicorn.conf.py"],
            {
                "SECRET_KEY": "sale-secret-key-of-at-least-32-characters",
                "DATABASE_URL": database_url,
                "KHALTI_SECRET_KEY": SANDBOX_KEY,
                "KHALTI_BASE_URL": f"{sandbox_url}/api/v2/",
                "FORWARDED_ALLOW": "1",
            },
            tree,
        )
        memory_before = rss_mb(shop_pid)
        lines = slow_sale(shop_url, sandbox_url, database_url)
        lines += hanging_sale(shop_url, sandbox_url)
        memory_after = rss_mb(shop_pid)
    return lines + [
        "",
        f"The shop's workers together: {memory_before:.0f} MB before the sales,"
        f" {memory_after:.0f} MB after ({memory_after - memory_before:+.0f} MB).",
    ]


def slow_sale(shop_url: str, sandbox_url: str, database_url: str) -> list[str]:
    set_faults(sandbox_url, "delay", 1.0)
    before = committed_payments(database_url)
    watcher = CatalogWatcher(shop_url)
    watcher.start()
    postgres = make_url(database_url).get_backend_name() == "postgresql"
    if postgres:
        connections = ConnectionWatcher(database_url)
        connections.start()
    buyers = run_buyers(shop_url, 0, first=0)
    catalog = watcher.stop()
    set_faults(sandbox_url, "none")
    checkouts = [b.timings["checkout"] for b in buyers if "checkout" in b.timings]
    returns = [b.timings["return"] for b in buyers if "return" in b.timings]
    answered = sum("return" in b.timings for b in buyers)
    problems = [problem for b in buyers for problem in b.problems]
    committed = committed_payments(database_url) - before
    rows = [
        ("catalog during the sale", catalog),
        ("checkout POST (+ initiate, 1 s)", checkouts),
        ("return URL (+ lookup, 1 s)", returns),
    ]
    lines = [
        "",
        f"#### Khalti answering in 1 s: {BUYERS} buyers at once",
        "",
        "| | p50 ms | p99 ms | max ms | count |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {percentile(values, 0.5):.0f} | {percentile(values, 0.99):.0f}"
            f" | {max(values, default=float('nan')):.0f} | {len(values)} |"
        )
    if postgres:
        lines += [
            "",
            f"PostgreSQL connections open at once during the sale, at most:"
            f" {connections.stop()}, for {BUYERS} buyers waiting on Khalti.",
        ]
    goals = [
        (
            f"catalog p99 during the sale <= {CATALOG_P99_GOAL} ms",
            percentile(catalog, 0.99) <= CATALOG_P99_GOAL,
        ),
        (
            f"checkout and return p50 <= {PAYMENT_P50_GOAL} ms,"
            f" p99 <= {PAYMENT_P99_GOAL} ms",
            all(
                percentile(values, 0.5) <= PAYMENT_P50_GOAL
                and percentile(values, 0.99) <= PAYMENT_P99_GOAL
                for values in (checkouts, returns)
            ),
        ),
        (
            "no error, and every checkout answered has its order and pidx"
            f" committed ({len(problems)} errors; {len(checkouts)} answered,"
            f" {committed} committed)",
            not problems and answered == BUYERS and committed >= len(checkouts),
        ),
    ]
    return lines + goal_lines(goals)


def hanging_sale(shop_url: str, sandbox_url: str) -> list[str]:
    set_faults(sandbox_url, "hang", 60.0)
    watcher = CatalogWatcher(shop_url)
    watcher.start()
    outage_began = time.monotonic()
    buyers = run_buyers(shop_url, 0.25, first=BUYERS)
    catalog = watcher.stop()
    late = [
        b.timings["checkout"]
        for b in buyers
        if b.arrived - outage_began >= OUTAGE_LATE_AFTER_S and "checkout" in b.timings
    ]
    statuses = {}
    for problem in (p for b in buyers for p in b.problems):
        statuses[problem] = statuses.get(problem, 0) + 1
    set_faults(sandbox_url, "none")
    time.sleep(6)  # longer than the breaker's cooldown
    after = [Buyer(shop_url, 2 * BUYERS + n) for n in range(5)]
    for buyer in after:
        buyer.shop()
    recovered = sum(not b.problems for b in after)
    lines = [
        "",
        f"#### Khalti hanging: {BUYERS} buyers, one every 250 ms",
        "",
        f"Catalog during the outage: p50 {percentile(catalog, 0.5):.0f} ms,"
        f" p99 {percentile(catalog, 0.99):.0f} ms, max {max(catalog):.0f} ms."
        f" Checkout of the {len(late)} buyers arriving {OUTAGE_LATE_AFTER_S} s or"
        f" more into it: p50 {percentile(late, 0.5):.0f} ms,"
        f" p90 {percentile(late, 0.9):.0f} ms. Answers: "
        + ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
        + f". Once Khalti answered again, {recovered} of {len(after)} new buyers"
        " paid-to-return without trouble.",
    ]
    goals = [
        (
            f"catalog p99 during the outage <= {CATALOG_P99_GOAL} ms",
            percentile(catalog, 0.99) <= CATALOG_P99_GOAL,
        ),
        (
            f"late buyers' checkout answered within {OUTAGE_P90_GOAL} ms (p90)",
            bool(late) and percentile(late, 0.9) <= OUTAGE_P90_GOAL,
        ),
        (
            "checkouts work again on their own once Khalti answers",
            recovered == len(after),
        ),
    ]
    return lines + goal_lines(goals)


def goal_lines(goals: list[tuple[str, bool]]) -> list[str]:
    lines = ["", "| goal | |", "|---|---|"]
    lines += [f"| {goal} | {'met' if met else '**not met**'} |" for goal, met in goals]
    return lines


if __name__ == "__main__":
    print("\n".join(sale(*sys.argv[1:])))
