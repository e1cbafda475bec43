"""What a template may use: the variables of each template, their shapes, and sample values.

One table (:data:`TEMPLATES`) says which variable groups each template receives and whether it is
marketing (must show an unsubscribe link). Lint refuses any variable or attribute not listed here,
so a typo (``custmer.first_name``) or an injection attempt never reaches a send. To give a template
more variables, add the group to its row; to add a group, describe its shape in :data:`GROUPS` and
give it a sample in :data:`SAMPLES`.

This module is the one contract: lint checks templates against it (shared/templates/lint.py), lint's
trial render and ``boomerang templates preview`` use its samples, and :func:`problems` is how the
tests hold the samples and the journey step's builder (shared/services/journeys/variables.py) to it.

Shapes are small trees: a dict is an object with exactly those attributes, a one-element list is a
list of that shape, and a leaf is a type name (``str``, ``number``, ``int``, ``bool``, ``epoch``,
``url``). Every leaf may also be ``None`` unless the journeys guarantee it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

Shape = dict[str, Any] | list[Any] | str

PRODUCT: dict[str, Shape] = {
    "name": "str",
    "price": "number",
    "currency": "str",
    "image_url": "url",
    "url": "url",
}
CART_LINE: dict[str, Shape] = {**PRODUCT, "quantity": "int", "line_total": "number"}
ORDER_LINE: dict[str, Shape] = {**PRODUCT, "quantity": "int"}

# Every variable group a journey step can pass, and its shape (shared/services/journeys/step.py builds them).
GROUPS: dict[str, Shape] = {
    "customer": {"first_name": "str", "last_name": "str", "locale": "str"},
    # address: the postal address on one line; address_lines: the same, one element per line
    "store": {"name": "str", "url": "url", "address": "str", "address_lines": ["str"]},
    "journey": {"id": "str", "name": "str"},
    "step": {"id": "str", "index": "int", "is_last": "bool"},
    "links": {"shop": "url", "recovery": "url", "review": "url", "referral": "url"},  # with UTM
    "unsubscribe_url": "url",
    "preferences_url": "url",  # signed link to the customer's preferences page (channels, topics)
    "offer": {"code": "str", "description": "str", "expires_at": "epoch", "expires_on": "str"},
    "loyalty": {"points": "int", "tier": "str", "next_tier": "str", "points_to_next": "int"},
    "cart": {"items": [CART_LINE], "value": "number", "currency": "str", "item_count": "int"},
    "recovery_url": "url",
    "viewed": [PRODUCT],
    "order": {"order_id": "str", "total": "number", "currency": "str", "items": [ORDER_LINE]},
    "products": [PRODUCT],
    "product": {"sku": "str", **PRODUCT},
    "occasion": {"kind": "str", "date": "str", "years": "int"},
    "confirm_url": "url",
    # a fulfilment partner's (or the store's) shipping update: Order Shipped / Order Delivered
    "shipment": {
        "status": "str",
        "carrier": "str",
        "tracking_number": "str",
        "tracking_url": "url",
        "partner_id": "str",
        "shipment_id": "str",
    },
}

# What every journey message gets; offer and loyalty may be None (test with {% if offer %}).
BASE = (
    "customer",
    "store",
    "journey",
    "step",
    "links",
    "unsubscribe_url",
    "preferences_url",
    "offer",
    "loyalty",
)
CART = ("cart", "recovery_url")
# Groups that are objects but may be None as a whole (every leaf may be None anyway).
OPTIONAL = frozenset({"offer", "loyalty"})


class TemplateSpec:
    """One row of the table: the variable groups a template gets, and whether it is marketing."""

    def __init__(self, groups: tuple[str, ...], *, marketing: bool = True, description: str = "") -> None:
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown variable groups {unknown}")
        self.groups = groups
        self.marketing = marketing
        self.description = description

    def shape(self) -> dict[str, Shape]:
        return {g: GROUPS[g] for g in self.groups}


def _row(*extra: str, marketing: bool = True, description: str = "") -> TemplateSpec:
    return TemplateSpec((*BASE, *extra), marketing=marketing, description=description)


# THE table: template name -> its variables. Add a row (or a group to a row) here.
TEMPLATES: dict[str, TemplateSpec] = {
    "welcome": _row(description="new subscriber"),
    "brand-story": _row(description="welcome series"),
    "best-sellers": _row("products", description="welcome series: a catalog collection"),
    "browse-abandoned": _row("viewed", description="viewed, not bought"),
    "cart-abandoned": _row(*CART, description="cart abandonment reminders"),
    "cart-offer": _row(*CART, description="cart abandonment with an offer"),
    "cart-last-chance": _row(*CART, description="last cart reminder"),
    "checkout-abandoned": _row(*CART, description="checkout started, not finished"),
    "order-confirmation": _row("order", marketing=False, description="after an order (transactional)"),
    "review-request": _row("order", description="ask for a review"),
    "order-shipped": _row(
        "order", "shipment", marketing=False, description="on its way, with tracking (transactional)"
    ),
    "referral-loyalty": _row("order", description="refer a friend"),
    "complementary-products": _row("order", "products", description="goes with what was bought"),
    "win-back": _row(description="lapsed customers"),
    "win-back-offer": _row(description="lapsed customers, with an offer"),
    "order-anniversary": _row("occasion", description="first order anniversary"),
    "loyalty-tier": _row(description="loyalty tier reached"),
    "birthday": _row("occasion", description="birthday greeting"),
    "back-in-stock": _row(
        "product", marketing=False, description="a product the customer asked about is back"
    ),
    "confirm-email": TemplateSpec(
        ("customer", "store", "journey", "step", "confirm_url", "unsubscribe_url"),
        marketing=False,
        description="double opt-in confirmation (transactional)",
    ),
}
# Templates not in the table (a new journey's, before its row is added) get every group: lint still
# refuses names that are in no group at all and every unsafe construct.
FALLBACK = TemplateSpec(tuple(GROUPS), description="any template not listed above")
# The shared layout is rendered with the variables of the template that extends it.
LAYOUT_SPEC = TemplateSpec(tuple(GROUPS), description="the shared layout")
LAYOUT_NAME = "_layout"

# Names Jinja itself provides that a template may use; everything else is a variable.
BUILTINS = frozenset({"range", "loop", "true", "false", "none", "True", "False", "None"})
# Methods of plain values a template may call ({{ customer.first_name.title() }}).
STR_METHODS = frozenset(
    {"upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith", "endswith"}
)


def spec_for(name: str) -> TemplateSpec:
    if name == LAYOUT_NAME:
        return LAYOUT_SPEC
    return TEMPLATES.get(name, FALLBACK)


def _line(name: str, price: str, qty: int, image: str) -> dict[str, Any]:  # a cart line
    return {
        "name": name,
        "price": Decimal(price),
        "currency": "EUR",
        "image_url": f"https://picsum.photos/seed/{image}/160/160",
        "url": f"https://shop.example.com/p/{image}",
        "quantity": qty,
        "line_total": Decimal(price) * qty,
    }


_LINES = [_line("Trail Runner 2", "89.00", 1, "trail"), _line("Merino Socks (3 pack)", "19.50", 2, "socks")]
_PRODUCTS = [{k: v for k, v in line.items() if k in PRODUCT} for line in _LINES]
_ORDER_LINES = [{k: v for k, v in line.items() if k in ORDER_LINE} for line in _LINES]
UTM = "utm_source=boomerang&utm_medium=email&utm_campaign=sample"

# Sample values for lint's trial render and for `boomerang templates preview`.
SAMPLES: dict[str, Any] = {
    "customer": {"first_name": "Ada", "last_name": "Lovelace", "locale": "en"},
    "store": {
        "name": "Acme Outdoor",
        "url": "https://shop.example.com",
        "address": "1 Harbour Street, Bristol BS1 4AA, United Kingdom",
        "address_lines": ["1 Harbour Street", "Bristol BS1 4AA", "United Kingdom"],
    },
    "cart": {"items": _LINES, "value": Decimal("128.00"), "currency": "EUR", "item_count": 3},
    "viewed": _PRODUCTS,
    "journey": {"id": "sample-journey", "name": "Sample journey"},
    "order": {"order_id": "1001", "total": Decimal("128.00"), "currency": "EUR", "items": _ORDER_LINES},
    "products": _PRODUCTS,
    "product": {"sku": "TR-2", **_PRODUCTS[0]},
    "offer": {
        "code": "COMEBACK10",
        "description": "10% off your next order",
        "expires_at": 1798761599,
        "expires_on": "2026-12-31",
    },
    "occasion": {"kind": "birthday", "date": "2026-11-23", "years": 2},
    "shipment": {
        "status": "shipped",
        "carrier": "DHL",
        "tracking_number": "JD014600006281230",
        "tracking_url": "https://track.example.com/JD014600006281230",
        "partner_id": "acme-3pl",
        "shipment_id": "s-1",
    },
    "loyalty": {"points": 420, "tier": "Silver", "next_tier": "Gold", "points_to_next": 80},
    "links": {
        "shop": f"https://shop.example.com/?{UTM}",
        "recovery": f"https://shop.example.com/cart?boomerang_cart=c-1&{UTM}",
        "review": f"https://shop.example.com/review/1001?{UTM}",
        "referral": f"https://shop.example.com/r/ada?{UTM}",
    },
    "recovery_url": f"https://shop.example.com/cart?boomerang_cart=c-1&{UTM}",
    "unsubscribe_url": "https://api.shop.example.com/v1/unsubscribe?t=sample-token",
    "preferences_url": "https://api.shop.example.com/v1/preferences?t=sample-token",
    "confirm_url": "https://api.shop.example.com/v1/confirm?t=sample-token",
    "step": {"id": "sample", "index": 0, "is_last": False},
}


def sample_variables(name: str, locale: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The sample context of a template (only its own groups), optionally with some groups replaced."""
    spec = spec_for(name)
    context = {g: SAMPLES[g] for g in spec.groups}
    if locale and "customer" in context:
        context["customer"] = {**context["customer"], "locale": locale}
    context.update({k: v for k, v in overrides.items() if k in spec.groups})
    return context


