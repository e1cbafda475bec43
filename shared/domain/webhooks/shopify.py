"""Shopify's webhook topics as event API calls (payload shapes as in Shopify's Admin REST docs).

Who: a Shopify customer is userId `<customer id>`; a guest checkout or order (no customer) is
userId `guest-<hash of the email>`, so one guest's checkouts and orders meet in one profile. An
order's calls also carry anonymousId `shopify-order-<id>`: the fold aliases it to the customer, so
a refund (whose payload names only the order) reaches the same profile.
"""

from __future__ import annotations

from typing import Any

from shared.domain.events import (
    BACK_IN_STOCK,
    CHECKOUT_STARTED,
    CONSENT_UPDATED,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    PRICE_DROPPED,
    PRODUCT_UPDATED,
    SIGNED_UP,
)
from shared.domain.webhooks import Mapped, clean, email_key, international, money, text

TOPICS = (
    "checkouts/create",
    "checkouts/update",
    "orders/create",
    "orders/paid",
    "orders/cancelled",
    "refunds/create",
    "customers/create",
    "customers/update",
    "products/update",
    "inventory_levels/update",
)
# Shopify's consent states -> Boomerang's; not_subscribed/pending/redacted/invalid give no consent call
_CONSENT = {"subscribed": "subscribed", "unsubscribed": "unsubscribed"}


def _who(customer: Any, email: Any, phone: Any = None) -> dict[str, str] | None:
    customer = customer if isinstance(customer, dict) else {}
    if text(customer.get("id")):
        return {"userId": str(customer["id"])}
    contact = customer.get("email") or email or customer.get("phone") or phone
    return {"userId": "guest-" + email_key(str(contact))} if contact else None


def _traits(customer: Any, email: Any = None, phone: Any = None, address: Any = None) -> dict[str, Any]:
    c = customer if isinstance(customer, dict) else {}
    a = address if isinstance(address, dict) else {}
    return clean(
        {
            "email": c.get("email") or email,
            "phone": international(c.get("phone") or phone),
            "first_name": c.get("first_name") or a.get("first_name"),
            "last_name": c.get("last_name") or a.get("last_name"),
        }
    )


def _products(lines: Any, currency: str | None) -> list[dict[str, Any]]:
    out = []
    for li in lines if isinstance(lines, list) else []:
        if not isinstance(li, dict):
            continue
        out.append(
            clean(
                {
                    "product_id": text(li.get("product_id")),
                    "sku": li.get("sku") or text(li.get("variant_id")),
                    "name": li.get("title") or li.get("name"),
                    "variant": li.get("variant_title"),
                    "price": money(li.get("price")),
                    "quantity": li.get("quantity"),
                    "currency": currency,
                }
            )
        )
    return [p for p in out if p.get("product_id") or p.get("sku")]


def _consent_calls(who: dict[str, str], customer: dict[str, Any]) -> list[dict[str, Any]]:
    """email_marketing_consent / sms_marketing_consent, each with its own source and time (the proof)."""
    calls = []
    for channel, name in (("email", "email_marketing_consent"), ("sms", "sms_marketing_consent")):
        consent = customer.get(name)
        if not isinstance(consent, dict) or consent.get("state") not in _CONSENT:
            continue
        level = consent.get("opt_in_level") or "unknown"
        where = consent.get("consent_collected_from") or "shopify"
        when = consent.get("consent_updated_at")
        calls.append(
            {
                "type": "track",
                "event": CONSENT_UPDATED,
                **who,
                **({"timestamp": when} if when else {}),
                "properties": {
                    "consent": {channel: _CONSENT[consent["state"]]},
                    "consent_source": f"shopify:{name}:{where.lower()}",
                    "consent_text": f"Shopify {name}: {consent['state']} (opt-in level {level}) at {when or 'unknown time'}",
                    **({"consent_at": when} if when else {}),
                },
            }
        )
    return calls


