"""Money as people read and type it. Inside the shop it is always paisa.

Rs 1 = 100 paisa, the unit Khalti uses. These functions are the only
places where paisa become rupees and rupees become paisa.
"""


def format_npr(paisa: int) -> str:
    """123456 paisa -> "Rs 1,234.56"."""
    return f"Rs {paisa // 100:,}.{paisa % 100:02d}"


def paisa_to_rupees(paisa: int) -> str:
    """123456 paisa -> "1234.56": rupees as a form or a spreadsheet takes them."""
    return f"{paisa // 100}.{paisa % 100:02d}"


def rupees_to_paisa(rupees: str) -> int:
    """ "12.5" -> 1250. The form has already checked the shape."""
    whole, _, fraction = rupees.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0"))
