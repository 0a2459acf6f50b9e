"""The catalog's product cards, drawn again only when a product row changes.

The one speed mechanism of the catalog page: see product_cards().
"""

from flask import current_app, render_template, url_for
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import select

from database import db
from models import Product


def init_app(app) -> None:
    """Give the app its cards' cache and templates product_image()."""
    app.extensions["product_cards"] = {}
    app.add_template_global(product_image)


def product_image(product: Product) -> str:
    """The URL of a product's picture, or of its drawing when it has none."""
    if product.picture:
        return url_for("shop.picture", name=product.picture)
    return url_for("static", filename=product.image)


# Stands in for the buyer's CSRF token in the cached product cards. Jinja
# escapes "<" in product data, so no product text can ever contain it.
TOKEN_SLOT = Markup("<csrf-token>")


def product_cards() -> Markup:
    """The catalog's product cards, rendered again only when a product changed.

    Rendering the cards was most of the catalog's cost, yet they change only
    when a product row does. So this worker keeps the last cards it rendered
    together with the rows they show, and every visit reads the rows again
    (one SELECT of plain tuples, cheaper than loading Product objects): any
    write by anyone, this worker, another one or a person in a SQL shell, is
    seen at once, and no page can show a wrong price or stock. The rows are
    all of them, hidden products included, so hiding or showing one is seen
    too. The cards are cached with a slot where each page puts its own
    buyer's CSRF token.
    """
    rows = tuple(db.session.execute(select(Product.__table__).order_by(Product.id)))
    cache = current_app.extensions["product_cards"]
    # One set of cards per language: the words and prices differ.
    language = str(get_locale())
    cached_rows, cards = cache.get(language, (None, None))
    if rows != cached_rows:
        products = db.session.scalars(
            select(Product).where(Product.visible).order_by(Product.id)
        )
        cards = Markup(
            render_template("_product_cards.html", products=products, token=TOKEN_SLOT)
        )
        # One assignment, so another thread never sees new rows with old cards.
        cache[language] = (rows, cards)
    # Markup.replace escapes the token it puts in.
    return cards.replace(TOKEN_SLOT, generate_csrf())
