"""The buyer's language and Nepal's clock: what people read, in their terms.

The shop speaks Nepali (`ne`) and English (`en`), with Flask-Babel: the
buyer's choice from the header's switch (kept in the session), else the
browser's Accept-Language, else English. The back office stays English.

Times are stored as UTC (naive datetimes, as models.now_utc makes them) and
shown in SHOP_TIMEZONE, Nepal's time unless set otherwise.
"""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale
from nepali.datetime import nepalidate

LANGUAGES = ("ne", "en")

# Each language's name in itself, as the header's switch shows it.
LANGUAGE_NAMES = {"ne": "नेपाली", "en": "English"}

# Babel writes the `ne` locale's numbers with ASCII digits; Nepali readers
# expect Devanagari ones.
DEVANAGARI_DIGITS = str.maketrans("0123456789", "०१२३४५६७८९")

babel = Babel()


def init_app(app: Flask) -> None:
    """Wire Flask-Babel into the shop (called by `create_app`)."""
    babel.init_app(app, locale_selector=select_locale)
    app.add_template_filter(shop_time, "shop_time")
    app.add_template_filter(iso_time, "iso_time")
    app.add_template_filter(digits, "digits")
    app.add_template_filter(bikram_sambat, "bikram_sambat")
    app.add_template_global(LANGUAGE_NAMES, "language_names")
    app.add_template_global(zone_name, "shop_zone_name")


def select_locale() -> str:
    """The buyer's language: their choice, else their browser's, else English."""
    # The back office is written in English only; its amounts follow it.
    if request.blueprint == "admin":
        return "en"
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return chosen
    # The browser's languages, most wanted first; "ne-NP" is Nepali. (Werkzeug's
    # best_match would prefer an exact "ne" at q=0.8 to "en-GB" at q=1.)
    for value, _quality in request.accept_languages:
        language = value.split("-")[0].lower()
        if language in LANGUAGES:
            return language
    return "en"


def is_nepali() -> bool:
    return str(get_locale()) == "ne"


def in_nepali_digits(text: str) -> str:
    """Digits as a Nepali reader writes them when the page is in Nepali."""
    return text.translate(DEVANAGARI_DIGITS) if is_nepali() else text


def digits(number: int) -> str:
    """A count as the page's language writes it: 12, or १२ in Nepali."""
    return in_nepali_digits(str(number))


def shop_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["SHOP_TIMEZONE"])


def local_time(moment: datetime) -> datetime:
    """A stored UTC time as the shop's clock reads it, offset attached."""
    return moment.replace(tzinfo=UTC).astimezone(shop_zone())


def utc_start_of(day: date) -> datetime:
    """When a day on the shop's clock begins, as a stored (naive UTC) time."""
    start = datetime.combine(day, time.min, tzinfo=shop_zone())
    return start.astimezone(UTC).replace(tzinfo=None)


def bikram_sambat(moment: datetime) -> str | None:
    """The day of a stored time in Nepal's calendar: "२०८१ बैशाख १".

    The Bikram Sambat calendar has no formula: its months' lengths come from
    published tables, which py-nepali carries (to about 2043 AD). Outside
    them there is no date to show, rather than a guessed one.
    """
    try:
        day = nepalidate.from_date(local_time(moment).date())
    except ValueError:
        return None
    return day.strftime_ne("%Y %B %-d")


def zone_name() -> str:
    """The shop's time zone by name, in the page's language: "Nepal Time"."""
    now = datetime.now(UTC).astimezone(shop_zone())
    return format_datetime(now, "vvvv", locale=str(get_locale()))


def iso_time(moment: datetime) -> str:
    """ISO 8601 with the offset: "2025-01-03T02:15:00+05:45", for machines."""
    return local_time(moment).isoformat(timespec="seconds")


def shop_time(moment: datetime, pattern: str = "yyyy-MM-dd HH:mm") -> str:
    """A stored UTC time, in the shop's time zone, in the page's digits.

    The pattern is a Babel (CLDR) one, so month names follow the language.
    """
    text = format_datetime(local_time(moment), pattern, locale=str(get_locale()))
    return in_nepali_digits(text)
