"""`make bench`: what a page and a payment cost, next to the bare-Flask limit.

Starts, on loopback only:
- the sandbox (Khalti's stand-in) under gunicorn, 1 worker x 4 threads: one
  process, because it keeps its payments in memory;
- the shop under gunicorn, WORKERS x THREADS, on a fresh SQLite database, or
  on the (empty) database given with --database-url;
- bench/baseline.py (a bare Flask view) under the same gunicorn settings;
- bench/floor.py (the checkout floor: only the work the guarantees need,
  in SQLAlchemy Core) under the same settings, on the same database;
then drives each with wrk (bench/wrk.lua), every run bounded in time and in
requests; then runs the sale (bench/sale.py) on the same database; and
prints a Markdown report (also written to .run/bench-<database>.md), with
the goals, each met or not met.

The routes are measured in ROUNDS interleaved rounds, each starting with a
bare Flask run: every route's cost is divided by the bare page's cost in its
own round, so a machine that gets busier halfway through moves both alike.
Besides latency it reports the CPU time each server spent per request, read
from /proc: that number hardly moves when other programs share the machine.

With --compare-with DIR (`make bench COMPARE=DIR`), a second shop served
from DIR, another checkout of this project (e.g. `git worktree add
/tmp/before main`), runs beside this one on the same database, and its
catalog, checkout, return and order page are measured in the same rounds:
before and after a change, side by side, on a machine in the same state.

Environment knobs: BENCH_SECONDS (per measured run, default 4), BENCH_ROUNDS
(default 3), BENCH_CONNECTIONS (default 8, one per gunicorn thread).
"""

import argparse
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
from sqlalchemy import create_engine, func, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app as shop_module  # noqa: E402
from bench import floor, sale  # noqa: E402
from models import Order, Product, db, seed_catalog  # noqa: E402

WORKERS, THREADS = 2, 4
SECONDS = int(os.environ.get("BENCH_SECONDS", 4))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", WORKERS * THREADS))
MAX_REQUESTS = 50_000
SANDBOX_KEY = "bench-key"
BUYER = {"name": "Bench Buyer", "email": "bench@example.com", "phone": "9812345678"}
# Enough that no checkout in the run ever finds a product sold out.
ENDLESS_STOCK = 10**9
# Where wrk puts each checkout's one-time token (see checkout_form).
TOKEN_SLOT = "TOKENSLOT"
# Each measured route of the shop, and the row of its floor (bench/floor.py:
# only the work the guarantees need).
FLOORS = {
    "catalog (27 products)": "catalog floor",
    "checkout POST (+ initiate)": "checkout floor",
    "return URL (+ lookup)": "return floor",
}
# Which server answers each row, when it is not the shop.
SERVER_OF_ROUTE = {"bare Flask": "bare Flask"} | dict.fromkeys(FLOORS.values(), "floor")
# The rows of the shop given with --compare-with start with this.
COMPARED = "compared: "


def server_of(route: str) -> str:
    if route.startswith(COMPARED):
        return "compared"
    return SERVER_OF_ROUTE.get(route, "shop")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn(
    stack: ExitStack, app: str, workers: int, threads: int, env: dict, chdir=ROOT
):
    """Serve `app` from `chdir` with gunicorn on a free port; return (url, master)."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}"),
            *("--workers", str(workers), "--worker-class", "gthread"),
            *("--threads", str(threads), "--chdir", str(chdir)),
        ],
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(process.wait, 10)
    stack.callback(process.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=10)
            return url, process
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start {app}")


def worker_rss_mb(master: subprocess.Popen) -> list[float]:
    """Resident memory of each of a gunicorn master's workers, in MB."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text()
    sizes = []
    for pid in children.split():
        status = Path(f"/proc/{pid}/status").read_text()
        kilobytes = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
        sizes.append(kilobytes / 1024)
    return sizes


