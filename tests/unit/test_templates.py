from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.domain import template_variables as catalog
from shared.templates.filters import href, money
from shared.templates.model import EmailTemplate, TemplateError
from shared.templates.render import render_email

DEFAULTS = Path(__file__).resolve().parents[2] / "infra" / "templates" / "_default"
SCRIPT = "<script>alert(1)</script>"


def default_template(name: str = "cart-abandoned") -> EmailTemplate:
    folder = DEFAULTS / name
    return EmailTemplate(
        name=name,
        subject=(folder / "subject.txt").read_text(encoding="utf-8"),
        html=(folder / "body.html").read_text(encoding="utf-8"),
        text=(folder / "body.txt").read_text(encoding="utf-8"),
        # the bodies extend the shared layout, which holds the footer
        layouts={f.name: f.read_text(encoding="utf-8") for f in (DEFAULTS / "_layout").glob("layout.*")},
    )


def cart_context(
    *, first_name: str | None = "Ada", is_last: bool = False, item_name: str = "Merino socks"
) -> dict:
    """The variables of a cart reminder (the groups the default cart template uses), held to the contract."""
    variables: dict[str, Any] = {
        "customer": {"first_name": first_name, "last_name": None, "locale": None},
        "store": {
            "name": "Lovelace & Co",
            "url": "https://shop.example.com",
            "address": None,
            "address_lines": [],
        },
        "cart": {
            "items": [
                {
                    "name": item_name,
                    "quantity": 2,
                    "price": Decimal("12.50"),
                    "currency": "USD",
                    "image_url": "https://cdn.example.com/socks.jpg",
                    "url": "https://shop.example.com/p/socks",
                    "line_total": Decimal("25.00"),
                },
                {
                    "name": "Analytical Engine poster",
                    "quantity": 1,
                    "price": Decimal("19.9"),
                    "currency": "USD",
                    "image_url": None,
                    "url": None,
                    "line_total": Decimal("19.9"),
                },
            ],
            "value": Decimal("44.90"),
            "currency": "USD",
            "item_count": 3,
        },
        "recovery_url": "https://shop.example.com/cart/recover?cart=c1&sig=abc",
        "unsubscribe_url": "https://api.example.com/v1/unsubscribe?t=v1.payload.sig",
        "preferences_url": "https://api.example.com/v1/preferences?t=v1.payload.sig",
        "step": {"id": "reminder-1", "index": 0, "is_last": is_last},
    }
    # every group is one cart-abandoned gets, each of exactly its contract shape
    assert set(variables) <= set(catalog.spec_for("cart-abandoned").groups)
    assert catalog.problems(variables, variables.keys()) == []
    return variables


def one(html: str = "", *, subject: str = "s", text: str = "") -> EmailTemplate:
    return EmailTemplate(name="t", subject=subject, html=html, text=text)


# --- escaping -------------------------------------------------------------------------------------


def test_product_name_is_escaped_in_html_and_verbatim_in_text() -> None:
    # Given a product name that is an XSS attempt
    rendered = render_email(default_template(), cart_context(item_name=SCRIPT))

    # Then the HTML carries it escaped, the text part as written
    assert SCRIPT not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert SCRIPT in rendered.text


def test_subject_is_not_html_escaped() -> None:
    rendered = render_email(one(subject="{{ store }} deals"), {"store": "Tom & Jerry's"})
    assert rendered.subject == "Tom & Jerry's deals"


def test_subject_is_one_line() -> None:
    rendered = render_email(one(subject="  Hello\n\n {{ name }}\r\n again  "), {"name": "Ada\nBcc: x"})
    assert rendered.subject == "Hello Ada Bcc: x again"


def test_empty_subject_is_an_error() -> None:
    with pytest.raises(TemplateError, match="subject"):
        render_email(one(subject="{{ '' }}  \n"), {})


# --- missing variables ----------------------------------------------------------------------------


def test_missing_variable_names_it() -> None:
    with pytest.raises(TemplateError, match="recovery_url") as info:
        render_email(one("<p>Hi</p>\n<a href='{{ recovery_url }}'>go</a>"), {})
    assert info.value.file == "body.html"
    assert info.value.line == 2
    assert "t/body.html:2" in str(info.value)


def test_missing_nested_attribute_names_it() -> None:
    with pytest.raises(TemplateError, match="first_name"):
        render_email(one(text="Hi {{ customer.first_name }}"), {"customer": {}})


def test_default_template_requires_its_contract() -> None:
    context = cart_context()
    del context["unsubscribe_url"]
    with pytest.raises(TemplateError, match="unsubscribe_url"):
        render_email(default_template(), context)


def test_syntax_error_reports_file_and_line() -> None:
    with pytest.raises(TemplateError, match="syntax error") as info:
        render_email(one(text="ok\n{% if %}"), {})
    assert (info.value.file, info.value.line) == ("body.txt", 2)


