"""On SQLite, a process's writers take turns (database.allow_concurrent_sqlite).

A thread about to write waits on the process's lock rather than in SQLite's
busy handler, and its turn ends when its connection goes back to the pool,
however the transaction ended. A leaked turn would stall every write of the
process, so each way a transaction can end is tried here.
"""

import threading

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

import database
from models import Order, Product, db

# Far longer than any write here takes: a thread still blocked after this
# is waiting for a turn that was never given back.
STUCK_S = 5


@pytest.fixture(autouse=True)
def only_on_sqlite(app):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the writers' turns are SQLite's; PostgreSQL locks rows")


def begins_sent(app) -> list[str]:
    """A list that fills with each BEGIN the engine sends, as it is sent."""
    sent = []
    with app.app_context():

        @event.listens_for(db.engine, "before_cursor_execute")
        def record(_conn, _cursor, statement, *_args):
            if statement.startswith("BEGIN"):
                sent.append(f"{threading.current_thread().name}: {statement}")

    return sent


def write_in_thread(app, name: str, done: threading.Event | None = None):
    """Start a thread that takes 1 off product 1's stock as a POST would."""

    def write():
        with app.test_request_context(method="POST"):
            db.session.execute(
                update(Product).where(Product.id == 1).values(stock=Product.stock - 1)
            )
            db.session.commit()
        if done:
            done.set()

    thread = threading.Thread(target=write, name=name)
    thread.start()
    return thread


def stock(app) -> int:
    """Product 1's stock, read as a page (GET) reads."""
    with app.test_request_context():
        return db.session.scalar(select(Product.stock).where(Product.id == 1))


def test_a_writer_waits_for_its_turn_before_asking_sqlite(app):
    before = stock(app)
    sent = begins_sent(app)
    with app.test_request_context(method="POST"):
        db.session.execute(update(Product).values(stock=Product.stock + 10))
        second = write_in_thread(app, "second")
        second.join(0.3)
        # The second writer is still waiting, and not inside SQLite: it has
        # not sent its BEGIN IMMEDIATE.
        assert second.is_alive()
        assert sent == ["MainThread: BEGIN IMMEDIATE"]
        db.session.commit()
    second.join(STUCK_S)
    assert not second.is_alive()
    assert sent == ["MainThread: BEGIN IMMEDIATE", "second: BEGIN IMMEDIATE"]
    # One product was written twice (one row for the second writer's -1).
    assert stock(app) == before + 10 - 1


def test_readers_do_not_wait_for_a_writer(app):
    with app.test_request_context(method="POST"):
        db.session.execute(update(Product).values(stock=0))
        read = []
        reader = threading.Thread(target=lambda: read.append(stock(app)))
        reader.start()
        reader.join(STUCK_S)
        # WAL: the reader saw the stock as last committed, while the write
        # is still open.
        assert read and read[0] > 0
        db.session.rollback()


@pytest.mark.parametrize("ending", ["commit", "rollback", "close", "error"])
def test_the_turn_ends_however_the_transaction_ends(app, ending):
    with app.test_request_context(method="POST"):
        db.session.execute(update(Product).values(stock=Product.stock + 1))
        if ending == "commit":
            db.session.commit()
        elif ending == "rollback":
            db.session.rollback()
        elif ending == "close":
            db.session.close()  # what the end of a request does
        else:
            # Two orders with one reference: the flush fails on the unique key.
            for name in ("A", "B"):
                db.session.add(
                    Order(
                        purchase_order_id="same-reference",
                        customer_name=name,
                        customer_email="buyer@example.com",
                        customer_phone="9800000001",
                        total_paisa=1000,
                    )
                )
            with pytest.raises(IntegrityError):
                db.session.flush()
            db.session.rollback()
    done = threading.Event()
    write_in_thread(app, "next", done)
    assert done.wait(STUCK_S), "the next writer never got its turn"


def test_two_write_transactions_on_one_connection_take_one_turn(app):
    with app.test_request_context(method="POST"), db.engine.connect() as connection:
        for _ in range(2):
            with connection.begin():
                connection.execute(update(Product).values(stock=Product.stock))
    done = threading.Event()
    write_in_thread(app, "next", done)
    assert done.wait(STUCK_S)


def test_a_writer_whose_turn_never_comes_gets_sqlites_own_refusal(
    make_app, monkeypatch
):
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    app = make_app()  # its connections wait 0.2 s in SQLite too
    failures = []

    def write():
        try:
            with app.test_request_context(method="POST"):
                db.session.execute(update(Product).values(stock=Product.stock))
                db.session.commit()
        except OperationalError as exc:
            failures.append(str(exc))

    with app.test_request_context(method="POST"):
        db.session.execute(update(Product).values(stock=Product.stock))
        stuck = threading.Thread(target=write)
        stuck.start()
        stuck.join(STUCK_S)
        db.session.rollback()
    assert len(failures) == 1 and "database is locked" in failures[0]
