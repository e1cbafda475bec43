"""Which rules one canonical event gets, and what follows from them, decided without storage.

The profile store (shared/adapters/profile_store.py) reads the items an event touches, asks this
module what changes, and writes the answer in one exactly-once transaction. Everything here works
on the loaded models in place and returns what the history should say ("changes") and what the
store must write beyond the profile: a cart, an order, back-in-stock subscriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from shared.domain import events as ev
from shared.domain import webpush
from shared.domain.carts import Cart, apply_cart_event, convert_cart, new_cart
from shared.domain.events import CanonicalEvent
from shared.domain.fold import (
    apply_consent,
    apply_context,
    apply_traits,
    is_repeat_view,
    merge_profiles,
    register_device,
    unregister_device,
    view_product,
)
from shared.domain.loyalty import LoyaltyPolicy, TierReached, credit_points, refresh_tier, reverse_points
from shared.domain.orders import Order, cancel_order, order_from, record_order, refund_order
from shared.domain.profiles import Profile
from shared.domain.retention import RetentionPolicy, update_retention
from shared.platform import indexes


def is_store_level(event: CanonicalEvent) -> bool:
    """Back In Stock is about a SKU and Product Updated about a product's variants, sent by the
    store's backend: no customer's profile to fold."""
    return event.type == "track" and event.event in (ev.BACK_IN_STOCK, ev.PRODUCT_UPDATED)


def inventory_items(event: CanonicalEvent) -> dict[str, str]:
    """inventory_item_id -> sku for every variant a product event names with both (the mapping
    inventory_levels/update, which names only the item, is resolved through)."""
    if event.type != "track" or event.event not in (ev.BACK_IN_STOCK, ev.PRICE_DROPPED, ev.PRODUCT_UPDATED):
        return {}
    p = event.properties
    variants = [p, *(v for v in p.get("variants") or [] if isinstance(v, dict))]
    return {
        str(v["inventory_item_id"]): str(v["sku"])
        for v in variants
        if v.get("inventory_item_id") and v.get("sku")
    }


def unresolved_inventory_item(event: CanonicalEvent) -> str | None:
    """The inventory item of a Back In Stock that names no sku or product (None otherwise)."""
    p = event.properties
    if event.type != "track" or event.event != ev.BACK_IN_STOCK or p.get("sku") or p.get("product_id"):
        return None
    return str(p["inventory_item_id"]) if p.get("inventory_item_id") else None


def resolved_back_in_stock(event: CanonicalEvent, sku: str) -> CanonicalEvent:
    """The Back In Stock for the item's sku, the one subscribers wait on; its messageId follows from
    the original's, so a redelivery announces the same event again, never a second one."""
    return event.model_copy(
        update={"message_id": f"{event.message_id}-sku", "properties": {**event.properties, "sku": sku}}
    )


def product_key(properties: dict[str, Any]) -> str:
    """A product's key in back-in-stock subscriptions (and recently viewed): sku, else product_id."""
    return str(properties.get("sku") or properties.get("product_id"))


# ---------------------------------------------------------------------------------------------
# The profile's own rules


def fold_profile_rules(profile: Profile, event: CanonicalEvent, double_opt_in_email: bool) -> list[str]:
    """Traits, consent, devices, context and recently viewed: the rules that change only the profile."""
    at, p = event.received_at, event.properties
    changes: list[str] = []
    if event.type == "identify":
        refused = apply_traits(profile, event.traits, at)
        if refused:  # names only, never values (they may be personal data)
            changes.append(
                f"traits over the profile's budget, not kept: {', '.join(n[:40] for n in refused[:10])}"
            )
        apply_consent(profile, event.traits, at, event.message_id, double_opt_in_email)
        changes.append("traits")
        if event.traits.get("consent"):
            changes.append("consent")
    apply_context(profile, event.context, at)
    if event.type == "track" and event.event == ev.CONSENT_UPDATED:
        apply_consent(profile, p, at, event.message_id, double_opt_in_email)
        changes.append("consent")
    if event.type == "identify" and event.traits.get("device_token"):
        register_device(profile, event.traits["device_token"], event.traits["device_platform"], at)
        changes.append("device registered")
    if event.type == "track" and event.event == ev.DEVICE_REGISTERED:
        register_device(profile, p["token"], p["platform"], at)
        changes.append("device registered")
    if event.type == "track" and event.event == ev.DEVICE_UNREGISTERED:
        unregister_device(profile, p["token"], at)
        changes.append("device removed")
    if event.type == "track" and event.event == ev.WEB_PUSH_SUBSCRIBED:
        if webpush.subscribe(profile.webpush, profile.removed_webpush, p, at):
            held = profile.webpush.get(webpush.subscription_key(p["endpoint"]))
            label = held.browser if held else "the browser"
            apply_consent(profile, webpush.consent_fields(p, label), at, event.message_id)
            changes.extend(["web push subscribed", "consent"])
    if event.type == "track" and event.event == ev.WEB_PUSH_UNSUBSCRIBED:
        webpush.unsubscribe(profile.webpush, profile.removed_webpush, p["endpoint"], at)
        changes.append("web push unsubscribed")
    if event.type == "track" and event.event == ev.PRODUCT_VIEWED:
        if is_repeat_view(profile, event):
            changes.append("repeat view: nothing changed")
        else:
            view_product(profile, p, at)
            changes.append("product viewed")
    return changes


