"""Lint: what a marketer's upload is refused for, with the file and line that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.domain import template_variables as catalog
from shared.templates.lint import lint_folder, lint_source, lint_unit
from shared.templates.model import EmailTemplate, SmsTemplate, TemplateError
from shared.templates.render import render_email, render_sms

DEFAULTS = Path(__file__).resolve().parents[2] / "infra" / "templates" / "_default"

INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ customer['__class__'] }}",
    "{{ customer|attr('__class__') }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ config.items() }}",
    "{% for c in ''.__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ namespace.__init__.__globals__ }}",
]


@pytest.mark.parametrize("source", INJECTIONS)
def test_injection_is_refused_by_lint_with_its_line(source: str) -> None:
    problems = lint_source("Hello\n" + source, file="body.html", template="cart-abandoned")
    assert problems, source
    assert all(p.line == 2 for p in problems)
    assert any("unsafe" in p.message for p in problems)


@pytest.mark.parametrize("source", [s for s in INJECTIONS if "config" not in s])  # config: just unknown
def test_injection_is_refused_by_the_renderer_too(source: str) -> None:
    # (the renderer never sees lint's verdict: the sandbox stands on its own)
    template = EmailTemplate("cart-abandoned", "s", source, "t")
    with pytest.raises(TemplateError):
        render_email(template, {"customer": {"first_name": "Ada"}, "request": {}, "config": {}})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ custmer.first_name }}", "unknown variable 'custmer'; this template may use: cart, customer"),
        (
            "{{ customer.frist_name }}",
            "unknown variable customer.frist_name; customer has: first_name, last_name, locale",
        ),
        ("{% for i in cart.items %}{{ i.nme }}{% endfor %}", "unknown variable i.nme; i has: currency"),
        ("{{ cart.items.name }}", "cart.items is a list"),
        ("{{ customer.first_name.format() }}", "'format' is not allowed"),
        ("{% include 'x.html' %}", "include/import is not allowed"),
        ('{% extends "other.html" %}', 'only {% extends "layout.html" %}'),
        ("{{ x | nosuch }}", "syntax error: No filter named 'nosuch'"),
        ("{% if %}", "syntax error"),
    ],
)
def test_mistakes_are_named(source: str, expected: str) -> None:
    problems = lint_source(source, file="body.html", template="cart-abandoned")
    assert any(expected in p.message for p in problems), [str(p) for p in problems]


def test_what_a_template_may_use_passes() -> None:
    source = (
        "{% set greeting = 'Hi' %}{{ greeting }} {{ customer.first_name.title() }}\n"
        "{% for item in cart.items[:3] %}{{ loop.index }} {{ item.name }} {{ item.price | money(item.currency) }}"
        "{% endfor %}{% if offer %}{{ offer.code }} {{ offer.expires_at | date }}{% endif %}\n"
        "{% macro row(p) %}{{ p }}{% endmacro %}{{ row(store.name) }} {{ links.recovery | href }}"
    )
    assert lint_source(source, file="body.html", template="cart-abandoned") == []


def test_variables_follow_the_table() -> None:
    # cart is a cart template's, not the birthday's
    assert lint_source("{{ cart.value }}", file="body.txt", template="cart-abandoned") == []
    problems = lint_source("{{ cart.value }}", file="body.txt", template="birthday")
    assert [p.message.split(";")[0] for p in problems] == ["unknown variable 'cart'"]
    assert "occasion" in catalog.TEMPLATES["birthday"].groups


def _default_layouts(locale: str) -> dict[str, str]:
    folder = DEFAULTS / "_layout"
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.is_file()}


def test_every_shipped_template_passes_lint() -> None:
    for folder in sorted(p for p in DEFAULTS.iterdir() if p.is_dir()):
        files = {
            p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in folder.rglob("*")
            if p.is_file()
        }
        general, per_unit = lint_folder(folder.name, files, layouts_for=_default_layouts)
        assert general == [] and all(v == [] for v in per_unit.values()), folder.name


def test_marketing_email_needs_a_visible_unsubscribe_link() -> None:
    files = {
        "subject.txt": "Hi",
        "body.html": "<p>Come back</p>",
        "body.txt": "Come back {{ unsubscribe_url }}",
    }
    (problem,) = lint_unit("cart-abandoned", "", "email", files)
    assert problem.file == "body.html" and "unsubscribe link" in problem.message
    # a transactional one does not
    assert lint_unit("order-confirmation", "", "email", files) == []


def test_marketing_email_needs_the_store_postal_address() -> None:
    # Given a marketing email with an unsubscribe link but no address in its footer
    files = {
        "subject.txt": "Hi",
        "body.html": '<p>Come back</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        "body.txt": "Come back {{ unsubscribe_url }}",
    }
    (problem,) = lint_unit("cart-abandoned", "", "email", files)
    assert problem.file == "body.html" and "postal address" in problem.message
    assert "{{ store.address }}" in problem.message
    # the one-line form or the lines one by one both count; a transactional email needs neither
    one_line = {**files, "body.html": files["body.html"] + "<p>{{ store.address }}</p>"}
    assert lint_unit("cart-abandoned", "", "email", one_line) == []
    lines = "{% for line in store.address_lines %}{{ line }}<br>{% endfor %}"
    assert lint_unit("cart-abandoned", "", "email", {**files, "body.html": files["body.html"] + lines}) == []
    assert lint_unit("order-confirmation", "", "email", files) == []


def test_layout_must_show_the_address_and_link_unsubscribe() -> None:
    layout = '{% block content %}{% endblock %}<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    (problem,) = lint_unit("_layout", "", "layout", {"layout.html": layout})
    assert problem.file == "layout.html" and "postal address" in problem.message
    assert lint_unit("_layout", "", "layout", {"layout.html": layout + "{{ store.address }}"}) == []


def test_layout_footer_shows_address_and_preferences_link() -> None:
    # Given a body that extends the shipped layout
    files = {
        "subject.txt": "Hi",
        "body.html": '{% extends "layout.html" %}{% block content %}<p>Come back</p>{% endblock %}',
        "body.txt": '{% extends "layout.txt" %}{% block content %}Come back{% endblock %}',
    }
    assert lint_unit("cart-abandoned", "", "email", files, _default_layouts("")) == []
    email = render_email(
        EmailTemplate(
            "cart-abandoned",
            files["subject.txt"],
            files["body.html"],
            files["body.txt"],
            layouts=_default_layouts(""),
        ),
        catalog.sample_variables("cart-abandoned"),
    )
    for rendered in (email.html, email.text):
        assert "1 Harbour Street, Bristol BS1 4AA, United Kingdom" in rendered
        assert catalog.SAMPLES["preferences_url"] in rendered
    assert "Manage preferences</a>" in email.html
    # a template without a preferences link (the double opt-in message) still renders the layout
    confirm = catalog.sample_variables("confirm-email")
    assert "preferences_url" not in confirm
    bare = render_email(
        EmailTemplate(
            "confirm-email", "Hi", files["body.html"], files["body.txt"], layouts=_default_layouts("")
        ),
        confirm,
    )
    assert "Manage preferences" not in bare.html + bare.text


def test_sms_over_its_segments_is_refused_with_the_count() -> None:
    long = "{{ store.name }}: " + "a" * 200 + " {{ recovery_url }}"
    (problem,) = lint_unit("cart-abandoned", "", "sms", {"sms.txt": long, "sms.json": '{"max_segments": 2}'})
    assert problem.file == "sms.txt"
    assert "SMS is 3 segments" in problem.message and "more than the 2 declared" in problem.message
    assert lint_unit("cart-abandoned", "", "sms", {"sms.txt": long, "sms.json": '{"max_segments": 3}'}) == []


def test_bad_sms_json_names_what_is_allowed() -> None:
    (problem,) = lint_unit("cart-abandoned", "", "sms", {"sms.txt": "hi", "sms.json": '{"segments": 3}'})
    assert problem.file == "sms.json" and "allowed: max_segments" in problem.message


def test_runtime_error_with_sample_data_points_at_the_line() -> None:
    files = {
        "subject.txt": "Hi",
        "body.txt": "ok\n{{ customer.first_name | money('EUR') }}",
        "body.html": "{{ unsubscribe_url }}",
    }
    problems = lint_unit("cart-abandoned", "", "email", files)
    assert [(p.file, p.line) for p in problems] == [("body.txt", 2)]
    assert "with sample data" in problems[0].message


def test_unknown_files_and_locale_folders_are_named() -> None:
    general, _ = lint_folder("cart-abandoned", {"subjct.txt": "x", "english/subject.txt": "x"})
    messages = {p.file: p.message for p in general}
    assert "unknown file name" in messages["subjct.txt"]
    assert "not a locale folder" in messages["english/subject.txt"]


def test_incomplete_channel_says_what_is_missing() -> None:
    _, per_unit = lint_folder("cart-abandoned", {"pl/subject.txt": "Cześć"})
    (problem,) = per_unit[("pl", "email")]
    assert problem.message.startswith("missing: the email template for pl also needs body.txt, body.html")


def test_locale_aware_filters() -> None:
    template = SmsTemplate("t", "{{ p | money('EUR') }} {{ n | number }} {{ d | date('long') }}")
    variables = {"p": "1234.5", "n": 1234567.891, "d": 1798761599}

    def spaced(text: str) -> str:  # Babel writes no-break spaces
        return text.replace("\xa0", " ").replace("\u202f", " ")

    assert spaced(render_sms(template, variables, locale="en")) == "€1,234.50 1,234,567.891 December 31, 2026"
    assert spaced(render_sms(template, variables, locale="pl")) == "1 234,50 € 1 234 567,891 31 grudnia 2026"
    assert (
        spaced(render_sms(template, variables, locale="pt-BR"))
        == "€ 1.234,50 1.234.567,891 31 de dezembro de 2026"
    )
