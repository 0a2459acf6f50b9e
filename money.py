"""Money as people read and type it. Inside the shop it is always paisa.

Rs 1 = 100 paisa, the unit Khalti uses. These functions are the only
places where paisa become rupees and rupees become paisa.
"""

from decimal import Decimal

from babel.numbers import format_currency, format_decimal

import i18n

# Lakh grouping, the way amounts are written in Nepal: 12,34,567.50.
LAKH_PATTERN = "#,##,##0.00"


def format_npr(paisa: int) -> str:
    """123456789 paisa -> "Rs 12,34,567.89", or "नेरू १२,३४,५६७.८९" in Nepali.

    Nepali uses Babel's own `ne` currency format (which groups in lakhs),
    with Devanagari digits; English keeps "Rs" and the same grouping.
    """
    rupees = Decimal(paisa) / 100
    if i18n.is_nepali():
        return i18n.in_nepali_digits(format_currency(rupees, "NPR", locale="ne"))
    return "Rs " + format_decimal(rupees, format=LAKH_PATTERN, locale="en")


def paisa_to_rupees(paisa: int) -> str:
    """123456 paisa -> "1234.56": rupees as a form or a spreadsheet takes them."""
    return f"{paisa // 100}.{paisa % 100:02d}"


def rupees_to_paisa(rupees: str) -> int:
    """ "12.5" -> 1250. The form has already checked the shape."""
    whole, _, fraction = rupees.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0"))