def _long_cart(lines: int = 40) -> dict[str, Any]:
    items = [
        _line(f"Sample product {i} with a rather long name, colour and size", "12.50", 1 + i % 3, f"p{i}")
        for i in range(lines)
    ]
    value = sum((line["line_total"] for line in items), Decimal(0))
    return {
        "items": items,
        "value": value,
        "currency": "EUR",
        "item_count": sum(i["quantity"] for i in items),
    }


# Other customers the validator renders a template for, besides SAMPLES: a template that misbehaves
# only for some customers ({% if customer.first_name != "Ada" %}...) is caught before it is sent.
SAMPLE_VARIATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "another name and locale, a long cart, no offer or loyalty tier",
        {
            "customer": {"first_name": "Zoë-Łucja", "last_name": "Ó Briain-Nakamura", "locale": "pl-PL"},
            "cart": _long_cart(),
            "viewed": [{k: v for k, v in line.items() if k in PRODUCT} for line in _long_cart(20)["items"]],
            "products": [{k: v for k, v in line.items() if k in PRODUCT} for line in _long_cart(12)["items"]],
            "offer": None,
            # the journeys always pass loyalty, with no tier when the store has no programme
            "loyalty": {"points": 0, "tier": None, "next_tier": None, "points_to_next": None},
        },
    ),
    (
        "no name or locale, an empty cart, nothing viewed",
        {
            "customer": {"first_name": None, "last_name": None, "locale": None},
            "cart": {"items": [], "value": Decimal(0), "currency": "EUR", "item_count": 0},
            "viewed": [],
            "products": [],
        },
    ),
    (
        "a long name in another script",
        {"customer": {"first_name": "Александра-Мария" * 4, "last_name": "李" * 20, "locale": "ru"}},
    ),
)


