"""The cart: product ids and quantities in the buyer's signed session cookie,
and the rules a cart keeps (stock, limits, Khalti's minimum) before checkout.

Prices are never kept here: every page reads them from the database.
"""

from flask import current_app, session
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

import i18n
from database import db
from models import CartLine, Product, cart_total_paisa
from money import format_npr

# Khalti refuses web checkout payments under Rs 10.
MINIMUM_PAISA = 1000


def session_cart() -> dict[str, int]:
    return session.get("cart", {})


def save_cart(cart: dict[str, int]) -> None:
    session["cart"] = cart


def cart_lines() -> list[CartLine]:
    """The cart with each product read from the database, prices included."""
    cart = session_cart()
    products = db.session.scalars(
        select(Product)
        .where(Product.id.in_([int(pid) for pid in cart]))
        .order_by(Product.id)
    )
    return [CartLine(product, cart[str(product.id)]) for product in products]


def quantity_problem(product: Product, quantity: int, in_cart: int = 0) -> str | None:
    """Why the cart cannot hold `quantity` of `product`, or None.

    `in_cart` is how many the cart held before this request added more, so
    the message can say that they are counted.
    """
    if not product.visible:
        return _("%(name)s is no longer for sale.", name=product.name)
    limit = current_app.config["MAX_UNITS_PER_PRODUCT"]
    if quantity > limit:
        # One visitor must not hold the whole stock in unpaid orders.
        return _(
            "You can buy at most %(limit)s of one product in one order.",
            limit=i18n.digits(limit),
        )
    if quantity <= product.stock:
        return None
    if in_cart:
        return ngettext(
            "Your cart already holds %(in_cart)s of %(name)s, and only %(stock)s is"
            " in stock.",
            "Your cart already holds %(in_cart)s of %(name)s, and only %(stock)s are"
            " in stock.",
            product.stock,
            in_cart=i18n.digits(in_cart),
            stock=i18n.digits(product.stock),
            name=product.name,
        )
    return _(
        "Only %(stock)s of %(name)s left in stock.",
        stock=i18n.digits(product.stock),
        name=product.name,
    )


def cart_problem(lines: list[CartLine]) -> str | None:
    """Why this cart cannot be checked out, or None."""
    if not lines:
        return _("Your cart is empty.")
    if cart_total_paisa(lines) < MINIMUM_PAISA:
        return _(
            "Khalti accepts payments of %(minimum)s or more."
            " Add a little more to your cart.",
            minimum=format_npr(MINIMUM_PAISA),
        )
    for line in lines:
        if problem := quantity_problem(line.product, line.quantity):
            return problem
    return None