def _checkout(payload: dict[str, Any]) -> Mapped:
    customer = payload.get("customer") or {}
    who = _who(customer, payload.get("email"), payload.get("phone"))
    if who is None:
        return Mapped(reason="checkout without customer, email or phone: nobody to remind")
    traits = _traits(customer, payload.get("email"), payload.get("phone"), payload.get("billing_address"))
    if payload.get("buyer_accepts_marketing") is True and traits.get("email"):
        traits |= {
            "consent": {"email": "subscribed"},
            "consent_source": "shopify:checkout",
            "consent_text": "Shopify checkout: buyer_accepts_marketing ticked",
        }
    calls: list[dict[str, Any]] = [{"type": "identify", **who, "traits": traits}] if traits else []
    if payload.get("buyer_accepts_sms_marketing") is True and payload.get("sms_marketing_phone"):
        calls.append(
            {
                "type": "identify",
                **who,
                "traits": {
                    "phone": payload["sms_marketing_phone"],
                    "consent": {"sms": "subscribed"},
                    "consent_source": "shopify:checkout",
                    "consent_text": "Shopify checkout: buyer_accepts_sms_marketing ticked",
                },
            }
        )
    if payload.get("completed_at"):
        return Mapped(calls=calls)  # bought: orders/create says so; no reminder to start
    token = text(payload.get("token"))
    if token is None:
        return Mapped(calls=calls, reason="checkout without token")
    currency = payload.get("presentment_currency") or payload.get("currency")
    calls.append(
        {
            "type": "track",
            "event": CHECKOUT_STARTED,
            **who,
            "timestamp": payload.get("updated_at") or payload.get("created_at"),
            "properties": clean(
                {
                    "cart_id": token,  # the checkout token: the same cart on every checkouts/update
                    "checkout_id": token,
                    "currency": currency,
                    "value": money(payload.get("total_price")),
                    "products": _products(payload.get("line_items"), currency),
                    "recovery_url": payload.get("abandoned_checkout_url"),
                    "coupon": ",".join(
                        str(d.get("code")) for d in payload.get("discount_codes") or [] if isinstance(d, dict)
                    ),
                }
            ),
        }
    )
    return Mapped(calls=calls)


def _order_who(payload: dict[str, Any]) -> dict[str, str] | None:
    who = _who(
        payload.get("customer"), payload.get("email") or payload.get("contact_email"), payload.get("phone")
    )
    order_id = text(payload.get("id"))
    if order_id is None:
        return who
    alias = {"anonymousId": f"shopify-order-{order_id}"}
    return {**who, **alias} if who else alias


def _order(topic: str, payload: dict[str, Any]) -> Mapped:
    order_id = text(payload.get("id"))
    who = _order_who(payload)
    if order_id is None or who is None:
        return Mapped(reason="order without id")
    currency = payload.get("presentment_currency") or payload.get("currency")
    traits = _traits(
        payload.get("customer"), payload.get("email"), payload.get("phone"), payload.get("billing_address")
    )
    calls: list[dict[str, Any]] = [{"type": "identify", **who, "traits": traits}] if traits else []
    if topic == "orders/cancelled":
        calls.append(
            {
                "type": "track",
                "event": ORDER_CANCELLED,
                **who,
                "properties": clean({"order_id": order_id, "reason": payload.get("cancel_reason")}),
            }
        )
        return Mapped(calls=calls)
    calls.append(
        {
            "type": "track",
            "event": ORDER_COMPLETED,
            **who,
            "timestamp": payload.get("created_at"),
            "properties": clean(
                {
                    "order_id": order_id,
                    "checkout_id": text(payload.get("checkout_token")),
                    # the checkout token is the cart id the checkout's reminders run on
                    "cart_id": text(payload.get("checkout_token")),
                    "total": money(payload.get("total_price")),
                    "subtotal": money(payload.get("subtotal_price")),
                    "tax": money(payload.get("total_tax")),
                    "discount": money(payload.get("total_discounts")),
                    "currency": currency,
                    "products": _products(payload.get("line_items"), currency),
                }
            ),
        }
    )
    return Mapped(calls=calls)


def _refund(payload: dict[str, Any]) -> Mapped:
    order_id = text(payload.get("order_id"))
    if order_id is None:
        return Mapped(reason="refund without order_id")
    amounts = [
        t.get("amount")
        for t in payload.get("transactions") or []
        if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") in ("success", None)
    ]
    from decimal import Decimal, InvalidOperation

    try:
        total = sum((Decimal(str(a)) for a in amounts if a is not None), Decimal(0))
    except InvalidOperation:
        return Mapped(reason="refund with an unreadable amount")
    if total <= 0:
        return Mapped(reason="refund without a successful refund transaction")
    currency = next(
        (t.get("currency") for t in payload.get("transactions") or [] if isinstance(t, dict)), None
    )
    return Mapped(
        calls=[
            {
                "type": "track",
                "event": ORDER_REFUNDED,
                # only the order is named: its alias leads to the customer (see the module's docstring)
                "anonymousId": f"shopify-order-{order_id}",
                "timestamp": payload.get("processed_at") or payload.get("created_at"),
                "properties": clean({"order_id": order_id, "total": str(total), "currency": currency}),
            }
        ]
    )


