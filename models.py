"""The shop's data: products, orders, their items and the payment timeline.

Money is always an integer number of paisa (Rs 1 = 100 paisa), the unit Khalti
uses. Every column that holds money says so in its name.
"""

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    case,
    delete,
    false,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.orm import (
    Mapped,
    mapped_column,
    orm_insert_sentinel,
    relationship,
)
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.exceptions import NotFound
from werkzeug.security import generate_password_hash

from database import db


def enum_values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class OrderStatus(StrEnum):
    """Where an order stands. The values are stored as they are."""

    CREATED = "created"  # saved, Khalti not asked yet
    AWAITING_PAYMENT = "awaiting_payment"  # buyer sent to Khalti's payment page
    PENDING = "pending"  # Khalti says Pending: hold, do not fulfil
    NEEDS_REVIEW = "needs_review"  # something a person must look at
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELED = "canceled"
    EXPIRED = "expired"
    FAILED = "failed"


# Orders whose payment is not settled yet: a lookup may still move them.
OPEN_STATUSES = frozenset(
    {OrderStatus.AWAITING_PAYMENT, OrderStatus.PENDING, OrderStatus.NEEDS_REVIEW}
)

# Orders Khalti was paid for and has not refunded in full: the back office
# may refund them, and reconcile --paid-within looks them up again.
REFUNDABLE_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED})

# For each status, the statuses an order may move to it from. Canceled,
# expired, failed and refunded appear on no right-hand side: they are final.
# A paid order may only be refunded, in part or in full.
ALLOWED_SOURCES = {
    OrderStatus.AWAITING_PAYMENT: {OrderStatus.CREATED},
    OrderStatus.PENDING: {OrderStatus.AWAITING_PAYMENT, OrderStatus.NEEDS_REVIEW},
    OrderStatus.NEEDS_REVIEW: {OrderStatus.AWAITING_PAYMENT, OrderStatus.PENDING},
    OrderStatus.PAID: OPEN_STATUSES,
    OrderStatus.CANCELED: OPEN_STATUSES,
    OrderStatus.EXPIRED: OPEN_STATUSES,
    OrderStatus.FAILED: OPEN_STATUSES | {OrderStatus.CREATED},
    OrderStatus.PARTIALLY_REFUNDED: OPEN_STATUSES | {OrderStatus.PAID},
    OrderStatus.REFUNDED: OPEN_STATUSES
    | {OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED},
}

# Orders that will never be paid give their stock back; their buyer may
# pay again, with a new order.
RELEASES_STOCK = frozenset(
    {OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.FAILED}
)


