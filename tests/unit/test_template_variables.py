"""The variables a journey step builds are the ones the contract declares, of the declared shapes.

shared/domain/template_variables.py is the one contract: lint holds templates to it, its samples are
what lint and `boomerang templates preview` render with, and here the step's builder
(shared/services/journeys/variables.py) is held to it for every shipped journey, step and template.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared.adapters.journey_catalog import parse
from shared.domain import template_variables as catalog
from shared.domain.carts import Cart, CartLine
from shared.domain.journeys import EMAIL_CONFIRMATION, Journey
from shared.domain.offers import GivenOffer
from shared.domain.profiles import Loyalty, Orders, Profile, ViewedProduct
from shared.domain.stores import PostalAddress, Store
from shared.services.journeys.context import StepInput
from shared.services.journeys.variables import products_for, template_variables

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = [
    *(
        parse(p.read_text(), str(p), expected_id=p.stem)
        for p in sorted((ROOT / "infra/journeys").glob("*.yaml"))
    ),
    EMAIL_CONFIRMATION,
]
SHOP = "https://shop.example.com"
# What the journey step (shared/services/journeys/step.py) adds to the builder's variables, signed
# with the customer's token: the preferences link always, the confirmation link for double opt-in.
PREFERENCES = "https://api.example.com/v1/preferences?t=sig"
CONFIRM = "https://api.example.com/v1/confirm?t=sig"
CATALOG = [  # products as the catalog store returns them
    {
        "sku": "TR-2",
        "name": "Trail Runner 2",
        "price": "89.00",
        "currency": "EUR",
        "image_url": None,
        "url": None,
    },
    {"sku": "SOCK", "name": None, "price": None, "image_url": f"{SHOP}/s.jpg", "url": f"{SHOP}/p/sock"},
]


def store(*, full: bool) -> Store:
    address = PostalAddress(lines=["1 Harbour Street"], city="Bristol", postal_code="BS1 4AA", country="GB")
    return Store(
        store_id="shop-1",
        name="Acme",
        url=SHOP,
        sender_email="shop@example.com",
        address=address if full else None,
    )


def profile(*, full: bool) -> Profile:
    if not full:
        return Profile(store_id="shop-1", customer_id="u:ada")
    viewed = [ViewedProduct(sku="TR-2", name="Trail Runner 2", price=Decimal("89"), currency="EUR", at=2.0)]
    return Profile(
        store_id="shop-1",
        customer_id="u:ada",
        traits={"first_name": "Ada", "last_name": "Lovelace", "locale": "en-GB"},
        viewed=[*viewed, ViewedProduct(product_id="p-9", at=1.0)],
        loyalty=Loyalty(points=420, tier="silver"),
        orders=Orders(count=1, first_order_at=1_700_000_000.0),
    )


def cart(*, full: bool) -> Cart:
    lines = {"TR-2": CartLine(sku="TR-2", name="Trail Runner 2", quantity=1, updated_at=1.0)}
    if full:
        lines["SOCK"] = CartLine(
            sku="SOCK", price=Decimal("19.50"), quantity=2, currency="EUR", updated_at=2.0
        )
    return Cart(store_id="shop-1", cart_id="c-1", lines=lines, currency="EUR" if full else None)


def state(journey: Journey, *, full: bool) -> StepInput:
    context: dict[str, Any] = {}
    if journey.per in ("order", "shipment"):
        context = {
            "order_id": "1001",
            "currency": "EUR",
            "products": [{**CATALOG[0], "quantity": 2}, CATALOG[1]],
        }
        if full:
            context["total"] = "128.00"
    if journey.per == "shipment":
        context["shipment"] = {"status": "shipped", "partner_id": "acme"}
        if full:
            context["shipment"] |= {"carrier": "DHL", "tracking_url": "https://t.example/1"}
    if journey.per == "product":
        context = {"product": CATALOG[0] if full else {"sku": "TR-2"}}
    occasion = "2026-11-23" if journey.trigger.schedule or journey.trigger.broadcast else None
    return StepInput(
        store_id="shop-1", journey=journey.id, instance="i-1", occasion=occasion, context=context
    )


def built(journey: Journey, index: int, *, full: bool) -> dict[str, Any]:
    """What the step would give the template of ``journey.steps[index]``."""
    step = journey.steps[index]
    the_state, the_profile = state(journey, full=full), profile(full=full)
    deps = SimpleNamespace(
        products=SimpleNamespace(collection=lambda *_: CATALOG, related=lambda *_: CATALOG)
    )
    products = products_for(step.products, the_state, the_profile, deps) if step.products else []  # type: ignore[arg-type]
    offer = (
        GivenOffer(code="SAVE10", description="10% off", expires_at=1_798_761_599.0, pool="p")
        if full
        else None
    )
    variables = template_variables(
        the_state,
        journey,
        step,
        index,
        cart(full=full) if journey.per == "cart" else None,
        the_profile,
        store(full=full),
        "email",
        "https://api.example.com/v1/unsubscribe?t=sig",
        offer,
        products,
    )
    variables["preferences_url"] = PREFERENCES
    if journey.id == EMAIL_CONFIRMATION.id:
        variables["confirm_url"] = CONFIRM
    return variables


STEPS = [
    (journey, index, name)
    for journey in JOURNEYS
    for index, step in enumerate(journey.steps)
    for name in dict.fromkeys((step.template, *(v.template for v in step.variants if v.template)))
]


@pytest.mark.parametrize("full", [True, False], ids=["full", "sparse"])
@pytest.mark.parametrize(
    ("journey", "index", "name"), STEPS, ids=[f"{j.id}-{j.steps[i].id}-{n}" for j, i, n in STEPS]
)
def test_the_builder_gives_each_template_its_contract(
    journey: Journey, index: int, name: str, full: bool
) -> None:
    # Every group the template's row declares is there, every value has its declared shape (no
    # attribute missing, none undeclared), and nothing is outside the contract.
    assert name in catalog.TEMPLATES, f"{name}: add its row to TEMPLATES"
    assert catalog.problems(built(journey, index, full=full), catalog.spec_for(name).groups) == []


def test_every_shipped_template_row_is_built_by_some_journey() -> None:
    assert {name for _, _, name in STEPS} == set(catalog.TEMPLATES)


@pytest.mark.parametrize("name", [*catalog.TEMPLATES, "not-in-the-table", catalog.LAYOUT_NAME])
def test_samples_follow_the_contract(name: str) -> None:
    sample = catalog.sample_variables(name)
    assert set(sample) == set(catalog.spec_for(name).groups)
    assert catalog.problems(sample, catalog.spec_for(name).groups) == []


def test_the_check_names_what_departs() -> None:
    variables = catalog.sample_variables("cart-abandoned")
    variables["cart"] = {**variables["cart"], "items": [{**variables["cart"]["items"][0], "sku": "TR-2"}]}
    variables["customer"] = {"first_name": 7, "locale": None}
    variables["coupon"] = "X"
    del variables["step"]
    assert catalog.problems(variables, catalog.spec_for("cart-abandoned").groups) == [
        "step: missing",
        "customer.last_name: missing",
        "customer.first_name: expected str, got int 7",
        "cart.items[0].sku: not in the contract",
        "coupon: not in the contract",
    ]
    assert catalog.problems({"offer": None, "loyalty": None, "links": {"shop": None}}, ()) == [
        "links.recovery: missing",
        "links.review: missing",
        "links.referral: missing",
    ]
    assert catalog.problems({"cart": None}, ()) == ["cart: None where the contract has an object or a list"]
