"""MJML is compiled once per template version, not per send, and what is sent does not change."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from shared.domain.template_variables import sample_variables
from shared.templates import mjml
from shared.templates.model import EmailTemplate, TemplateError
from shared.templates.render import render_email

DEFAULTS = Path(__file__).resolve().parents[2] / "infra" / "templates" / "_default"
LAYOUTS = {p.name: p.read_text(encoding="utf-8") for p in (DEFAULTS / "_layout").iterdir()}


def polish_cart(body: str | None = None, layouts: dict[str, str] | None = None) -> EmailTemplate:
    folder = DEFAULTS / "cart-abandoned" / "pl"
    return EmailTemplate(
        name="cart-abandoned",
        subject=(folder / "subject.txt").read_text(encoding="utf-8"),
        html=body if body is not None else (folder / "body.mjml").read_text(encoding="utf-8"),
        text=(folder / "body.txt").read_text(encoding="utf-8"),
        locale="pl",
        layouts=layouts if layouts is not None else LAYOUTS,
        mjml=True,
    )


def customer(name: str) -> dict[str, Any]:
    variables = sample_variables("cart-abandoned", "pl")
    variables["customer"] = {**variables["customer"], "first_name": name}
    return variables


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every MJML compilation, counted; and an empty cache so each test starts cold."""
    calls: list[str] = []
    real = mjml.mjml_to_html

    def counting(source: str, **kw: Any) -> str:
        calls.append(source)
        return real(source, **kw)

    monkeypatch.setattr(mjml, "mjml_to_html", counting)
    monkeypatch.setattr(mjml, "_precompiled", type(mjml._precompiled)())
    return calls


def visible(page: str) -> str:
    page = re.sub(r"<!--.*?-->|<style.*?</style>", " ", page, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_later_sends_do_not_compile_mjml_again(compiles: list[str]) -> None:
    template = polish_cart()
    first = render_email(template, customer("Ada"))
    assert len(compiles) == 1

    for name in ("Grace", "Alan", "Łucja"):  # other customers, other carts' worth of data
        email = render_email(template, customer(name))
        assert f"Cześć {name}," in email.html

    assert len(compiles) == 1
    assert "Cześć Ada," in first.html


def test_a_new_version_of_the_body_or_layout_is_compiled_again(compiles: list[str]) -> None:
    render_email(polish_cart(), customer("Ada"))
    body = polish_cart().html.replace("Wróć do koszyka", "Do koszyka")
    assert "Do koszyka" in render_email(polish_cart(body=body), customer("Ada")).html
    layouts = {**LAYOUTS, "layout.mjml": LAYOUTS["layout.mjml"].replace("#f4f4f5", "#eeeeee")}
    assert "#eeeeee" in render_email(polish_cart(layouts=layouts), customer("Ada")).html
    assert len(compiles) == 3


def test_compiled_once_sends_what_compiling_per_send_sent(
    compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer name that needs escaping, and a sparse cart (no image, no total)
    variables = customer('<b>Zoë & "co"</b>')
    variables["cart"] = {**variables["cart"], "value": None}
    variables["cart"]["items"] = [{**variables["cart"]["items"][1], "image_url": None}]

    cached = render_email(polish_cart(), variables).html
    monkeypatch.setattr(mjml, "precompiled_mjml", lambda body, layouts: None)
    per_send = render_email(polish_cart(), variables).html

    assert visible(cached) == visible(per_send)
    for pattern in (r'href="[^"]*"', r"<img\b", r"<tr\b", r"<td\b"):
        assert len(re.findall(pattern, cached)) == len(re.findall(pattern, per_send)), pattern
    assert "&lt;b&gt;Zoë &amp;" in cached and "<b>Zoë" not in cached


def test_a_template_it_cannot_compile_ahead_is_compiled_per_send(compiles: list[str]) -> None:
    # a statement inside an MJML tag's attributes has no place to stand in compiled HTML
    body = polish_cart().html.replace(
        '<mj-button href="{{ recovery_url }}"',
        '<mj-button {% if recovery_url %}href="{{ recovery_url }}"{% endif %}',
    )
    first = render_email(polish_cart(body=body), customer("Ada"))
    render_email(polish_cart(body=body), customer("Grace"))
    assert len(compiles) == 2 and "Cześć Ada," in first.html


def test_a_render_error_still_names_the_source_line(compiles: list[str]) -> None:
    body = polish_cart().html.replace("{{ item.name }}</mj-text>", "{{ item.name | money('EUR') }}</mj-text>")
    with pytest.raises(TemplateError) as caught:
        render_email(polish_cart(body=body), customer("Ada"))
    assert caught.value.file == "body.mjml"
    assert (
        caught.value.line
        == body.splitlines().index(
            next(line for line in body.splitlines() if "money('EUR') }}</mj-text>" in line)
        )
        + 1
    )


@pytest.mark.parametrize(
    "extends",
    [
        "{% extends ''.__class__.__mro__[1].__subclasses__()[0].__name__ %}",
        '{% extends "layout.mjml" if "".__class__ else "layout.mjml" %}',
    ],
)
def test_only_a_literal_layout_is_resolved_ahead_the_rest_goes_to_the_sandbox(
    compiles: list[str], extends: str
) -> None:
    # an injection in extends must never be evaluated outside the sandbox, before any data exists
    body = polish_cart().html.replace('{% extends "layout.mjml" %}', extends)
    assert mjml.precompiled_mjml(body, LAYOUTS) is None
    with pytest.raises(TemplateError):
        render_email(polish_cart(body=body), customer("Ada"))


def test_a_variable_mjml_computes_with_is_compiled_per_send(compiles: list[str]) -> None:
    # mj-column's width decides the column classes: MJML needs the value, not a placeholder
    body = polish_cart().html.replace('<mj-column width="75%">', '<mj-column width="{{ 75 }}%">')
    assert mjml.precompiled_mjml(body, LAYOUTS) is None
    assert "mj-column-per-75" in render_email(polish_cart(body=body), customer("Ada")).html


def test_text_that_looks_like_a_marker_is_left_alone(compiles: list[str]) -> None:
    body = polish_cart().html.replace("Wróć do koszyka", "BMRGS0X")
    assert mjml.precompiled_mjml(body, LAYOUTS) is None
    assert "BMRGS0X" in render_email(polish_cart(body=body), customer("Ada")).html