# --- sandbox --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ items.append(1) }}{{ items }}",
        "{{ config.update(a=1) }}",
        "{{ 'x' * 100000000 }}",
        "{% for i in range(10**9) %}{% endfor %}",
        "{{ 9 ** 99999999 }}",
    ],
)
def test_template_injection_is_refused(source: str) -> None:
    with pytest.raises(TemplateError):
        render_email(one(source), {"items": [], "config": {}})


def test_mapping_keys_win_over_dict_methods() -> None:
    # Jinja alone would resolve cart.items to dict.items; the contract means the key.
    rendered = render_email(
        one(text="{% for i in cart.items %}{{ i }};{% endfor %}"), {"cart": {"items": [1, 2]}}
    )
    assert rendered.text == "1;2;"


def test_href_keeps_only_web_links() -> None:
    assert href("https://a.example/x") == "https://a.example/x"
    assert href("javascript:alert(1)") == ""
    assert href(None) == ""
    rendered = render_email(one("<a href='{{ u | href }}'>x</a>"), {"u": "javascript:alert(1)"})
    assert "javascript" not in rendered.html


# --- money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (12.5, "USD", "$12.50"),
        (12.5, "EUR", "€12.50"),
        (12.5, "PLN", "PLN12.50"),  # English writes the code first; Polish writes 12,50 zł
        (12.5, "XYZ", "XYZ12.50"),
        (12.5, "eur", "€12.50"),
        (0.1 + 0.2, "USD", "$0.30"),  # no float artefacts
        (Decimal("1234567.005"), "GBP", "£1,234,567.01"),  # half-up
        ("19.9", "USD", "$19.90"),
        (3, "USD", "$3.00"),
        (1250, "JPY", "¥1,250"),
        (-5, "USD", "-$5.00"),
    ],
)
def test_money(amount: Any, currency: str, expected: str) -> None:
    assert money(amount, currency) == expected


@pytest.mark.parametrize("amount", [None, "abc", True, float("nan")])
def test_money_rejects_non_amounts(amount: Any) -> None:
    with pytest.raises(ValueError):
        money(amount, "USD")


def test_money_error_in_a_template_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="money"):
        render_email(one(text="{{ p | money('USD') }}"), {"p": "free"})


# --- the default cart-abandoned template ----------------------------------------------------------


def test_default_template_renders_a_complete_email() -> None:
    context = cart_context()
    rendered = render_email(default_template(), context)

    for part in (rendered.html, rendered.text):
        assert "Merino socks" in part
        assert "Analytical Engine poster" in part
        assert "$44.90" in part  # total
        assert "$12.50" in part  # unit price
        assert "Lovelace" in part
        assert "Unsubscribe" in part
    assert "Hi Ada," in rendered.html and "Hi Ada," in rendered.text
    # URLs: escaped as attribute values in HTML, as is in text
    assert 'href="https://shop.example.com/cart/recover?cart=c1&amp;sig=abc"' in rendered.html
    assert "https://shop.example.com/cart/recover?cart=c1&sig=abc" in rendered.text
    assert 'href="https://api.example.com/v1/unsubscribe?t=v1.payload.sig"' in rendered.html
    assert "https://api.example.com/v1/unsubscribe?t=v1.payload.sig" in rendered.text
    assert "Return to your cart" in rendered.html
    assert 'alt="Merino socks"' in rendered.html
    assert "max-width:600px" in rendered.html
    assert "Ada" in rendered.subject


def test_default_template_greets_without_a_name() -> None:
    rendered = render_email(default_template(), cart_context(first_name=None))
    assert "Hi there," in rendered.html and "Hi there," in rendered.text
    assert "None" not in rendered.subject + rendered.html + rendered.text


def test_last_step_changes_tone_and_subject() -> None:
    first = render_email(default_template(), cart_context(is_last=False))
    last = render_email(default_template(), cart_context(is_last=True))

    assert first.subject != last.subject
    assert "last chance" in last.subject.lower()
    assert "expire" in last.subject.lower()
    assert "Last chance" in last.html and "Last chance" in last.text
    assert "Last chance" not in first.html


def test_compiled_templates_are_reused_by_content() -> None:
    # Same source under two names renders per its own variables (cache keyed by content only).
    a = render_email(EmailTemplate("a", "{{ x }}", "{{ x }}", "{{ x }}"), {"x": "<1>"})
    b = render_email(EmailTemplate("b", "{{ x }}", "{{ x }}", "{{ x }}"), {"x": "2"})
    assert (a.html, a.text, b.text) == ("&lt;1&gt;", "<1>", "2")


def test_default_template_tolerates_unknown_total_and_store_url() -> None:
    context = cart_context()
    context["cart"]["value"] = None
    context["store"]["url"] = None

    rendered = render_email(default_template(), context)

    assert "None" not in rendered.html + rendered.text
    assert "Total" not in rendered.text
