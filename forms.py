"""The shop's forms, and what they share with the back office's forms."""

import re
import secrets
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, StringField, TelField
from wtforms.validators import (
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

# Database ids are 32-bit; a larger number cannot name a product.
MAX_ID = 2**31 - 1

# For a text field stored or looked up in the database: PostgreSQL refuses
# the NUL character in text, which would otherwise be a 500.
no_nul = Regexp(r"[^\x00]*\Z", message="That is not a valid value.")


def strip(value: str | None) -> str | None:
    """A field filter: surrounding spaces are never part of what was meant."""
    return value.strip() if value else value


# A buyer typing in Nepali may write the number in Devanagari digits.
ASCII_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")


def without_separators(value: str | None) -> str | None:
    """A field filter for phone numbers: "981-234 5678" -> "9812345678"."""
    return re.sub(r"[\s-]", "", value).translate(ASCII_DIGITS) if value else value


def group_phone(digits: str) -> str:
    """A stored 10-digit mobile number as people read it: "981 234 5678"."""
    if len(digits) != 10:
        return digits
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def first_error(form: FlaskForm) -> str:
    """The first problem of a form that failed to validate, with its label."""
    field_name, errors = next(iter(form.errors.items()))
    return f"{form[field_name].label.text}: {errors[0]}"


def safe_next(target: str | None, default: str) -> str:
    """Where to send someone next: a path on this site, never another host.

    "//evil.example" and "/\\evil.example" are paths to Python but hosts to
    a browser, which also drops tabs and newlines from URLs.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


# --- The shop's forms ---------------------------------------------------------


class ProductForm(FlaskForm):
    """Names one product; used as is to remove a cart line."""

    product_id = IntegerField(
        _l("Product"),
        validators=[
            InputRequired(message=_l("This field is required.")),
            NumberRange(min=1, max=MAX_ID, message=_l("No such product.")),
        ],
    )


class CartLineForm(ProductForm):
    quantity = IntegerField(
        _l("Quantity"),
        validators=[
            InputRequired(message=_l("This field is required.")),
            NumberRange(min=1, message=_l("Enter a quantity of 1 or more.")),
        ],
    )


RELOAD_CHECKOUT = _l(
    "This form is out of date. Reload the checkout page and try again."
)


class OneTimeForm(FlaskForm):
    """A form that places an order: checkout's, and "Pay again"'s."""

    # A fresh random token each time the form is shown. Submitting the same
    # form again (a double click, a reload, the back button) carries the same
    # token, which the orders table allows only once: see place_order().
    checkout_token = HiddenField(
        _l("Checkout form"),
        default=lambda: secrets.token_urlsafe(16),
        validators=[
            InputRequired(message=RELOAD_CHECKOUT),
            Regexp(r"[A-Za-z0-9_-]{22}\Z", message=RELOAD_CHECKOUT),
        ],
    )


class CheckoutForm(OneTimeForm):
    name = StringField(
        _l("Full name"),
        filters=[strip],
        validators=[
            InputRequired(message=_l("This field is required.")),
            Length(max=100, message=_l("Field cannot be longer than 100 characters.")),
            # Control characters have no place in a name, and PostgreSQL
            # refuses to store a NUL.
            Regexp(r"[^\x00-\x1f\x7f]*\Z", message=_l("Use letters and spaces only.")),
        ],
    )
    email = EmailField(
        _l("Email"),
        filters=[strip],
        validators=[
            InputRequired(message=_l("This field is required.")),
            Email(message=_l("Invalid email address.")),
            Length(max=254, message=_l("Field cannot be longer than 254 characters.")),
        ],
    )
    phone = TelField(
        _l("Mobile number"),
        # "981 234 5678" and "981-2345678" are the same number: keep the digits.
        filters=[strip, without_separators],
        validators=[
            InputRequired(message=_l("This field is required.")),
            Regexp(
                r"9[78][0-9]{8}\Z",
                message=_l("Enter a 10-digit mobile number starting with 97 or 98."),
            ),
        ],
    )
    # The total the page showed, sent back with the form: the buyer pays
    # that total or is asked again (see checkout()). Optional: a form sent
    # by a script, or by a page opened before it existed, is not checked.
    total_paisa = HiddenField(
        validators=[Optional(), Regexp(r"[0-9]{1,12}\Z", message=RELOAD_CHECKOUT)]
    )
