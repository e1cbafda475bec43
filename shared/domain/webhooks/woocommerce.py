"""WooCommerce's webhook topics as event API calls (payloads as WooCommerce REST API v3 resources).

Who: a registered customer is userId `<customer_id>`; a guest (customer_id 0) is userId
`guest-<hash of the billing email>`. An order's calls carry anonymousId `woocommerce-order-<id>`,
aliased by the fold to that customer. WooCommerce has no abandoned-checkout topic: an order still
`pending` (or `failed`, or a block checkout's `checkout-draft`) is an unfinished checkout, and its
`payment_url` the way back to it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from shared.domain.events import (
    BACK_IN_STOCK,
    CHECKOUT_STARTED,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    PRICE_DROPPED,
    SIGNED_UP,
)
from shared.domain.webhooks import Mapped, clean, email_key, international, money, text, utc

TOPICS = ("order.created", "order.updated", "customer.created", "customer.updated", "product.updated")
_PAID = ("processing", "completed", "on-hold")
_UNFINISHED = ("pending", "failed", "checkout-draft")


def _who(customer_id: Any, billing: Any) -> dict[str, str] | None:
    if text(customer_id) not in (None, "0"):
        return {"userId": str(customer_id)}
    email = billing.get("email") if isinstance(billing, dict) else None
    return {"userId": "guest-" + email_key(email)} if email else None


def _traits(email: Any, first: Any, last: Any, billing: Any) -> dict[str, Any]:
    b = billing if isinstance(billing, dict) else {}
    return clean(
        {
            "email": email or b.get("email"),
            "phone": international(b.get("phone")),
            "first_name": first or b.get("first_name"),
            "last_name": last or b.get("last_name"),
        }
    )


def _products(lines: Any, currency: str | None) -> list[dict[str, Any]]:
    out = []
    for li in lines if isinstance(lines, list) else []:
        if isinstance(li, dict):
            variation = text(li.get("variation_id"))
            out.append(
                clean(
                    {
                        "product_id": text(li.get("product_id")),
                        "sku": li.get("sku") or (variation if variation != "0" else None),
                        "name": li.get("name"),
                        "price": money(li.get("price")),
                        "quantity": li.get("quantity"),
                        "currency": currency,
                    }
                )
            )
    return [p for p in out if p.get("product_id") or p.get("sku")]


def _order(payload: dict[str, Any]) -> Mapped:
    order_id = text(payload.get("id"))
    who = _who(payload.get("customer_id"), payload.get("billing"))
    if order_id is None:
        return Mapped(reason="order without id")
    alias = {"anonymousId": f"woocommerce-order-{order_id}"}
    who = {**who, **alias} if who else alias
    status = payload.get("status")
    currency = payload.get("currency")
    when = utc(payload.get("date_modified_gmt")) or utc(payload.get("date_created_gmt"))
    traits = _traits(None, None, None, payload.get("billing"))
    calls: list[dict[str, Any]] = [{"type": "identify", **who, "traits": traits}] if traits else []
    event: dict[str, Any] = {"type": "track", **who, **({"timestamp": when} if when else {})}
    products = _products(payload.get("line_items"), currency)
    if status in _UNFINISHED:
        if "userId" not in who:
            return Mapped(reason="unfinished order without a customer or billing email: nobody to remind")
        calls.append(
            event
            | {
                "event": CHECKOUT_STARTED,
                "properties": clean(
                    {
                        "cart_id": f"woocommerce-order-{order_id}",
                        "checkout_id": order_id,
                        "currency": currency,
                        "value": money(payload.get("total")),
                        "products": products,
                        "recovery_url": payload.get("payment_url"),
                    }
                ),
            }
        )
    elif status in _PAID:
        calls.append(
            event
            | {
                "event": ORDER_COMPLETED,
                "properties": clean(
                    {
                        "order_id": order_id,
                        # an unfinished checkout's reminders run on this cart: paying ends them
                        "cart_id": f"woocommerce-order-{order_id}",
                        "total": money(payload.get("total")),
                        "tax": money(payload.get("total_tax")),
                        "shipping": money(payload.get("shipping_total")),
                        "discount": money(payload.get("discount_total")),
                        "currency": currency,
                        "products": products,
                    }
                ),
            }
        )
    elif status == "cancelled":
        calls.append(event | {"event": ORDER_CANCELLED, "properties": {"order_id": order_id}})
    elif status == "refunded" or payload.get("refunds"):
        try:
            refunded = sum(
                (
                    abs(Decimal(str(r.get("total") or 0)))
                    for r in payload.get("refunds") or []
                    if isinstance(r, dict)
                ),
                Decimal(0),
            )
        except InvalidOperation:
            return Mapped(calls=calls, reason="refund with an unreadable amount")
        total = refunded or Decimal(str(payload.get("total") or 0))
        calls.append(
            event
            | {
                "event": ORDER_REFUNDED,
                "properties": clean({"order_id": order_id, "total": str(total), "currency": currency}),
            }
        )
    return Mapped(calls=calls, reason=None if len(calls) > bool(traits) else f"order status {status!r}")


def _customer(topic: str, payload: dict[str, Any]) -> Mapped:
    who = _who(payload.get("id"), payload.get("billing"))
    if who is None:
        return Mapped(reason="customer without id")
    traits = _traits(
        payload.get("email"), payload.get("first_name"), payload.get("last_name"), payload.get("billing")
    )
    calls: list[dict[str, Any]] = [{"type": "identify", **who, "traits": traits}] if traits else []
    if topic == "customer.created":  # a new account: the welcome journey's trigger
        when = utc(payload.get("date_created_gmt"))
        calls.append(
            {
                "type": "track",
                "event": SIGNED_UP,
                **who,
                **({"timestamp": when} if when else {}),
                "properties": {"method": "woocommerce"},
            }
        )
    return Mapped(calls=calls)


def _product(payload: dict[str, Any]) -> Mapped:
    product_id = text(payload.get("id"))
    if product_id is None:
        return Mapped(reason="product without id")
    images = payload.get("images") or []
    product = clean(
        {
            "product_id": product_id,
            "sku": payload.get("sku"),
            "name": payload.get("name"),
            "price": money(payload.get("price")),
            "url": payload.get("permalink"),
            "image_url": images[0].get("src") if images and isinstance(images[0], dict) else None,
        }
    )
    store_level = {"anonymousId": f"woocommerce-product-{product_id}"}
    calls = []
    # waiting subscribers are notified once and their subscription ends: an in-stock update repeats nothing
    if payload.get("stock_status") == "instock":
        calls.append({"type": "track", "event": BACK_IN_STOCK, **store_level, "properties": product})
    regular, sale = payload.get("regular_price"), payload.get("sale_price")
    try:
        dropped = bool(payload.get("on_sale")) and bool(sale) and Decimal(str(sale)) < Decimal(str(regular))
    except InvalidOperation:
        dropped = False
    if dropped:
        calls.append(
            {
                "type": "track",
                "event": PRICE_DROPPED,
                **store_level,
                "properties": {**product, "price": money(sale), "compare_at_price": money(regular)},
            }
        )
    return Mapped(calls=calls, reason=None if calls else "product neither in stock nor on sale")


def map_webhook(topic: str, payload: Any, _: str = "") -> Mapped:
    """One WooCommerce webhook (its X-WC-Webhook-Topic and JSON body) as event API calls."""
    if not isinstance(payload, dict):
        return Mapped(reason="payload is not a JSON object")
    if topic in ("order.created", "order.updated"):
        return _order(payload)
    if topic in ("customer.created", "customer.updated"):
        return _customer(topic, payload)
    if topic == "product.updated":
        return _product(payload)
    return Mapped(known_topic=False, reason=f"topic {topic!r} is not one Boomerang reads")