def merge_visitor(
    profile: Profile, visitor: Profile, loyalty: LoyaltyPolicy, retention: RetentionPolicy, at: float
) -> list[str]:
    """Fold an anonymous visitor's profile into the customer's; returns the segments the visitor
    leaves (their membership items go: a merged profile is in no index and no segment)."""
    merge_profiles(profile, visitor)
    if visitor.loyalty.points:
        refresh_tier(profile, loyalty, at)  # the visitor's points came with their orders
    update_retention(profile, retention)
    left = visitor.segments
    visitor.segments, visitor.segments_due = [], None
    return left


# ---------------------------------------------------------------------------------------------
# Carts and orders


def fold_cart(profile: Profile, cart: Cart | None, event: CanonicalEvent) -> tuple[Cart, str]:
    """The cart event applied to its cart (a new one if none is held); it becomes the open cart."""
    at = event.received_at
    cart = cart or new_cart(event, event.cart_id)
    apply_cart_event(cart, event)
    if cart.status == "open" and at >= (profile.updated.get("open_cart_id") or 0):
        profile.open_cart_id = cart.cart_id
        profile.updated["open_cart_id"] = at
    return cart, f"cart {len(cart.items)} item(s), value {cart.value}"


@dataclass
class OrderFold:
    """What an order event changed beyond the profile: the order to write (new or updated), the
    cart it converted, and the tier it raised."""

    order: Order | None = None
    new: bool = False
    cart: Cart | None = None
    reached: TierReached | None = None
    changes: list[str] = field(default_factory=list)


def fold_order(
    profile: Profile,
    event: CanonicalEvent,
    existing: Order | None,
    cart: Cart | None,
    loyalty: LoyaltyPolicy,
    retention: RetentionPolicy,
) -> OrderFold:
    """Order Completed counts a new order once (points, retention, its cart converted); Order
    Cancelled and Order Refunded change a counted one and take its points back; the store's own Order
    Delivered records when it arrived (post-purchase steps timed `from: delivery` count from it)."""
    at, p = event.received_at, event.properties
    out = OrderFold()
    changes = out.changes
    if event.event == ev.ORDER_COMPLETED:
        if existing is not None:
            changes.append("order already counted")  # same order, new messageId: count once
            return out
        order = order_from(event, profile.customer_id)
        record_order(profile, order)
        out.reached = credit_points(profile, order, loyalty)  # the points awarded stay on the order
        update_retention(profile, retention)
        out.order, out.new = order, True
        changes.append(f"order {order.total} {order.currency or ''}".strip())
        if order.points:
            changes.append(f"{order.points} points")
        if out.reached is not None:
            changes.append(f"tier {out.reached.previous_tier} -> {out.reached.tier}")
        if cart is not None:
            convert_cart(cart, order.order_id, at)
            out.cart = cart
            if cart.status == "converted" and profile.open_cart_id == cart.cart_id:
                profile.open_cart_id = None
                profile.updated["open_cart_id"] = at
            changes.append("cart converted")
        return out
    if existing is None:
        changes.append("unknown order ignored")
        return out
    if event.event == ev.ORDER_DELIVERED:
        if existing.delivered_at is None:  # the first delivery counts; a repeat changes nothing
            existing.delivered_at = at
            existing.message_ids = [*existing.message_ids, event.message_id][-20:]
            out.order = existing
            changes.append("order delivered")
        return out
    if event.event == ev.ORDER_CANCELLED and existing.status != "cancelled":
        cancel_order(profile, existing)
        existing.status = "cancelled"
        changes.append("order cancelled")
    elif event.event == ev.ORDER_REFUNDED:
        amount = Decimal(str(p.get("total", p.get("revenue", existing.total))))
        amount = min(amount, existing.total - existing.refunded)
        if amount > 0:
            refund_order(profile, amount)
            existing.refunded += amount
            changes.append(f"refund {amount}")
    taken = reverse_points(profile, existing, loyalty, at)
    if taken:
        changes.append(f"{taken} points reversed")
    update_retention(profile, retention)
    existing.message_ids = [*existing.message_ids, event.message_id][-20:]
    out.order = existing
    return out


# ---------------------------------------------------------------------------------------------
# Back in stock


def is_waiting(subscription: dict[str, Any]) -> bool:
    """A subscription still waits for its product while it is in the `by-sku` index."""
    return indexes.BY_SKU.partition in subscription


def subscription_refused(held: dict[str, Any] | None, moving: bool, at: float) -> str | None:
    """Why Back In Stock Subscribed creates no subscription (None: it does). `held` is the
    customer's item for the product, `moving` whether the visitor's one is moving to them now."""
    if moving or (held is not None and is_waiting(held)):
        return "already subscribed"  # keeps the original subscribed_at
    if held is not None and max(held.get("notified_at") or 0, held.get("moved_at") or 0) >= at:
        return "subscription already ended"  # a late event: the notification came after it
    return None


def subscription_move(
    visitor_sub: dict[str, Any], own: dict[str, Any] | None
) -> Literal["copy", "keep-earlier", "keep"]:
    """A visitor's waiting subscription follows them to the customer: a copy, unless the customer
    already waits for the product, whose subscription then keeps the earlier time."""
    if own is not None and is_waiting(own):
        return "keep-earlier" if visitor_sub["subscribed_at"] < own["subscribed_at"] else "keep"
    return "copy"
