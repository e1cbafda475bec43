"""shared/services/journeys/template_fallback.py: the store's template, else the shipped one, and why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.domain.template_variables import sample_variables
from shared.services.journeys.template_fallback import forget_slow_templates, render_or_fallback
from shared.templates.model import DEFAULT_STORE, SmsTemplate, TemplateError
from shared.templates.render import render_sms

SLOW = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    forget_slow_templates()
    yield
    forget_slow_templates()


class Templates:
    """The store's SMS template and, unless ``shipped`` is None, Boomerang's default."""

    def __init__(self, store_body: str, shipped: str | None = "Your cart is waiting") -> None:
        self.bodies = {"shop-1": store_body, DEFAULT_STORE: shipped}
        self.loads: list[str] = []
        self.renders: list[str] = []

    def load(self, owner: str) -> SmsTemplate:
        self.loads.append(owner)
        body = self.bodies[owner]
        if body is None:
            raise TemplateError("no sms template", template="cart-abandoned")
        return SmsTemplate(
            name="cart-abandoned", body=body, origin=f"s3://bucket/templates/{owner}/cart-abandoned/"
        )

    def render(self, template: SmsTemplate) -> str:
        self.renders.append(template.origin)
        return render_sms(template, sample_variables("cart-abandoned"))

    def send(self, notes: list[str]) -> str:
        return render_or_fallback("sms", self.load, self.render, store_id="shop-1", notes=notes)


def test_the_stores_template_when_it_renders() -> None:
    templates, notes = Templates("Hi {{ customer.first_name }}"), list[str]()
    assert templates.send(notes) == "Hi Ada"
    assert notes == [] and templates.loads == ["shop-1"]


def test_a_failing_store_template_gives_way_to_the_shipped_one_with_a_note() -> None:
    templates, notes = Templates("{{ customer.first_name|number }}"), list[str]()
    assert templates.send(notes) == "Your cart is waiting"
    [note] = notes
    assert note.startswith(
        "sms: the store's template failed (cart-abandoned/sms.txt:1: ValueError: number: '…'"
    )
    assert "Ada" not in note


def test_without_a_shipped_template_the_stores_error_goes_up() -> None:
    templates, notes = Templates("{{ customer.first_name|number }}", shipped=None), list[str]()
    with pytest.raises(TemplateError, match="is not a number"):
        templates.send(notes)
    assert notes == []


def test_a_shipped_template_that_fails_is_not_retried_as_its_own_fallback() -> None:
    templates = Templates("unused", shipped="{{ customer.first_name|number }}")
    with pytest.raises(TemplateError):
        render_or_fallback("sms", templates.load, templates.render, store_id=DEFAULT_STORE, notes=[])
    assert templates.loads == [DEFAULT_STORE]


def test_a_template_that_ran_out_of_cpu_is_set_aside_for_the_next_customers() -> None:
    # Given a store template that spent its whole budget once
    templates = Templates(SLOW)
    first: list[str] = []
    assert templates.send(first) == "Your cart is waiting"
    assert "too much work" in first[0] or "CPU budget" in first[0]
    # When the next customer's message renders in this container
    templates.renders.clear()
    later: list[str] = []
    assert templates.send(later) == "Your cart is waiting"
    # Then the slow template is not rendered again: the shipped one goes straight out
    assert templates.renders == ["s3://bucket/templates/_default/cart-abandoned/"]
    assert "set aside for a while" in later[0]
    # And a new version of the store's template is tried afresh
    fixed = Templates("Hi {{ customer.first_name }}")
    assert fixed.send([]) == "Hi Ada"


def test_a_cheap_error_does_not_set_the_template_aside() -> None:
    templates = Templates("{{ customer.first_name|number }}")
    templates.send([])
    templates.renders.clear()
    templates.send([])
    assert templates.renders[0] == "s3://bucket/templates/shop-1/cart-abandoned/"