def cpu_seconds(master: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by a gunicorn master's workers.

    Unlike latency, this hardly changes when other programs share the CPUs,
    so it is the fairer number on a busy machine.
    """
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text()
    ticks = 0
    for pid in children.split():
        # Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends
        # the command name: utime and stime, in clock ticks.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(url: str, seconds: int, connections: int, **request) -> dict:
    """One wrk run; `request` sets method, body, cookie, content_type, authorization."""
    env = {f"BENCH_{name.upper()}": value for name, value in request.items()}
    env["BENCH_MAX_REQUESTS"] = str(MAX_REQUESTS)
    if TOKEN_SLOT in request.get("body", ""):
        # bench/wrk.lua then fills the slot with a new token for each request.
        env["BENCH_TOKEN_SLOT"] = TOKEN_SLOT
        env["BENCH_TOKEN_PREFIX"] = secrets.token_hex(6)
    command = [
        *("wrk", "--threads", "1", "--connections", str(connections)),
        *("--duration", f"{seconds}s", "--timeout", "10s"),
        *("--script", str(ROOT / "bench" / "wrk.lua"), url),
    ]
    output = subprocess.run(
        command, env=os.environ | env, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    if result["errors"] or result["bad_status"]:
        raise RuntimeError(f"{url}: {result}")
    return result


def measure(url: str, connections: int = CONNECTIONS, **request) -> dict:
    """Warm up for a second, then measure for SECONDS.

    Also reports the CPU milliseconds per request spent by each server in
    SERVERS (the shop's, the sandbox's or the baseline's workers).
    """
    warm_up = wrk(url, 1, connections, **request)
    before = {name: cpu_seconds(master) for name, master in SERVERS.items()}
    result = wrk(url, SECONDS, connections, **request)
    result["cpu_ms"] = {
        name: (cpu_seconds(master) - before[name]) / result["requests"] * 1000
        for name, master in SERVERS.items()
    }
    result["served"] = warm_up["requests"] + result["requests"]
    return result


# The gunicorn masters of the servers under test, by name, once started.
SERVERS: dict[str, subprocess.Popen] = {}


# --- The bench database and the buyers' sessions --------------------------


def make_database(url: str) -> None:
    """The sample catalog with stock that never runs out.

    A SQLite file is switched to WAL (kept in the file), which lets the
    shop's readers go on while a checkout writes, as a production SQLite shop
    would be configured.
    """
    app = shop_module.create_app(
        {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url}
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
        seed_catalog()
        db.session.execute(db.update(Product).values(stock=ENDLESS_STOCK))
        db.session.commit()
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        db.engine.dispose()


def add_products(url: str, count: int) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(Product),
            [
                {
                    "slug": f"extra-{n}",
                    "name": f"Extra item {n}",
                    "description": "Bench filler.",
                    "price_paisa": 10000,
                    "stock": ENDLESS_STOCK,
                }
                for n in range(count)
            ],
        )
    engine.dispose()


class Buyer:
    """A browser session on the shop, driven with requests, CSRF tokens scraped."""

    def __init__(self, shop_url: str):
        self.url = shop_url
        self.http = requests.Session()

    def token(self, path: str) -> str:
        page = self.http.get(self.url + path, timeout=10)
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)

    def fill_cart(self, lines: int) -> None:
        token = self.token("/")
        for product_id in range(1, lines + 1):
            added = self.http.post(
                f"{self.url}/cart/add",
                data={"csrf_token": token, "product_id": product_id, "quantity": 1},
                allow_redirects=False,
                timeout=10,
            )
            assert added.status_code == 303, added.text

    def checkout_form(self, checkout_token: str = TOKEN_SLOT) -> str:
        """The body of the checkout POST, with this session's CSRF token.

        Each form may place one order (its checkout_token): sent again, it
        only answers as the first one did. So wrk sends the slot, and puts a
        new token there for each request, as if the page had been reloaded.
        """
        fields = {
            "csrf_token": self.token("/checkout"),
            "checkout_token": checkout_token,
        }
        return urlencode(BUYER | fields)

    def check_out(self) -> str:
        """Place an order; return Khalti's payment URL."""
        answer = self.http.post(
            f"{self.url}/checkout",
            data=self.checkout_form(secrets.token_urlsafe(16)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303, answer.text
        return answer.headers["Location"]

    @property
    def cookie(self) -> str:
        return f"session={self.http.cookies['session']}"


def pay_at_sandbox(payment_url: str) -> str:
    """Pay as a buyer on the sandbox's page; return the shop's return URL."""
    portal = payment_url.split("?")[0].rstrip("/")
    pidx = payment_url.split("pidx=")[1]
    requests.post(
        f"{portal}/pay",
        data={"pidx": pidx, "mobile": "9800000001", "mpin": "1111"},
        timeout=10,
    )
    confirm = requests.post(
        f"{portal}/confirm",
        data={"pidx": pidx, "otp": "987654"},
        allow_redirects=False,
        timeout=10,
    )
    return confirm.headers["Location"]


# --- The run -----------------------------------------------------------------

# The goal: CPU per request, at most this multiple of the route's floor's.
FLOOR_GOAL = 1.5
# Per worker, from the end of the first round in which every route ran (the
# first uses of each code path fill caches) to the end: a leak keeps growing.
MEMORY_GROWTH_GOAL_MB = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        help="an empty database for the shop (default: a fresh SQLite file)",
    )
    parser.add_argument(
        "--compare-with",
        metavar="DIR",
        help="another checkout of the shop, measured beside this one",
    )
    arguments = parser.parse_args()
    database_url, compared_dir = arguments.database_url, arguments.compare_with
    rounds, single, notes = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        database_url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        notes["database"] = database_url.split(":")[0].split("+")[0]
        make_database(database_url)
        floor.create_tables(database_url)
        sandbox_url, SERVERS["sandbox"] = gunicorn(
            stack,
            "sandbox:create_app()",
            1,
            4,
            {"KHALTI_SECRET_KEY": SANDBOX_KEY},
        )
        shop_env = {
            "SECRET_KEY": "bench-secret",
            "DATABASE_URL": database_url,
            "KHALTI_SECRET_KEY": SANDBOX_KEY,
            "KHALTI_BASE_URL": f"{sandbox_url}/api/v2/",
            # wrk buys thousands of times from one address and one cookie.
            "CHECKOUT_RATE_LIMIT": "10000000 per minute",
            "MAX_UNPAID_ORDERS": "10000000",
            "MAX_UNITS_PER_PRODUCT": "10000000",
        }
        shop_url, shop_master = gunicorn(
            stack, "app:create_app()", WORKERS, THREADS, shop_env
        )
        SERVERS["shop"] = shop_master
        baseline_url, SERVERS["bare Flask"] = gunicorn(
            stack, "bench.baseline:app", WORKERS, THREADS, {}
        )
        floor_url, SERVERS["floor"] = gunicorn(
            stack, "bench.floor:app", WORKERS, THREADS, shop_env
        )
        if compared_dir:
            compared_url, SERVERS["compared"] = gunicorn(
                stack, "app:create_app()", WORKERS, THREADS, shop_env, compared_dir
            )
            notes["compared"] = compared_dir
        memory = []

        def run_rounds(routes: dict[str, tuple[str, dict]]) -> None:
            """ROUNDS times: bare Flask, then each route; memory after each round."""
            for _ in range(ROUNDS):
                results = {"bare Flask": measure(baseline_url + "/")}
                for name, (url, request) in routes.items():
                    results[name] = measure(url, **request)
                served = sum(results[name]["served"] for name in routes)
                memory.append((memory[-1][0] + served, worker_rss_mb(shop_master)))
                rounds.append(results)

        print(f"Measuring {ROUNDS} rounds, {SECONDS} s per run, {CONNECTIONS} conn.")
        requests.get(shop_url + "/", timeout=10)
        # Each worker's memory once warm, then after each shop run.
        memory.append((0, worker_rss_mb(shop_master)))
        run_rounds({"catalog (7 products)": (shop_url + "/", {})})

        add_products(database_url, 20)
        buyers = {}
        for lines in (1, 20):
            buyers[lines] = Buyer(shop_url)
            buyers[lines].fill_cart(lines)
        buyer = Buyer(shop_url)
        buyer.fill_cart(3)
        checkout = {
            "method": "POST",
            "body": buyer.checkout_form(),
            "content_type": "application/x-www-form-urlencoded",
            "cookie": buyer.cookie,
        }
        # A payment left unpaid: every return looks it up at Khalti again.
        unpaid = urlsplit(buyer.check_out()).query
        return_url = f"{shop_url}/successfull-payment?{unpaid}"
        receipt = buyer.http.get(pay_at_sandbox(buyer.check_out()), timeout=10)
        assert 'data-order-status="paid"' in receipt.text
        mine = {"cookie": buyer.cookie}
        floor_buyer = Buyer(floor_url)
        floor_checkout = {
            "method": "POST",
            "body": urlencode(
                {"csrf_token": floor_buyer.token("/"), "checkout_token": TOKEN_SLOT}
            ),
            "content_type": "application/x-www-form-urlencoded",
            "cookie": floor_buyer.cookie,
        }
        floor_payment = floor_buyer.http.post(
            f"{floor_url}/checkout",
            data={
                "csrf_token": floor_buyer.token("/"),
                "checkout_token": secrets.token_urlsafe(16),
            },
            allow_redirects=False,
            timeout=10,
        ).headers["Location"]
        floor_return = f"{floor_url}/return?{urlsplit(floor_payment).query}"
        notes["warm"] = len(memory)  # every route has run once after this round
        routes = {
            "catalog (27 products)": (shop_url + "/", {}),
            "catalog floor": (floor_url + "/", {}),
            "cart, 1 line": (shop_url + "/cart", {"cookie": buyers[1].cookie}),
            "cart, 20 lines": (shop_url + "/cart", {"cookie": buyers[20].cookie}),
            "checkout POST (+ initiate)": (shop_url + "/checkout", checkout),
            "checkout floor": (floor_url + "/checkout", floor_checkout),
            "return URL (+ lookup)": (return_url, mine),
            "return floor": (floor_return, {"cookie": floor_buyer.cookie}),
            "order page (paid)": (receipt.url, mine),
        }
        if compared_dir:
            routes |= payment_routes(compared_url, prefix=COMPARED)
        run_rounds(routes)

        # One buyer at a time: the shop's own time is its latency minus the
        # sandbox's answer time for the same call.
        api = {
            "method": "POST",
            "content_type": "application/json",
            "authorization": f"Key {SANDBOX_KEY}",
        }
        single["checkout POST"] = measure(
            shop_url + "/checkout", connections=1, **checkout
        )
        single["sandbox initiate"] = measure(
            f"{sandbox_url}/api/v2/epayment/initiate/",
            connections=1,
            body=json.dumps(initiate_payload(shop_url)),
            **api,
        )
        single["return URL"] = measure(return_url, connections=1, cookie=buyer.cookie)
        pidx = dict(part.split("=") for part in unpaid.split("&"))["pidx"]
        single["sandbox lookup"] = measure(
            f"{sandbox_url}/api/v2/epayment/lookup/",
            connections=1,
            body=json.dumps({"pidx": pidx}),
            **api,
        )
        notes["memory"] = memory
        check_every_checkout_placed_an_order(database_url, rounds, single)
        print("The sale (bench/sale.py), on the same database...")
        sale_lines = sale.sale(database_url, compared_dir)
    report = format_report(summarise(rounds), single, notes)
    report += "\n".join(["", "## The sale", *sale_lines]) + "\n"
    print(report)
    out = ROOT / ".run" / f"bench-{notes['database']}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)


def payment_routes(shop_url: str, prefix: str) -> dict[str, tuple[str, dict]]:
    """The catalog, a checkout, a return and a receipt of one buyer of `shop_url`."""
    buyer = Buyer(shop_url)
    buyer.fill_cart(3)
    checkout = {
        "method": "POST",
        "body": buyer.checkout_form(),
        "content_type": "application/x-www-form-urlencoded",
        "cookie": buyer.cookie,
    }
    unpaid = urlsplit(buyer.check_out()).query
    receipt = buyer.http.get(pay_at_sandbox(buyer.check_out()), timeout=10)
    mine = {"cookie": buyer.cookie}
    return {
        prefix + "catalog (27 products)": (shop_url + "/", {}),
        prefix + "checkout POST (+ initiate)": (shop_url + "/checkout", checkout),
        prefix + "return URL (+ lookup)": (
            f"{shop_url}/successfull-payment?{unpaid}",
            mine,
        ),
        prefix + "order page (paid)": (receipt.url, mine),
    }


def check_every_checkout_placed_an_order(url: str, rounds, single) -> None:
    """Fail the run if a measured checkout POST did not place a new order.

    A checkout form sent again (the same checkout_token) only redirects, far
    more cheaply: a bench that measured that would flatter the checkout.
    """
    name = "checkout POST (+ initiate)"
    posted = sum(r[name]["served"] for r in rounds if name in r)
    posted += single["checkout POST"]["served"] + 2  # and the two check_out()
    engine = create_engine(url)
    with engine.connect() as connection:
        orders = connection.scalar(select(func.count(Order.id)))
    engine.dispose()
    # A request still in flight when wrk stops is not counted, but may place
    # its order all the same.
    if orders < posted:
        raise RuntimeError(f"{posted} checkout POSTs placed only {orders} orders")


def initiate_payload(shop_url: str) -> dict:
    """A payload like the shop's for a 3-line order."""
    return {
        "return_url": f"{shop_url}/successfull-payment",
        "website_url": f"{shop_url}/",
        "amount": 115000,
        "purchase_order_id": "bench-order",
        "purchase_order_name": "Jordan Air, DSLR Camera, Dhaka Topi",
        "customer_info": BUYER,
        "amount_breakdown": [{"label": "Items", "amount": 115000}],
        "product_details": [
            {
                "identity": str(n),
                "name": name,
                "unit_price": price,
                "quantity": 1,
                "total_price": price,
            }
            for n, (name, price) in enumerate(
                [("Jordan Air", 20000), ("DSLR Camera", 50000), ("Dhaka Topi", 45000)]
            )
        ],
    }


def summarise(rounds: list[dict]) -> dict[str, dict]:
    """Per route, across rounds: medians, the worst p99, ratios to bare Flask.

    Each ratio compares a route with the bare Flask run of its own round.
    """
    names = dict.fromkeys(name for results in rounds for name in results)
    return {
        name: summarise_route(name, [r for r in rounds if name in r]) for name in names
    }


def summarise_route(name: str, rounds: list[dict]) -> dict:
    cpu = [r[name]["cpu_ms"][server_of(name)] for r in rounds]
    bare_cpu = [r["bare Flask"]["cpu_ms"]["bare Flask"] for r in rounds]
    rps = [r[name]["rps"] for r in rounds]
    bare_rps = [r["bare Flask"]["rps"] for r in rounds]
    return {
        "cpu_ms": statistics.median(cpu),
        "cpu_x": statistics.median(map(float.__truediv__, cpu, bare_cpu)),
        "rps": statistics.median(rps),
        "rps_share": statistics.median(map(float.__truediv__, rps, bare_rps)),
        "p50_ms": statistics.median(r[name]["p50_ms"] for r in rounds),
        "p99_ms": max(r[name]["p99_ms"] for r in rounds),
        "requests": sum(r[name]["requests"] for r in rounds),
    }


def goals(summary: dict, notes: dict) -> list[tuple[str, str, bool]]:
    """Each goal of the issue: (goal, what was measured, met)."""
    checks = []
    for route, floor_row in FLOORS.items():
        times = summary[route]["cpu_ms"] / summary[floor_row]["cpu_ms"]
        checks.append(
            (
                f"{route}: at most {FLOOR_GOAL}x its floor's CPU per request",
                f"{times:.1f}x ({summary[route]['cpu_ms']:.2f} ms against"
                f" {summary[floor_row]['cpu_ms']:.2f} ms)",
                times <= FLOOR_GOAL,
            )
        )
    warm, end = notes["memory"][notes["warm"]], notes["memory"][-1]
    growth = [after - before for before, after in zip(warm[1], end[1], strict=True)]
    checks.append(
        (
            f"memory flat: each worker grows by at most {MEMORY_GROWTH_GOAL_MB} MB"
            " once every route has run",
            ", ".join(f"{mb:+.1f} MB" for mb in growth)
            + f" over the last {end[0] - warm[0]} requests",
            max(growth) <= MEMORY_GROWTH_GOAL_MB,
        )
    )
    return checks


def format_report(summary: dict, single: dict, notes: dict) -> str:
    lines = [
        f"Database: {notes['database']}. {WORKERS} workers x {THREADS} threads"
        f" (gthread), wrk 1 thread, {CONNECTIONS} connections; {ROUNDS} interleaved"
        f" rounds of {SECONDS} s per run after 1 s warm-up; `nproc` ="
        f" {os.cpu_count()}, load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end.",
        "",
        "Medians over the rounds; each ratio is to the bare Flask run of the same"
        " round; p99 is the worst round's.",
        "",
        "| route | server CPU ms/request | x bare Flask, by CPU | requests/s"
        " | share of bare Flask's throughput | p50 ms | p99 ms | requests |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {row['cpu_ms']:.2f} | {row['cpu_x']:.1f}x | {row['rps']:.0f}"
            f" | {row['rps_share']:.2f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f}"
            f" | {row['requests']} |"
        )
    lines += [
        "",
        "One buyer at a time (1 connection): the shop's own time per payment step",
        "",
        "| call | p50 ms | p99 ms | shop CPU ms/call | sandbox CPU ms/call |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, result in single.items():
        lines.append(
            f"| {name} | {result['p50_ms']:.2f} | {result['p99_ms']:.2f}"
            f" | {result['cpu_ms']['shop']:.2f} | {result['cpu_ms']['sandbox']:.2f} |"
        )
    own_checkout = (
        single["checkout POST"]["p50_ms"] - single["sandbox initiate"]["p50_ms"]
    )
    own_return = single["return URL"]["p50_ms"] - single["sandbox lookup"]["p50_ms"]
    lines += [
        "",
        f"Shop's own time (p50, shop minus sandbox): checkout {own_checkout:.2f} ms,"
        f" return {own_return:.2f} ms.",
        "",
        "Resident memory of each shop worker (MB), after the first catalog page"
        " and after each round:",
        "",
        "| shop requests since warm | "
        + " | ".join(f"worker {n + 1}" for n in range(WORKERS))
        + " |",
        "|---:|" + "---:|" * WORKERS,
    ]
    for served, sizes in notes["memory"]:
        lines.append(f"| {served} | " + " | ".join(f"{mb:.1f}" for mb in sizes) + " |")
    if "compared" in notes:
        lines += compared_lines(summary, notes["compared"])
    lines += ["", "The goals:", "", "| goal | measured | |", "|---|---|---|"]
    for goal, measured, met in goals(summary, notes):
        lines.append(f"| {goal} | {measured} | {'met' if met else '**not met**'} |")
    return "\n".join(lines) + "\n"


def compared_lines(summary: dict, compared_dir: str) -> list[str]:
    """This tree's routes beside the same routes of the --compare-with tree."""
    lines = [
        "",
        f"Side by side with {compared_dir}, in the same rounds (CPU per request,"
        " as a multiple of bare Flask's in each round; medians):",
        "",
        "| route | this tree | compared | this / compared | p99 ms, this / compared |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in summary:
        if not name.startswith(COMPARED):
            continue
        ours, theirs = summary[name.removeprefix(COMPARED)], summary[name]
        lines.append(
            f"| {name.removeprefix(COMPARED)} | {ours['cpu_x']:.1f}x"
            f" | {theirs['cpu_x']:.1f}x | {ours['cpu_x'] / theirs['cpu_x']:.2f}"
            f" | {ours['p99_ms']:.1f} / {theirs['p99_ms']:.1f} |"
        )
    return lines


if __name__ == "__main__":
    main()