def sample_variations(name: str, locale: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(label, variables): the sample context (:func:`sample_variables`) and the other customers
    of :data:`SAMPLE_VARIATIONS`, for the validator's trial renders."""
    out = [("sample data", sample_variables(name, locale))]
    for label, variation in SAMPLE_VARIATIONS:
        out.append((f"sample customer with {label}", sample_variables(name, None, **variation)))
    return out


def documented_paths(spec: TemplateSpec) -> list[str]:
    """Every variable path of a template, e.g. ``cart.items[].name``, for error messages and docs."""
    out: list[str] = []

    def walk(prefix: str, shape: Shape) -> None:
        if isinstance(shape, dict):
            for key, sub in shape.items():
                walk(f"{prefix}.{key}" if prefix else key, sub)
        elif isinstance(shape, list):
            walk(prefix + "[]", shape[0])
        else:
            out.append(prefix)

    for group, shape in spec.shape().items():
        walk(group, shape)
    return out


# What each leaf type name accepts (besides None). bool is not a number here, though Python says so.
_LEAVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "url": (str,),
    "int": (int,),
    "bool": (bool,),
    "number": (int, float, Decimal),
    "epoch": (int, float, Decimal),
}


def shape_problems(value: Any, shape: Shape, where: str) -> list[str]:
    """Where a value departs from its shape: a missing or undeclared attribute, a wrong type."""
    if value is None:
        return []  # a leaf, or an OPTIONAL group (the caller decides which objects may be None)
    if isinstance(shape, dict):
        if not isinstance(value, Mapping):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        found = [f"{where}.{k}: missing" for k in shape if k not in value]
        found += [f"{where}.{k}: not in the contract" for k in value if k not in shape]
        for key, sub in shape.items():
            if key in value:
                found += _nested(value[key], sub, f"{where}.{key}")
        return found
    if isinstance(shape, list):
        if not isinstance(value, list | tuple):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in _nested(item, shape[0], f"{where}[{i}]")]
    kinds = _LEAVES[shape]
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        return [f"{where}: expected {shape}, got {type(value).__name__} {value!r}"]
    return []


def _nested(value: Any, shape: Shape, where: str) -> list[str]:
    if value is None and not isinstance(shape, str):
        return [f"{where}: None where the contract has an object or a list"]
    return shape_problems(value, shape, where)


def problems(variables: Mapping[str, Any], groups: Iterable[str]) -> list[str]:
    """Where variables a template is given depart from the contract: a group of ``groups`` missing, a
    variable in no group, or a value not of its group's shape (extra groups of GROUPS are allowed:
    a journey passes the same groups to all its templates, and lint keeps each to its own)."""
    found = [f"{g}: missing" for g in groups if g not in variables]
    for name, value in variables.items():
        if name not in GROUPS:
            found.append(f"{name}: not in the contract")
        elif name in OPTIONAL or isinstance(GROUPS[name], str):
            found += shape_problems(value, GROUPS[name], name)
        else:
            found += _nested(value, GROUPS[name], name)
    return found
