"""Boomerang's event vocabulary and its canonical event: what flows on the bus.

A storefront call is validated once, at the edge (shared/domain/api_calls.py); everything
downstream (bus, queues, profile, journeys) reads the canonical event defined here, never the raw
call, and names events with the constants below.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EVENT_SOURCE = "boomerang.ingest"
# Webhooks Boomerang does not map (unknown topics, calls refused): archived on the bus, routed nowhere
WEBHOOK_SOURCE = "boomerang.webhooks"

# Segment E-commerce v2 names Boomerang understands (others are accepted and archived).
PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CART_VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
ORDER_COMPLETED = "Order Completed"
ORDER_CANCELLED = "Order Cancelled"
ORDER_REFUNDED = "Order Refunded"
CONSENT_UPDATED = "Consent Updated"
DEVICE_REGISTERED = "Device Registered"
DEVICE_UNREGISTERED = "Device Unregistered"
# a browser's push subscription (shared/domain/webpush.py), from the subscribe helper on the store's site
WEB_PUSH_SUBSCRIBED = "Web Push Subscribed"
WEB_PUSH_UNSUBSCRIBED = "Web Push Unsubscribed"
PRODUCT_VIEWED = "Product Viewed"
SIGNED_UP = "Signed Up"
BACK_IN_STOCK_SUBSCRIBED = "Back In Stock Subscribed"  # a customer asks to hear when a SKU is back
BACK_IN_STOCK = "Back In Stock"  # sent by the store's backend for a SKU, not about one customer
PRICE_DROPPED = "Price Dropped"  # a product marked down (from a platform's product webhook)
# a product's variants as the platform lists them (sku and inventory item), store-level like Back In Stock
PRODUCT_UPDATED = "Product Updated"
# A fulfilment partner's shipping update (POST /v1/partners/<store>/<partner>/shipments), or the
# store's own for what it ships itself
ORDER_SHIPPED = "Order Shipped"
ORDER_DELIVERED = "Order Delivered"
LOYALTY_TIER_REACHED = "Loyalty Tier Reached"  # made by Boomerang's profile fold only
# Events only Boomerang itself may put on the bus: ingest refuses them from a store.
RESERVED_EVENTS = (LOYALTY_TIER_REACHED,)
KNOWN_EVENTS = (
    "Products Searched",
    "Product List Viewed",
    "Product Clicked",
    PRODUCT_VIEWED,
    PRODUCT_ADDED,
    PRODUCT_REMOVED,
    CART_VIEWED,
    CHECKOUT_STARTED,
    "Checkout Step Viewed",
    "Checkout Step Completed",
    "Payment Info Entered",
    ORDER_COMPLETED,
    "Order Updated",
    ORDER_REFUNDED,
    ORDER_CANCELLED,
    ORDER_SHIPPED,
    ORDER_DELIVERED,
    "Coupon Entered",
    "Coupon Applied",
    "Coupon Denied",
    "Coupon Removed",
    "Product Added to Wishlist",
    "Product Shared",
    "Cart Shared",
    "Product Reviewed",
    SIGNED_UP,
    BACK_IN_STOCK_SUBSCRIBED,
    BACK_IN_STOCK,
    PRICE_DROPPED,
    PRODUCT_UPDATED,
    LOYALTY_TIER_REACHED,
    CONSENT_UPDATED,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
    WEB_PUSH_SUBSCRIBED,
    WEB_PUSH_UNSUBSCRIBED,
)
_CANONICAL_NAMES = {re.sub(r"[\s_\-]+", " ", n).strip().lower(): n for n in KNOWN_EVENTS}

# Cart events route to the journey queue (see infra/description.py RULES).
JOURNEY_TRIGGER_EVENTS = (PRODUCT_ADDED, CHECKOUT_STARTED)

CHANNELS = ("email", "sms", "push", "webpush")
RESERVED_SOURCE_PREFIX = "boomerang:"
DOUBLE_OPT_IN_SOURCE = "boomerang:double-opt-in"
CONSENT_STATES = ("subscribed", "unsubscribed")


def canonical_event_name(name: str) -> str:
    """'product_added', 'product added' and 'Product Added' are the same Segment event."""
    key = re.sub(r"[\s_\-]+", " ", name).strip().lower()
    return _CANONICAL_NAMES.get(key, name.strip())


def known_event(value: str) -> str:
    """The canonical name of a known event; ValueError with a "did you mean" otherwise (file checks)."""
    name = canonical_event_name(value)
    if name not in KNOWN_EVENTS:
        close = difflib.get_close_matches(name, KNOWN_EVENTS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown event {value!r}; {hint}known events: {', '.join(sorted(KNOWN_EVENTS))}")
    return name


class CanonicalEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str
    store_id: str
    type: str
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    timestamp: str | None = None  # the client's clock, kept for analytics
    received_at: float  # Boomerang's clock (epoch seconds); journeys time from this
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def cart_id(self) -> str:
        """The cart a cart event belongs to; one default cart per visitor when the store sends none."""
        cid = self.properties.get("cart_id")
        if cid:
            return str(cid)
        who = f"u:{self.user_id}" if self.user_id else f"a:{self.anonymous_id}"
        return "default-" + hashlib.sha256(who.encode()).hexdigest()[:24]


def customer_event(
    store_id: str,
    customer_id: str,
    event: str,
    properties: dict[str, Any],
    received_at: float,
    message_id: str,
) -> CanonicalEvent:
    """A track call Boomerang itself makes for a customer id ("u:<userId>" or "a:<anonymousId>"),
    e.g. an unsubscribe click or a carrier STOP, so it travels the same fold as a store's calls."""
    kind, _, ident = customer_id.partition(":")
    return CanonicalEvent(
        message_id=message_id,
        store_id=store_id,
        type="track",
        event=event,
        user_id=ident if kind == "u" else None,
        anonymous_id=ident if kind == "a" else None,
        properties=properties,
        received_at=received_at,
    )
