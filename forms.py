"""What the shop's forms and the back office's forms share."""

import re
from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms.validators import Regexp

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
