"""The shop in Nepali and English: every word a buyer reads is translated,
the language is the buyer's choice, and rupees are written as Nepal writes them."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from jinja2 import Environment

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
# The buyer's pages. The back office (admin/) and Khalti's stand-in (sandbox/)
# stay in English.
BUYER_TEMPLATES = sorted(TEMPLATES.glob("*.html"))
CATALOG = ROOT / "translations" / "ne" / "LC_MESSAGES"
GETTEXT_CALLS = {"_", "gettext", "ngettext"}
# Attributes a person reads or hears.
READ_ATTRIBUTES = {"alt", "title", "aria-label", "placeholder", "data-label"}


class VisibleText(HTMLParser):
    """Collects the text and the read attributes of an HTML fragment."""

    def __init__(self):
        super().__init__()
        self.words = []

    def handle_data(self, data):
        self.words.append(data)

    def handle_starttag(self, tag, attrs):
        self.words += [value or "" for name, value in attrs if name in READ_ATTRIBUTES]


def is_prose(value: str) -> bool:
    return " " in value and re.search("[A-Za-z]", value) is not None


def in_gettext(calls: list[str | None]) -> bool:
    return bool(calls) and calls[-1] in GETTEXT_CALLS


def unmarked_strings(source: str) -> list[str]:
    """Words in a template that reach the page without going through gettext.

    Two kinds: text between the template's tags (outside {{ }} and {% %}),
    and string literals inside them with a space in (prose, not a key like
    "paid") that are not an argument of _(), gettext() or ngettext().
    """
    found = []
    html = []  # the template's own text, each {{ }} or {% %} a "0"
    calls = []  # for each open parenthesis: the name called, if any
    previous = None
    for _, kind, value in Environment().lex(source):
        if kind == "data":
            html.append(value)
        elif kind in ("variable_begin", "block_begin"):
            html.append("0")
        elif kind == "operator" and value == "(":
            calls.append(previous[1] if previous and previous[0] == "name" else None)
        elif kind == "operator" and value == ")" and calls:
            calls.pop()
        elif kind == "string" and is_prose(value) and not in_gettext(calls):
            found.append(value)
        if kind != "whitespace":
            previous = (kind, value)
    parser = VisibleText()
    # A tag whose name is an expression, <{{ tag }}>, is still a tag.
    parser.feed(re.sub(r"<(/?)0", r"<\1x", "".join(html)))
    return found + [w.strip() for w in parser.words if re.search("[A-Za-z]", w)]


@pytest.mark.parametrize("path", BUYER_TEMPLATES, ids=lambda path: path.name)
def test_every_word_of_a_buyer_page_is_marked_for_translation(path):
    assert unmarked_strings(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "<p>Your cart</p>",
        '<img alt="A camera" src="x">',
        '{{ "Pay now" if x }}',
        '{% set steps = {"a": ("Order created", _("Saved"))} %}',
        '<td data-label="Total">',
    ],
)
def test_the_check_finds_words_left_unmarked(source):
    assert unmarked_strings(source)


def test_the_check_passes_marked_words_and_keys():
    source = (
        '<p>{{ _("Your cart") }}</p> {% if status == "paid" %}'
        '{{ ngettext("one item", "%(num)s items", n) }}{% endif %}'
    )
    assert unmarked_strings(source) == []


def test_every_message_has_a_nepali_translation_and_the_mo_is_up_to_date():
    with (CATALOG / "messages.po").open("rb") as po_file:
        po = read_po(po_file)
    with (ROOT / "translations" / "messages.pot").open("rb") as pot_file:
        pot_ids = {message.id for message in read_po(pot_file) if message.id}
    with (CATALOG / "messages.mo").open("rb") as mo_file:
        mo = read_mo(mo_file)

    def strings(catalog) -> dict:
        # A plural message's forms come as lists from a .mo, tuples from a .po.
        return {
            tuple(m.id) if m.pluralizable else m.id: (
                tuple(m.string) if m.pluralizable else m.string
            )
            for m in catalog
            if m.id
        }

    translated = strings(po)
    assert set(translated) == pot_ids, "run make messages"
    untranslated = [m.id for m in po if m.id and (not all(m.string) or m.fuzzy)]
    assert untranslated == []
    assert strings(mo) == translated, "run make translations"


# --- Choosing the language -----------------------------------------------------


def html_lang(page) -> str:
    return re.search(r'<html lang="([a-z]+)">', page.text)[1]


def test_the_browser_language_is_used_until_the_buyer_chooses(client):
    assert html_lang(client.get("/")) == "en"
    nepali = client.get("/", headers={"Accept-Language": "ne-NP,ne;q=0.9,en;q=0.5"})
    assert html_lang(nepali) == "ne"
    assert "<h1>पसल</h1>" in nepali.text
    french = client.get("/", headers={"Accept-Language": "fr"})
    assert html_lang(french) == "en"
    # The most wanted language that the shop speaks, regions aside.
    british = client.get("/", headers={"Accept-Language": "en-GB,ne;q=0.8"})
    assert html_lang(british) == "en"
    nepal = client.get("/", headers={"Accept-Language": "fr,ne-NP;q=0.9,en;q=0.8"})
    assert html_lang(nepal) == "ne"


def test_the_header_switch_is_a_link_that_is_remembered(client):
    page = client.get("/cart")
    switch = re.search(
        r'<a class="language-switch" href="([^"]+)"[^>]*>([^<]+)</a>', page.text
    )
    assert switch[2] == "नेपाली"
    response = client.get(switch[1].replace("&amp;", "&"))
    assert response.status_code == 303
    assert response.headers["Location"] == "/cart"
    # The session keeps the choice over the browser's own language.
    page = client.get("/", headers={"Accept-Language": "en"})
    assert html_lang(page) == "ne"
    assert ">English</a>" in page.text
    client.get("/language/en")
    assert html_lang(client.get("/", headers={"Accept-Language": "ne"})) == "en"


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example"]
)
def test_the_switch_sends_nobody_to_another_site(client, target):
    response = client.get("/language/ne", query_string={"next": target})
    assert response.headers["Location"] == "/"


def test_an_unknown_language_is_a_404_and_changes_nothing(client):
    assert client.get("/language/fr").status_code == 404
    assert html_lang(client.get("/")) == "en"


# --- Rupees, in each language ---------------------------------------------------


def test_prices_are_grouped_in_lakhs_in_both_languages(client, shop):
    shop.set_product("dslr-camera", price_paisa=123456750)
    assert "Rs 12,34,567.50" in client.get("/").text
    client.get("/language/ne")
    assert "नेरू\xa0१२,३४,५६७.५०" in client.get("/").text


def test_the_back_office_stays_english_with_lakh_grouping(client, shop, back_office):
    shop.set_product("jordan-air", price_paisa=12345600)
    order = shop.buy(("jordan-air", 1))
    client.get("/language/ne")
    page = client.get(f"/admin/orders/{order.purchase_order_id}")
    assert '<html lang="en">' in page.text
    assert "Rs 1,23,456.00" in page.text


# --- A purchase in Nepali --------------------------------------------------------


def test_messages_and_form_errors_are_in_nepali(client, shop):
    client.get("/language/ne")
    added = shop.add("jordan-air", 2)
    assert added.status_code == 303
    assert "२ × Jordan Air तपाईंको कार्टमा थपियो।" in client.get("/cart").text
    refused = shop.checkout(phone="12345")
    assert refused.status_code == 400
    assert "९७ वा ९८ बाट सुरु हुने १० अङ्कको मोबाइल नम्बर लेख्नुहोस्।" in refused.text
    too_many = shop.add("jordan-air", 500)
    assert too_many.status_code == 400
    assert "तपाईंको कार्टमा Jordan Air २ वटा पहिले नै छ" in too_many.text


def test_the_receipt_and_its_lesson_are_in_nepali_with_khaltis_words_kept(client, shop):
    client.get("/language/ne")
    order = shop.buy(("jordan-air", 1))
    page = client.get(f"/orders/{order.purchase_order_id}").text
    assert "यो भुक्तानी कसरी भयो" in page  # How this payment worked
    assert "निर्णय: भुक्तानी भयो" in page  # Verdict: paid
    assert '"status": "Completed"' in page  # Khalti's JSON, as Khalti sent it


def test_error_pages_are_in_nepali(client):
    client.get("/language/ne")
    page = client.get("/orders/no-such-order")
    assert page.status_code == 404
    assert "<h1>भेटिएन</h1>" in page.text
    assert '<html lang="ne">' in page.text
