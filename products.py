"""The back office's products: the list, a new product, each one's edit page.

Staff change products while buyers are buying them, so every save is built
to keep money and stock right: an order keeps the prices it was placed at
(its items hold them), the edit form's stock is saved only if no buyer moved
it meanwhile (`Product.change_if_stock_is`), a product anyone ordered is
hidden rather than deleted, and every change is recorded with who made it.

Pictures are never stored as uploaded: Pillow decodes them and writes a new
WebP file in the catalog's frame, so what the shop serves is always an image
the shop itself made.

A blueprint of its own, nested in the back office's (admin.py registers it),
so the back office's staff login check covers every page here.
"""

import io
import re
import secrets
import warnings
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from PIL import Image, ImageOps
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import (
    InputRequired,
    Length,
    NumberRange,
    Regexp,
    ValidationError,
)
from wtforms.widgets import HiddenInput

from database import db
from forms import strip
from models import (
    REFUNDABLE_STATUSES,
    Order,
    OrderItem,
    Product,
    ProductChange,
)
from money import format_npr, rupees_to_paisa

bp = Blueprint("products", __name__, url_prefix="/products")

# Database ids are 32-bit; a larger number names no product.
MAX_ID = 2**31 - 1
# Far above any shop's shelf, far below the 32-bit column's limit, so that
# stock given back by canceled orders can never overflow it.
MAX_STOCK = 1_000_000
MIN_PRICE_PAISA = 100  # Rs 1
RUPEES = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?\Z")  # below Rs 1 crore

PICTURE_FORMATS = ["PNG", "JPEG", "WEBP"]
MAX_PICTURE_BYTES = 2 * 1024 * 1024
# What Pillow may decode: a 40-megapixel photo takes about 160 MB. A small
# file can claim far more pixels than that (a "decompression bomb").
MAX_PICTURE_PIXELS = 40_000_000
PICTURE_SIZE = (400, 300)  # the catalog card's frame
# A form with a 2 MB picture, with room for its text fields. Larger requests
# are refused before they are read.
MAX_REQUEST_BYTES = MAX_PICTURE_BYTES + 64 * 1024

NO_CONTROL_CHARACTERS = Regexp(
    r"[^\x00-\x1f\x7f]*\Z", message="Use letters, digits and punctuation only."
)
# Line breaks and tabs are fine in a description; other control characters
# are not, and PostgreSQL refuses to store a NUL.
TEXT_WITH_LINES = Regexp(
    r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*\Z",
    message="Use letters, digits, punctuation and line breaks only.",
)


class PictureError(Exception):
    """An upload that is not a picture the shop can use; says why."""


@bp.before_request
def limit_request_size():
    """Refuse (413) a request too large to hold a 2 MB picture and a form."""
    request.max_content_length = MAX_REQUEST_BYTES


def price_in_rupees(form, field) -> None:
    """A validator: rupees like 12.50, at least Rs 1, below Rs 1 crore."""
    if not RUPEES.match(field.data or ""):
        raise ValidationError("Enter rupees like 12.50.")
    if rupees_to_paisa(field.data) < MIN_PRICE_PAISA:
        raise ValidationError(
            f"The price must be at least {format_npr(MIN_PRICE_PAISA)}."
        )


def picture_file(form, field) -> None:
    """A validator: a PNG, JPEG or WebP file of 2 MB or less, re-encoded here.

    The re-encoded picture is kept on the field (`field.encoded`) for the
    view to save once the product's row is saved.
    """
    field.encoded = None
    if not isinstance(field.data, FileStorage):
        return
    data = field.data.stream.read(MAX_PICTURE_BYTES + 1)
    if len(data) > MAX_PICTURE_BYTES:
        raise ValidationError("Choose a picture of 2 MB or less.")
    try:
        field.encoded = framed_picture(data)
    except PictureError as error:
        raise ValidationError(str(error)) from error