class Product(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # Names the sample product this row was made from (`seed_catalog` finds
    # them by it) and its drawing in static/img. Products made in the back
    # office have none: nothing needs them by a name that may not change.
    slug: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    price_paisa: Mapped[int]
    stock: Mapped[int]
    # Shown in the catalog, or hidden from buyers (and from their carts).
    visible: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The file name of its picture in PICTURE_FOLDER, as the shop wrote it.
    picture: Mapped[str | None] = mapped_column(String(64))

    @property
    def image(self) -> str:
        """The drawing in static/ shown when the product has no picture."""
        return f"img/{self.slug}.svg" if self.slug else "img/placeholder.svg"

    def change_if_stock_is(self, stock_shown: int, values: dict) -> bool:
        """Save `values` (column: value) if the stock is still `stock_shown`.

        Buyers take and give back stock all the time, so a staff member's
        form may show a stock that is no longer true by the time it is saved.
        One conditional UPDATE ... WHERE stock = shown: if a buyer moved the
        stock in between, it updates nothing and the caller says so, rather
        than overwrite the buyer's change (a lost update). The other columns
        must still hold what this object loaded too, so that the old values
        recorded with the change are the ones it replaced. Returns whether
        the row changed; the caller commits.
        """
        loaded = {column: getattr(self, column) for column in values}
        changed = db.session.execute(
            update(Product)
            .where(
                Product.id == self.id,
                Product.stock == stock_shown,
                *(getattr(Product, column) == old for column, old in loaded.items()),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return changed.rowcount == 1

    def delete_if_never_ordered(self) -> bool:
        """Delete this product if no order holds it. Returns whether it did.

        Orders point at their products, so a product anyone ordered stays
        (staff hide it instead). The check and the delete are one statement;
        an order placed at the same moment makes the foreign key refuse the
        delete, which the caller takes as a no. Its change records stay,
        detached, so the deletion and what led to it remain on file.
        """
        db.session.execute(
            update(ProductChange)
            .where(ProductChange.product_id == self.id)
            .values(product_id=None)
        )
        deleted = db.session.execute(
            delete(Product).where(
                Product.id == self.id,
                ~select(OrderItem.id).where(OrderItem.product_id == self.id).exists(),
            )
        )
        return deleted.rowcount == 1


@dataclass(frozen=True)
class CartLine:
    product: "Product"
    quantity: int

    @property
    def total_paisa(self) -> int:
        return self.product.price_paisa * self.quantity


def cart_total_paisa(lines: list[CartLine]) -> int:
    return sum(line.total_paisa for line in lines)


class Order(db.Model):
    # "order" is an SQL keyword; a plural table name avoids quoting trouble.
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The public reference, sent to Khalti as purchase_order_id and used in
    # URLs. Random, so nobody can guess another buyer's order page.
    purchase_order_id: Mapped[str] = mapped_column(
        String(32), unique=True, default=lambda: secrets.token_urlsafe(12)
    )
    # Stored as the plain strings above ("paid"), not the enum's member names.
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, native_enum=False, length=32, values_callable=enum_values),
        default=OrderStatus.CREATED,
    )
    customer_name: Mapped[str] = mapped_column(String(100))
    customer_email: Mapped[str] = mapped_column(String(254))
    customer_phone: Mapped[str] = mapped_column(String(10))
    total_paisa: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now_utc, index=True)
    # The one-time token of the checkout form that placed the order. Unique,
    # so the same form submitted twice cannot make a second order (empty for
    # orders placed before it existed).
    checkout_token: Mapped[str | None] = mapped_column(String(32), unique=True)
    # The canceled, expired or failed order this one pays again for ("Pay
    # again"); that order stays as it was. Indexed, to list an order's retries.
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)

    # Filled in from Khalti's answers.
    pidx: Mapped[str | None] = mapped_column(String(64), unique=True)
    payment_url: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[str | None] = mapped_column(String(40))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)

    items: Mapped[list["OrderItem"]] = relationship(
        back_populates="order", cascade="all, delete-orphan"
    )
    events: Mapped[list["PaymentEvent"]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        order_by="PaymentEvent.id",
    )
    retry_of: Mapped["Order | None"] = relationship(
        remote_side=[id], back_populates="retries"
    )
    retries: Mapped[list["Order"]] = relationship(
        back_populates="retry_of", order_by="Order.id"
    )

    @classmethod
    def from_cart(
        cls,
        lines: list[CartLine],
        *,
        checkout_token: str,
        name: str,
        email: str,
        phone: str,
    ) -> "Order":
        """Build an order from the cart's lines.

        Each item keeps the unit price it was sold at, so a later change of
        a product's price never changes what this buyer owes.
        """
        items = [
            OrderItem(
                product_id=line.product.id,
                name=line.product.name,
                unit_price_paisa=line.product.price_paisa,
                quantity=line.quantity,
            )
            for line in lines
        ]
        return cls(
            checkout_token=checkout_token,
            customer_name=name,
            customer_email=email,
            customer_phone=phone,
            items=items,
            total_paisa=sum(item.line_total_paisa for item in items),
        )

    def record(self, *steps: tuple[str, dict | None]) -> None:
        """Add steps, each a (kind, data) pair, to this order's payment timeline.

        All of them in one INSERT, sent now. A Core INSERT into the table
        rather than PaymentEvent objects in the session (or the ORM's bulk
        insert, which still does per-row bookkeeping): nothing reads the new
        rows back during the request, so that work would be for nothing.

        Each step is also logged, by reference and pidx only (the data holds
        the buyer's email and phone, which stay out of the logs), with the
        status the order has as the step is saved.
        """
        if not steps:
            return
        db.session.execute(
            insert(PaymentEvent.__table__),
            [
                {"order_id": self.id, "kind": kind, "data": json.dumps(data or {})}
                for kind, data in steps
            ],
        )
        for kind, data in steps:
            current_app.logger.info(
                "order=%s pidx=%s step=%s status=%s",
                self.purchase_order_id,
                # Khalti's answer to initiate brings the pidx before it is saved.
                self.pidx or (data or {}).get("pidx") or "-",
                kind,
                self.status,
            )

    def last_lookup_and_callback(self) -> tuple[datetime | None, dict | None]:
        """When Khalti was last asked about this order, and the last callback.

        One SELECT, two subqueries, each on the events' order_id index.
        """
        events = PaymentEvent.__table__.c
        mine = events.order_id == self.id
        last_lookup = select(func.max(events.created_at)).where(
            mine, events.kind.in_(["lookup_response", "lookup_error"])
        )
        last_callback = (
            select(events.data)
            .where(mine, events.kind == "callback")
            .order_by(events.id.desc())
            .limit(1)
        )
        looked_up_at, callback = db.session.execute(
            select(last_lookup.scalar_subquery(), last_callback.scalar_subquery())
        ).one()
        return looked_up_at, json.loads(callback) if callback else None

    @property
    def payment_link_expired(self) -> bool:
        """Whether Khalti's payment link is past its expires_at.

        Khalti sends it with its offset ("2023-05-25T16:26:16+05:45"). One
        that cannot be read is taken as still open: the lookup decides.
        """
        try:
            expires_at = datetime.fromisoformat(self.expires_at or "")
        except ValueError:
            return False
        if expires_at.tzinfo is None:
            return False
        return datetime.now(UTC) >= expires_at

    def quantities(self) -> dict[int, int]:
        """How many of each product this order holds, by product id."""
        return {item.product_id: item.quantity for item in self.items}

    def lock_products(self) -> dict[int, int]:
        """Lock this order's product rows, in id order; return the quantities.

        On PostgreSQL an UPDATE holds each row it changes until commit, and a
        many-row UPDATE takes them in whatever order its plan visits them. Two
        orders taking the same products in opposite orders would deadlock, so
        first lock them all going up by id. SQLite, which lets only one writer
        in at a time, has no FOR UPDATE and needs none: the SELECT is skipped.
        """
        wanted = self.quantities()
        if db.session.get_bind().dialect.name == "sqlite":
            return wanted
        db.session.execute(
            select(Product.id)
            .where(Product.id.in_(wanted))
            .order_by(Product.id)
            # FOR NO KEY UPDATE, the lock an UPDATE of stock takes itself. A
            # plain FOR UPDATE would also wait on the key-share locks that
            # other checkouts' order_items rows hold on these products through
            # their foreign key, and two such checkouts would deadlock.
            .with_for_update(key_share=True)
        )
        return wanted

    def reserve_stock(self) -> Product | None:
        """Take this order's items out of stock.

        One conditional UPDATE for all the products ("only where enough is
        left") lets the database settle races between buyers: two buyers can
        never both take the last unit. On PostgreSQL (READ COMMITTED) an UPDATE
        of a row another transaction changed waits for it to commit, then
        checks its WHERE against the new stock, so check and change stay one
        step. It returns the ids of the products it could take from; the first
        product missing from them ran short (or was hidden), and the caller
        then rolls the whole transaction back. Two statements whatever the
        number of lines.
        """
        wanted = self.lock_products()
        quantity = case(wanted, value=Product.id)
        taken = db.session.scalars(
            update(Product)
            # A product hidden since the buyer's cart was checked is not sold.
            .where(Product.id.in_(wanted), Product.visible, Product.stock >= quantity)
            .values(stock=Product.stock - quantity)
            .returning(Product.id)
            # Product objects already loaded keep their old stock until the
            # commit or rollback expires them; nothing reads it before then.
            .execution_options(synchronize_session=False)
        ).all()
        for product_id in wanted:
            if product_id not in taken:
                return db.session.get(Product, product_id)
        return None

    def release_stock(self) -> None:
        """Put this order's items back in stock."""
        wanted = self.lock_products()
        db.session.execute(
            update(Product)
            .where(Product.id.in_(wanted))
            .values(stock=Product.stock + case(wanted, value=Product.id))
            .execution_options(synchronize_session=False)
        )

    def move_to(
        self,
        target: OrderStatus,
        *,
        steps: Sequence[tuple[str, dict | None]] = (),
        **changes,
    ) -> bool:
        """Change the status if, and only if, the transition is allowed.

        The check and the change are one UPDATE ... WHERE status IN (...), so
        when many requests race (a reload, a double click, reconcile running
        at the same time) the database lets exactly one of them through. Only
        that one records the change and releases stock. On PostgreSQL the
        losers wait on the row lock, then find the status changed and update
        nothing. `steps`, the exchange with Khalti that led here, go on the
        timeline whoever wins, in the same INSERT as the winner's status step.
        Returns whether this call made the change. The caller commits.
        """
        if target == self.status:
            # Khalti's answer leaves the order where this request found it (an
            # unpaid payment still "Initiated"). No status is its own allowed
            # source, so there is nothing to move: only note the exchange. (If
            # another request moved the order meanwhile, its move stands.)
            self.record(*steps)
            return False
        moved = db.session.execute(
            update(Order)
            .where(Order.id == self.id, Order.status.in_(ALLOWED_SOURCES[target]))
            .values(status=target, **changes)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:
            # Another request got there first: re-read the row to show its work.
            db.session.refresh(self)
            self.record(*steps)
            return False
        # The row now holds exactly these values: put them on the object as
        # loaded (not as changes to flush) instead of reading the row back.
        for column, value in ({"status": target} | changes).items():
            set_committed_value(self, column, value)
        self.record(*steps, (f"status:{target}", None))
        if target in RELEASES_STOCK:
            self.release_stock()
        return True


class OrderItem(db.Model):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    name: Mapped[str] = mapped_column(String(100))
    unit_price_paisa: Mapped[int]
    quantity: Mapped[int]
    # Lets SQLAlchemy insert all of an order's items in one INSERT on SQLite,
    # which cannot otherwise say which new id belongs to which row.
    # PostgreSQL does not use it.
    _sentinel: Mapped[int] = orm_insert_sentinel()

    order: Mapped[Order] = relationship(back_populates="items")

    @property
    def line_total_paisa(self) -> int:
        return self.unit_price_paisa * self.quantity


class PaymentEvent(db.Model):
    """One step of an order's payment, shown to learners as a timeline."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[str] = mapped_column(Text, default="{}")

    order: Mapped[Order] = relationship(back_populates="events")

    @property
    def payload(self) -> dict:
        return json.loads(self.data)


def order_where(column, value: str, *options) -> Order:
    """The order whose `column` (pidx or purchase_order_id) is `value`, or 404.

    PostgreSQL rejects a string holding a NUL character with an error, not
    a miss, and no id is that long: such values name no order.
    """
    if len(value) > 64 or "\x00" in value:
        raise NotFound()
    return db.one_or_404(select(Order).where(column == value).options(*options))


CATALOG = [
    # (slug, name, price in paisa, stock, description)
    (
        "jordan-air",
        "Jordan Air",
        200_00,
        25,
        "The tutorial's sneaker, now with a real cart behind it.",
    ),
    (
        "dslr-camera",
        "DSLR Camera",
        500_00,
        10,
        "The tutorial's camera. Pairs well with a verified receipt.",
    ),
    (
        "dhaka-topi",
        "Dhaka Topi",
        450_00,
        40,
        "A hand-woven cap in the classic Palpali pattern.",
    ),
    (
        "lokta-notebook",
        "Lokta Notebook",
        350_00,
        30,
        "Handmade lokta paper from the hills, bound by hand.",
    ),
    (
        "himalayan-tea",
        "Himalayan Tea",
        650_00,
        20,
        "First-flush leaves from Ilam, 100 g.",
    ),
    (
        "prayer-flags",
        "Prayer Flags",
        120_00,
        50,
        "Five colours on a cotton string, ready for the breeze.",
    ),
    (
        "khalti-sticker",
        "Khalti Sticker",
        5_00,
        100,
        "Rs 5 on its own: under Khalti's Rs 10 minimum, so add a friend.",
    ),
]


def seed_catalog() -> int:
    """Add the sample products to an empty catalog. Returns how many were added.

    A catalog with any product in it is the merchant's: left as it is.
    """
    if db.session.scalar(select(Product.id).limit(1)) is not None:
        return 0
    for slug, name, price_paisa, stock, description in CATALOG:
        db.session.add(
            Product(
                slug=slug,
                name=name,
                price_paisa=price_paisa,
                stock=stock,
                description=description,
            )
        )
    db.session.commit()
    return len(CATALOG)


# --- The back office (admin.py): staff accounts and refunds ------------------


MIN_PASSWORD_LENGTH = 12


class Staff(UserMixin, db.Model):
    """Someone who may use the back office. Made by `flask create-staff` or
    by another staff member on /admin/staff."""

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so Sita@Example.com and sita@example.com are one account.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    # Part of what a session cookie names (see get_id): raising it ends every
    # session of this account, on every server, since they all read this row.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # A disabled account cannot log in, and its sessions are ended.
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Set for a password someone else chose (the one-time password of a new
    # account): the back office asks for a new one before anything else.
    must_change_password: Mapped[bool] = mapped_column(
        default=False, server_default=false()
    )

    @property
    def is_active(self) -> bool:
        """Flask-Login refuses to log in an account that is not active."""
        return self.active

    def get_id(self) -> str:
        """What the session cookie holds: the id and the session version.

        The cookie is signed, so it cannot be changed; once the version in
        the database moves on, the cookie names no session any more.
        """
        return f"{self.id}.{self.session_version}"

    def end_sessions(self) -> None:
        """End every session of this account (logout, new password, disabled).

        An UPDATE computed in the database, so two at once both count.
        The caller commits.
        """
        self.session_version = Staff.session_version + 1

    def set_password(self, password: str) -> None:
        """A new password, which also ends every session made with the old one."""
        self.password_hash = generate_password_hash(password)
        self.end_sessions()


class RefundState(StrEnum):
    REQUESTED = "requested"  # saved, Khalti asked (or about to be)
    SUCCEEDED = "succeeded"  # Khalti said "Transaction refund successful."
    FAILED = "failed"  # Khalti refused; no money moved
    UNKNOWN = "unknown"  # no clear answer (timeout, 5xx): the money may have moved


class Refund(db.Model):
    """One refund a staff member asked Khalti for, and what became of it."""

    __tablename__ = "refunds"
    __table_args__ = (
        # Only one refund per order in flight, by construction: a second
        # INSERT with state "requested" for the same order fails on this
        # partial unique index, however the requests race. Both SQLite and
        # PostgreSQL support such indexes.
        Index(
            "one_refund_in_flight_per_order",
            "order_id",
            unique=True,
            sqlite_where=text("state = 'requested'"),
            postgresql_where=text("state = 'requested'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    # The refund form's one-time token: the same form submitted twice (or ten
    # times at once) inserts one row, and so calls Khalti once.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    amount_paisa: Mapped[int]
    staff_email: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[RefundState] = mapped_column(
        Enum(RefundState, native_enum=False, length=16, values_callable=enum_values),
        default=RefundState.REQUESTED,
    )
    khalti_answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)

    order: Mapped[Order] = relationship()

    def move_to(self, target: RefundState, answer: dict) -> bool:
        """Settle the refund, once: a conditional UPDATE from requested/unknown.

        Returns whether this call made the change. The caller commits.
        """
        moved = db.session.execute(
            update(Refund)
            .where(
                Refund.id == self.id,
                Refund.state.in_([RefundState.REQUESTED, RefundState.UNKNOWN]),
            )
            .values(state=target, khalti_answer=json.dumps(answer))
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(self)
        return moved.rowcount == 1


class ProductChange(db.Model):
    """One change a staff member made to a product, shown on its edit page."""

    __tablename__ = "product_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Empty once the product is deleted: the record of what happened stays.
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"), index=True)
    staff_email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    # JSON: {column: [old, new]} for each column that changed. Old is null
    # for a new product, new is null for a deleted one.
    changes: Mapped[str] = mapped_column(Text)

    @classmethod
    def of(cls, product_id: int | None, staff_email: str, old: dict, new: dict):
        """The change from `old` to `new` (column: value), or None if none."""
        changes = {
            column: [old.get(column), value]
            for column, value in new.items()
            if old.get(column) != value
        }
        if not changes:
            return None
        return cls(
            product_id=product_id,
            staff_email=staff_email,
            changes=json.dumps(changes),
        )

    @property
    def fields(self) -> dict[str, list]:
        return json.loads(self.changes)
