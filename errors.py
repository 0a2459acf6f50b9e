"""The error pages: every 4xx and 5xx a visitor can meet, in their language,
in the layout of the half of the site they are in, never a traceback.
"""

from flask import render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from database import db


def init_app(app) -> None:
    """Register the error pages (called by `create_app`)."""
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(500, server_error)


def error_template() -> str:
    """The error page of the half of the site the error happened in.

    Under /admin/ the back office's, with a way back to the dashboard or the
    login; everywhere else the shop's, with a way back to the cart.
    """
    in_back_office = request.path == "/admin" or request.path.startswith("/admin/")
    return "admin/error.html" if in_back_office else "error.html"


def error_page(code: int, title: str, message: str):
    return render_template(
        error_template(), code=code, title=title, message=message
    ), code


# Werkzeug names and explains each error in English; the buyer reads these.
ERROR_TEXTS = {
    400: (_l("Bad request"), _l("The shop could not understand that request.")),
    403: (_l("Forbidden"), _l("That is not open to this browser.")),
    404: (_l("Not found"), _l("There is nothing at this address.")),
    405: (_l("Not allowed"), _l("This page cannot be used that way.")),
    409: (_l("Conflict"), _l("That changed while you were looking. Try again.")),
    413: (_l("Too large"), _l("What you sent is too large for the shop.")),
    429: (_l("Too many requests"), _l("Too many tries from here. Wait a little.")),
    502: (_l("Khalti did not answer"), _l("Khalti could not be reached just now.")),
}


def error_texts(error: HTTPException) -> tuple[str, str]:
    """The error's title and message in the buyer's language.

    A description the shop gave (abort(502, _("..."))) is already translated;
    Werkzeug's own English one is replaced.
    """
    title, message = ERROR_TEXTS.get(error.code, (error.name, error.description))
    if error.description != type(error).description:
        message = error.description
    return str(title), str(message)


def http_error(error: HTTPException):
    title, message = error_texts(error)
    # The error's own response keeps its headers (Retry-After, Allow).
    response = error.get_response()
    response.set_data(
        render_template(error_template(), code=error.code, title=title, message=message)
    )
    response.content_type = "text/html; charset=utf-8"
    return response


def csrf_error(error: CSRFError):
    message = _(
        "This form has expired or did not come from this site."
        " Reload the page and try again."
    )
    return error_page(400, _("Form expired"), message)


def server_error(error):
    db.session.rollback()
    return error_page(
        500, _("Something went wrong"), _("Please try again in a moment.")
    )