def _customer(topic: str, payload: dict[str, Any]) -> Mapped:
    who = _who(payload, payload.get("email"), payload.get("phone"))
    if who is None:
        return Mapped(reason="customer without id")
    traits = _traits(payload)
    calls: list[dict[str, Any]] = [{"type": "identify", **who, "traits": traits}] if traits else []
    calls += _consent_calls(who, payload)
    if topic == "customers/create":  # a new account: the welcome journey's trigger
        calls.append(
            {
                "type": "track",
                "event": SIGNED_UP,
                **who,
                "timestamp": payload.get("created_at"),
                "properties": {"method": "shopify"},
            }
        )
    return Mapped(calls=calls)


def _product(payload: dict[str, Any]) -> Mapped:
    """Back in stock: a variant with stock (its waiting subscribers are notified once, then the
    subscription is gone, so an update of an in-stock product notifies nobody twice); price
    change: a variant marked down (compare_at_price above price). Every variant's inventory item
    goes with its sku (one Product Updated lists them all), so the fold learns the sku an
    inventory_levels/update's item stands for, out-of-stock variants' above all."""
    calls = []
    variants: list[dict[str, str]] = []
    for v in payload.get("variants") or []:
        if not isinstance(v, dict):
            continue
        product = clean(
            {
                "product_id": text(payload.get("id")),
                "sku": v.get("sku") or text(v.get("id")),
                "name": " - ".join(
                    x for x in (payload.get("title"), v.get("title")) if x and x != "Default Title"
                ),
                "price": money(v.get("price")),
                "url": None,
                "inventory_item_id": text(v.get("inventory_item_id")),
            }
        )
        if product.get("inventory_item_id"):
            variants.append({"sku": product["sku"], "inventory_item_id": product["inventory_item_id"]})
        store_level = {"anonymousId": f"shopify-product-{product.get('product_id') or product['sku']}"}
        stock = v.get("inventory_quantity")
        if isinstance(stock, int) and stock > 0 and v.get("inventory_management") is not None:
            calls.append(
                {
                    "type": "track",
                    "event": BACK_IN_STOCK,
                    **store_level,
                    "properties": {**product, "stock": stock},
                }
            )
        compare = v.get("compare_at_price")
        if compare not in (None, "") and v.get("price") not in (None, ""):
            try:
                marked_down = float(compare) > float(v["price"])
            except (TypeError, ValueError):
                marked_down = False
            if marked_down:
                calls.append(
                    {
                        "type": "track",
                        "event": PRICE_DROPPED,
                        **store_level,
                        "properties": {**product, "compare_at_price": money(compare)},
                    }
                )
    if variants:
        calls.append(
            {
                "type": "track",
                "event": PRODUCT_UPDATED,
                "anonymousId": f"shopify-product-{text(payload.get('id')) or variants[0]['sku']}",
                "properties": clean({"product_id": text(payload.get("id")), "variants": variants}),
            }
        )
    return Mapped(
        calls=calls, reason=None if calls else "no variant in stock, marked down or with an inventory item"
    )


def _inventory_level(payload: dict[str, Any]) -> Mapped:
    """inventory_levels/update names only the inventory item (a variant's inventory_item_id), never
    the sku: its Back In Stock carries the item alone, and the profile fold announces it again with
    the sku a products/update taught it (see event_routing.inventory_items)."""
    item = text(payload.get("inventory_item_id"))
    available = payload.get("available")
    if item is None or not isinstance(available, int) or available <= 0:
        return Mapped(reason="inventory level without stock")
    return Mapped(
        calls=[
            {
                "type": "track",
                "event": BACK_IN_STOCK,
                "anonymousId": f"shopify-inventory-item-{item}",
                "properties": clean(
                    {
                        "inventory_item_id": item,
                        "location_id": text(payload.get("location_id")),
                        "stock": available,
                    }
                ),
            }
        ]
    )


def map_webhook(topic: str, payload: Any, _: str = "") -> Mapped:
    """One Shopify webhook (its X-Shopify-Topic and JSON body) as event API calls."""
    if not isinstance(payload, dict):
        return Mapped(reason="payload is not a JSON object")
    if topic in ("checkouts/create", "checkouts/update"):
        return _checkout(payload)
    if topic in ("orders/create", "orders/paid", "orders/cancelled"):
        return _order(topic, payload)
    if topic == "refunds/create":
        return _refund(payload)
    if topic in ("customers/create", "customers/update"):
        return _customer(topic, payload)
    if topic == "products/update":
        return _product(payload)
    if topic == "inventory_levels/update":
        return _inventory_level(payload)
    return Mapped(known_topic=False, reason=f"topic {topic!r} is not one Boomerang reads")
