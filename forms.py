"""What the shop's forms and the back office's forms share."""

from flask_wtf import FlaskForm
from wtforms.validators import Regexp

# For a text field stored or looked up in the database: PostgreSQL refuses
# the NUL character in text, which would otherwise be a 500.
no_nul = Regexp(r"[^\x00]*\Z", message="That is not a valid value.")


def strip(value: str | None) -> str | None:
    """A field filter: surrounding spaces are never part of what was meant."""
    return value.strip() if value else value


def first_error(form: FlaskForm) -> str:
    """The first problem of a form that failed to validate, with its label."""
    field_name, errors = next(iter(form.errors.items()))
    return f"{form[field_name].label.text}: {errors[0]}"
