"""What templates see: the variables of one message, built from the step's fresh state.

The contract (names, shapes, sample values) is shared.domain.template_variables: this builds exactly
its groups, and tests/unit/test_template_variables.py holds it to them for every shipped journey.
The journey step adds the two signed links it makes itself (``preferences_url``, ``confirm_url``).
The README's "Variables" documents the contract for marketers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from shared.domain.carts import Cart
from shared.domain.journeys import (
    Journey,
    Step,
)
from shared.domain.offers import GivenOffer
from shared.domain.profiles import Profile
from shared.domain.stores import Store
from shared.services.journeys.context import Deps, StepInput


def _product(p: dict[str, Any], currency: str | None = None) -> dict[str, Any]:
    """A product as the contract's PRODUCT shape has it (only ``product`` also shows its sku)."""
    price = p.get("price")
    return {
        "name": p.get("name") or p.get("sku") or p.get("product_id") or "",
        "price": None if price is None else Decimal(str(price)),
        "currency": p.get("currency") or currency or "USD",
        "image_url": p.get("image_url"),
        "url": p.get("url"),
    }


def _utm(url: str, journey: str, medium: str, step: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}utm_source=boomerang&utm_medium={medium}&utm_campaign={journey}&utm_content={step}"


def template_variables(
    state: StepInput,
    journey: Journey,
    step: Step,
    index: int,
    cart: Cart | None,
    profile: Profile,
    store: Store,
    medium: str,
    unsub: str,
    offer: GivenOffer | None,
    products: list[dict[str, Any]],
) -> dict[str, Any]:
    loyalty = getattr(profile, "loyalty", None)
    points = int(getattr(loyalty, "points", 0) or 0)
    tier = getattr(loyalty, "tier", None)
    tiers = sorted(getattr(getattr(store, "loyalty", None), "tiers", {}).items(), key=lambda kv: kv[1])
    upcoming = [(name, need) for name, need in tiers if need > points]
    variables: dict[str, Any] = {
        "customer": {
            "first_name": profile.traits.get("first_name"),
            "last_name": profile.traits.get("last_name"),
            "locale": profile.traits.get("locale"),
        },
        "store": store.template_vars(),
        "journey": {"id": journey.id, "name": journey.name or journey.id},
        "step": {"id": step.id, "index": index, "is_last": index == len(journey.steps) - 1},
        "links": {
            "shop": _utm(store.url, journey.id, medium, step.id),
            "recovery": None,
            "review": None,
            "referral": None,
        },
        "unsubscribe_url": unsub,
        "offer": None,
        "loyalty": {
            "points": points,
            "tier": tier,
            "next_tier": upcoming[0][0] if upcoming else None,
            "points_to_next": upcoming[0][1] - points if upcoming else None,
        },
    }
    if offer is not None:
        variables["offer"] = {
            "code": offer.code,
            "description": offer.description,
            "expires_at": offer.expires_at,
            "expires_on": datetime.fromtimestamp(offer.expires_at, tz=UTC).date().isoformat()
            if offer.expires_at
            else None,
        }
    if cart is not None:
        currency = cart.currency or next((i.currency for i in cart.items if i.currency), None) or "USD"
        variables["cart"] = {
            "items": [
                {
                    "name": line.name or line.sku or line.product_id,
                    "quantity": line.quantity,
                    "price": line.price if line.price is not None else Decimal(0),
                    "currency": line.currency or currency,
                    "image_url": line.image_url,
                    "url": line.url,
                    "line_total": (line.price or Decimal(0)) * line.quantity,
                }
                for line in sorted(cart.items, key=lambda x: -x.updated_at)
            ],
            "value": cart.value,
            "currency": currency,
            "item_count": sum(i.quantity for i in cart.items),
        }
        variables["recovery_url"] = store.recovery_url(cart.cart_id, journey.id, medium, cart.recovery_url)
        variables["links"]["recovery"] = variables["recovery_url"]
    viewed = getattr(profile, "viewed", None)
    if journey.trigger.event == "Product Viewed" and viewed is not None:
        # newest first, at most three (the fold keeps them newest first)
        variables["viewed"] = [
            _product(v.model_dump() if hasattr(v, "model_dump") else dict(v)) for v in viewed[:3]
        ]
    if journey.per == "shipment":
        given = state.context.get("shipment") or {}
        keys = ("status", "carrier", "tracking_number", "tracking_url", "partner_id", "shipment_id")
        variables["shipment"] = {k: given.get(k) for k in keys}
    if journey.per in ("order", "shipment"):
        ctx = state.context
        currency = ctx.get("currency") or "USD"
        variables["order"] = {
            "order_id": ctx.get("order_id") or state.instance,
            "total": Decimal(str(ctx["total"])) if ctx.get("total") is not None else None,
            "currency": currency,
            "items": [
                {**_product(p, currency), "quantity": int(p.get("quantity") or 1)}
                for p in ctx.get("products", [])
            ],
        }
        review = (
            getattr(store, "review_url", None) or f"{store.url}/account/orders/{{order_id}}/review"
        ).replace("{order_id}", str(variables["order"]["order_id"]))
        variables["links"]["review"] = _utm(review, journey.id, medium, step.id)
    if offer is not None:
        referral = f"{store.url}/?ref={offer.code}"
        variables["links"]["referral"] = _utm(referral, journey.id, medium, step.id)
    if journey.per == "product":
        product = state.context.get("product") or {}
        variables["product"] = {"sku": product.get("sku"), **_product(product)}
    if step.products:
        variables["products"] = products
    if state.occasion:
        occasion_kind = journey.trigger.schedule or ("broadcast" if journey.trigger.broadcast else "occasion")
        years = None
        if occasion_kind == "anniversary" and profile.orders.first_order_at:
            years = (
                date.fromisoformat(state.occasion).year
                - datetime.fromtimestamp(profile.orders.first_order_at, tz=UTC).year
            )
        variables["occasion"] = {"kind": occasion_kind, "date": state.occasion, "years": years}
    return variables


def products_for(source: str, state: StepInput, profile: Profile, deps: Deps) -> list[dict[str, Any]]:
    """A step's product list: a catalog collection, or what goes with the order's items."""
    if deps.products is None:
        raise RuntimeError("a step that lists products needs the product catalog")
    if source == "complementary":
        bought = [p.get("sku") or p.get("product_id") for p in state.context.get("products", [])]
        found = deps.products.related(state.store_id, [b for b in bought if b])
    else:
        found = deps.products.collection(state.store_id, source)
    return [_product(p) for p in found[:6]]
