"""The database connection: the SQLAlchemy object, schema upgrades (Flask-
Migrate), and SQLite's locking.

Everything here is about how the shop talks to its database, never about
what it stores (that is models.py). SQLite's locking does not apply to
PostgreSQL.
"""

import threading
from pathlib import Path

import flask_migrate
from flask import g, has_request_context, request
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, MetaData, event, inspect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Every constraint and index gets a predictable name, so a migration can
    # drop or change it by that name, and SQLite's batch mode (which copies
    # a table to alter it) can find constraints SQLite itself leaves unnamed.
    # These are PostgreSQL's own default names: a database made before the
    # shop had migrations already uses them.
    metadata = MetaData(
        naming_convention={
            "pk": "%(table_name)s_pkey",
            "uq": "%(table_name)s_%(column_0_name)s_key",
            "fk": "%(table_name)s_%(column_0_name)s_fkey",
            "ix": "ix_%(column_0_label)s",
            "ck": "%(table_name)s_%(constraint_name)s_check",
        }
    )


# expire_on_commit=False: after a commit, objects keep the values they had
# instead of being reloaded, one SELECT per object, on their next use. The
# shop commits before every Khalti call and uses the order again afterwards:
# those reloads were 15% of a checkout's time and 30% of a return's. The
# price: an object read in an earlier transaction of the same request may be
# out of date. Status changes never trust it (Order.move_to's UPDATE checks
# the status in the database), and code that must see what other requests
# wrote since (a back office re-reading an order before acting on it) must
# ask for it: db.session.refresh(obj), or a fresh SELECT.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})

# Schema changes are Alembic migrations in migrations/ (`flask db ...`).
# render_as_batch: SQLite can alter little in place, so the migrations it
# generates copy a table to change it, as Alembic's batch mode does.
migrate = Migrate(
    directory=str(Path(__file__).parent / "migrations"), render_as_batch=True
)

# The first migration: the schema `init-db` made before there were migrations.
SCHEMA_BEFORE_MIGRATIONS = "0001"


def upgrade_database() -> bool:
    """Bring the database's tables up to the newest migration.

    A database made before the shop had migrations holds the tables of the
    first one but no alembic_version table saying so: it is marked as that
    revision first, then upgraded like any other. Returns whether it was.
    """
    tables = inspect(db.engine).get_table_names()
    made_before_migrations = "orders" in tables and "alembic_version" not in tables
    if made_before_migrations:
        flask_migrate.stamp(revision=SCHEMA_BEFORE_MIGRATIONS)
    flask_migrate.upgrade()
    return made_before_migrations


# How long a writer waits for another to finish before giving up.
SQLITE_BUSY_TIMEOUT_S = 15


def may_write() -> bool:
    """Whether the transaction about to start may write to the database.

    Forms and commands may write. A page fetched with GET only reads in its
    first transaction. A later one follows a commit, and the only GET that
    commits is the return from Khalti, which commits before asking Khalti
    for the payment's status and then saves the answer: that transaction
    writes. So the return's first transaction (reading the order) does not
    queue for SQLite's write lock behind other buyers.
    """
    if not has_request_context() or request.method != "GET":
        return True
    if g.get("read_first_transaction"):
        return True
    g.read_first_transaction = True
    return False


def allow_concurrent_sqlite(engine: Engine) -> None:
    """Let several processes (gunicorn workers) share one SQLite file.

    - WAL journal: readers never wait for a writer, nor a writer for them.
    - busy_timeout: a writer waits up to 15 s for another to finish instead
      of failing at once with "database is locked".
    - BEGIN IMMEDIATE when the transaction may write (`may_write()` says):
      it takes the write lock when it starts. Otherwise a transaction that
      read first and writes later (checkout reads the cart's products, then
      inserts the order) gets SQLITE_BUSY at once, without waiting, when
      another process wrote in between, since its snapshot is out of date.
      The shop never holds a transaction open while it waits on Khalti, so
      the lock is brief. Transactions that only read use a plain BEGIN and
      never queue for the lock.

    - One writer at a time per process: a thread about to write first waits
      its turn on a lock, and wakes the moment the writer before it is done.
      Waiting for SQLite's lock instead means sleeping in its busy handler,
      whose naps grow to 100 ms however soon the lock is free: with 8 buyers
      that made the slowest checkouts take a second. Only one thread per
      process then waits in SQLite itself, for another process's writer.
      The turn ends when the connection goes back to SQLAlchemy's pool,
      after its COMMIT or ROLLBACK (the Session returns it after each
      transaction). A thread still waiting after busy_timeout goes on to
      SQLite, which then refuses with "database is locked", as before.

    pysqlite would issue its own BEGIN; isolation_level = None hands that to
    SQLAlchemy's "begin" event (the recipe in SQLAlchemy's SQLite docs).
    """
    writer_turn = threading.Lock()

    @event.listens_for(engine, "connect")
    def configure(dbapi_connection, _connection_record):
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        milliseconds = int(SQLITE_BUSY_TIMEOUT_S * 1000)
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

    @event.listens_for(engine, "begin")
    def begin(connection):
        if not may_write():
            connection.exec_driver_sql("BEGIN")
            return
        # connection.info lives with the pooled connection until it is back.
        if "writer_turn" not in connection.info and writer_turn.acquire(
            timeout=SQLITE_BUSY_TIMEOUT_S
        ):
            connection.info["writer_turn"] = True
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "checkin")
    def end_turn(_dbapi_connection, connection_record):
        if connection_record.info.pop("writer_turn", False):
            writer_turn.release()


def init_app(app) -> None:
    """Connect the shop to its database (called by `create_app`)."""
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            allow_concurrent_sqlite(db.engine)