def framed_picture(data: bytes) -> bytes:
    """`data`, decoded and drawn again as a 400x300 WebP: the catalog's frame.

    Cropped to the frame's shape around the middle, then scaled, as the
    catalog shows every product. Raises PictureError for anything else.
    """
    try:
        # Pillow only warns about a picture of more than ~89 megapixels (it
        # refuses twice that): treat the warning as the refusal it should be.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=PICTURE_FORMATS) as image:
                if image.width * image.height > MAX_PICTURE_PIXELS:
                    raise PictureError("This picture has too many pixels.")
                # Phones store photos sideways and say so in EXIF.
                upright = ImageOps.exif_transpose(image).convert("RGBA")
    except (
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as error:
        raise PictureError("This picture has too many pixels.") from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        # Not a PNG, JPEG or WebP, or a broken one: Pillow's decoders say so
        # with any of these.
        raise PictureError("This file is not a PNG, JPEG or WebP picture.") from error
    framed = ImageOps.fit(upright, PICTURE_SIZE, method=Image.Resampling.LANCZOS)
    out = io.BytesIO()
    framed.save(out, "WEBP", quality=85)
    return out.getvalue()


class ProductForm(FlaskForm):
    """The new-product form. The field names are part of the back office's API."""

    name = StringField(
        "Name",
        filters=[strip],
        validators=[InputRequired(), Length(max=100), NO_CONTROL_CHARACTERS],
    )
    description = TextAreaField(
        "Description",
        default="",
        filters=[strip],
        validators=[Length(max=1000), TEXT_WITH_LINES],
    )
    price = StringField(
        "Price in rupees",
        filters=[strip],
        validators=[InputRequired(), price_in_rupees],
    )
    stock = IntegerField(
        "Stock", validators=[InputRequired(), NumberRange(min=0, max=MAX_STOCK)]
    )
    visible = BooleanField("Shown in the catalog", default=True)
    picture = FileField("Picture", validators=[picture_file])


class EditForm(ProductForm):
    # The stock the form showed, sent back with it: see Product.change_if_stock_is.
    stock_shown = IntegerField(
        widget=HiddenInput(),
        validators=[InputRequired(), NumberRange(min=0, max=MAX_STOCK)],
    )


def submitted_data() -> MultiDict | None:
    """The request's form: text fields from text parts, the picture from files.

    A text field sent as a file part would otherwise reach the validators as
    a file object; here it is simply missing, and refused as such.
    """
    if request.method != "POST":
        return None
    data = MultiDict(request.form)
    data.setlist("picture", request.files.getlist("picture"))
    return data


def form_values(form: ProductForm) -> dict:
    """The columns a valid form sets, by column name."""
    return {
        "name": form.name.data,
        "description": form.description.data,
        "price_paisa": rupees_to_paisa(form.price.data),
        "stock": form.stock.data,
        "visible": form.visible.data,
    }


def product_data(product: Product) -> dict:
    """A product as the edit form shows it."""
    return {
        "name": product.name,
        "description": product.description,
        "price": f"{product.price_paisa // 100}.{product.price_paisa % 100:02d}",
        "stock": product.stock,
        "stock_shown": product.stock,
        "visible": product.visible,
    }


# --- Pictures on disk ---------------------------------------------------------


def picture_folder() -> Path:
    return Path(current_app.config["PICTURE_FOLDER"])


def store_picture(encoded: bytes) -> str:
    """Write a re-encoded picture under a new random name; return the name."""
    name = f"{secrets.token_hex(16)}.webp"
    folder = picture_folder()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(encoded)
    return name


def remove_picture(name: str | None) -> None:
    """Delete a picture no product shows any more."""
    if name:
        (picture_folder() / name).unlink(missing_ok=True)


# --- The pages ----------------------------------------------------------------


COLUMN_LABELS = {
    "name": "Name",
    "description": "Description",
    "price_paisa": "Price",
    "stock": "Stock",
    "visible": "In the catalog",
    "picture": "Picture file",
}


def shown_value(column: str, value) -> str:
    """A value from a change record, as staff read it."""
    if value is None:
        return "(none)"
    if column == "price_paisa":
        return format_npr(value)
    if column == "visible":
        return "Shown" if value else "Hidden"
    return str(value)


@bp.context_processor
def change_history_helpers() -> dict:
    return {"column_labels": COLUMN_LABELS, "shown_value": shown_value}


def units_sold():
    """Per product, the units in orders Khalti was paid for and did not refund."""
    return (
        select(func.coalesce(func.sum(OrderItem.quantity), 0))
        .join(Order)
        .where(
            OrderItem.product_id == Product.id, Order.status.in_(REFUNDABLE_STATUSES)
        )
        .scalar_subquery()
    )


@bp.get("")
def product_list():
    """Every product, hidden ones too, with what it sold."""
    rows = db.session.execute(
        select(Product, units_sold()).order_by(Product.name, Product.id)
    ).all()
    return render_template("admin/products.html", rows=rows)


@bp.route("/new", methods=["GET", "POST"])
def new_product():
    """Add a product to the catalog."""
    form = ProductForm(formdata=submitted_data())
    if not form.validate_on_submit():
        return render_template(
            "admin/product.html", form=form, product=None
        ), 400 if form.is_submitted() else 200
    values = form_values(form)
    if form.picture.encoded:
        values["picture"] = store_picture(form.picture.encoded)
    product = Product(**values)
    db.session.add(product)
    db.session.flush()  # gives it its id, for the change record
    db.session.add(ProductChange.of(product.id, current_user.email, {}, values))
    db.session.commit()
    flash(f"Added {product.name}.", "success")
    return redirect(url_for(".edit_product", product_id=product.id), code=303)


def ordered(product: Product) -> bool:
    """Whether any order holds this product (then it may only be hidden)."""
    return (
        db.session.scalar(
            select(OrderItem.id).where(OrderItem.product_id == product.id).limit(1)
        )
        is not None
    )


def render_product(product: Product, form: EditForm, status: int = 200):
    changes = db.session.scalars(
        select(ProductChange)
        .where(ProductChange.product_id == product.id)
        .order_by(ProductChange.id.desc())
    ).all()
    return render_template(
        "admin/product.html",
        form=form,
        product=product,
        ordered=ordered(product),
        changes=changes,
    ), status


@bp.route(f"/<int(max={MAX_ID}):product_id>", methods=["GET", "POST"])
def edit_product(product_id: int):
    """A product's page: its form, its delete button, its change history."""
    product = db.get_or_404(Product, product_id)
    form = EditForm(formdata=submitted_data(), data=product_data(product))
    if not form.validate_on_submit():
        return render_product(product, form, 400 if form.is_submitted() else 200)
    values = form_values(form)
    if form.picture.encoded:
        values["picture"] = store_picture(form.picture.encoded)
    old = {column: getattr(product, column) for column in values}
    if not product.change_if_stock_is(form.stock_shown.data, values):
        return changed_meanwhile(product, form, values.get("picture"))
    db.session.add(ProductChange.of(product.id, current_user.email, old, values))
    db.session.commit()
    if "picture" in values:
        remove_picture(old["picture"])
    flash(f"Saved {values['name']}.", "success")
    return redirect(url_for(".edit_product", product_id=product.id), code=303)


def changed_meanwhile(product: Product, form: EditForm, new_picture: str | None):
    """Refuse a save that lost a race (409), showing the product as it is now.

    Nothing was changed. The form comes back with the staff member's typing,
    but the stock (and the stock it shows) as it is now, for them to decide
    again.
    """
    db.session.rollback()
    remove_picture(new_picture)
    db.session.refresh(product)
    shown = form.stock_shown.data
    if product.stock != shown:
        message = (
            f"Not saved: the stock changed from {shown} to {product.stock} while"
            " you were editing (buyers ordered or gave some back). Check the"
            " stock and save again."
        )
    else:
        message = "Not saved: someone else saved this product while you were editing."
    flash(message, "error")
    current = {"stock": product.stock, "stock_shown": product.stock}
    again = EditForm(formdata=None, data=form.data | current)
    return render_product(product, again, 409)


@bp.post(f"/<int(max={MAX_ID}):product_id>/delete")
def delete_product(product_id: int):
    """The "Delete" button: only for a product no order holds."""
    product = db.get_or_404(Product, product_id)
    old = form_values_of(product)
    try:
        deleted = product.delete_if_never_ordered()
        if deleted:
            gone = {column: None for column in old}
            db.session.add(ProductChange.of(None, current_user.email, old, gone))
            db.session.commit()
    except IntegrityError:
        # An order for it was placed at this very moment: the key refused.
        deleted = False
    if not deleted:
        db.session.rollback()
        flash(
            f"{product.name} is in orders, so it cannot be deleted. Hide it instead.",
            "error",
        )
        return render_product(
            product, EditForm(formdata=None, data=product_data(product)), 409
        )
    remove_picture(old["picture"])
    flash(f"Deleted {old['name']}.", "success")
    return redirect(url_for(".product_list"), code=303)


def form_values_of(product: Product) -> dict:
    """What a product's change record holds: every column staff can set."""
    columns = ["name", "description", "price_paisa", "stock", "visible", "picture"]
    return {column: getattr(product, column) for column in columns}
