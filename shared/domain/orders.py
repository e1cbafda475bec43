"""An order as Boomerang counts it, and what its events change on the customer's profile.

An order is counted once per order_id (a replay with a new messageId changes nothing); the
profile keeps the aggregates (count, revenue, refunds) that segments, RFM and retention read.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, Field

from shared.domain.events import (
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_DELIVERED,
    ORDER_REFUNDED,
    CanonicalEvent,
)
from shared.domain.profiles import Profile


class Order(BaseModel):
    store_id: str
    order_id: str
    customer_id: str
    total: Decimal = Decimal(0)
    currency: str | None = None
    status: str = "completed"  # completed | cancelled
    refunded: Decimal = Decimal(0)
    at: float
    points: int = 0  # loyalty points credited for this order
    points_reversed: int = 0  # of those, taken back by refunds and cancellation
    message_ids: list[str] = Field(default_factory=list)
    # the store's own delivery (an Order Delivered it sent); partners' deliveries are on their
    # forward records (shared/adapters/fulfilment_store.py), one per part
    delivered_at: float | None = None
    version: int = 0


def record_order(profile: Profile, order: Order) -> None:
    o = profile.orders
    o.count += 1
    o.revenue += order.total
    o.currency = o.currency or order.currency
    o.first_order_at = order.at if o.first_order_at is None else min(o.first_order_at, order.at)
    o.last_order_at = order.at if o.last_order_at is None else max(o.last_order_at, order.at)


def cancel_order(profile: Profile, order: Order) -> None:
    profile.orders.count = max(0, profile.orders.count - 1)
    profile.orders.revenue -= order.total
    profile.orders.cancelled_count += 1


def refund_order(profile: Profile, amount: Decimal) -> None:
    profile.orders.refunded += amount


def order_from(event: CanonicalEvent, customer_id: str) -> Order:
    p = event.properties
    total = p.get("total", p.get("revenue"))
    if total is None:
        total = sum(
            Decimal(str(x.get("price") or 0)) * int(x.get("quantity", 1)) for x in p.get("products") or []
        )
    return Order(
        store_id=event.store_id,
        order_id=str(p["order_id"]),
        customer_id=customer_id,
        total=Decimal(str(total)),
        currency=p.get("currency"),
        at=event.received_at,
        message_ids=[event.message_id],
    )


def is_order_event(event: CanonicalEvent) -> bool:
    if event.type != "track":
        return False
    if event.event == ORDER_DELIVERED:
        # the store's own delivery of an order it names; a partner's is recorded on its forward
        p = event.properties or {}
        return bool(p.get("order_id")) and not p.get("partner_id")
    return event.event in (ORDER_COMPLETED, ORDER_CANCELLED, ORDER_REFUNDED)


def order_delivered_at(
    own_delivery: float | None, parts: Iterable[tuple[float | None, float | None]]
) -> float | None:
    """When the whole order reached the customer, as far as Boomerang knows: the latest of the
    store's own delivery and of each part a partner accepted, given as (accepted_at, delivered_at)
    pairs. None while nothing is known or an accepted part is still on its way (parts refused,
    given up or cancelled never ship and are ignored)."""
    times = [own_delivery] if own_delivery is not None else []
    for accepted_at, delivered_at in parts:
        if delivered_at is not None:
            times.append(delivered_at)
        elif accepted_at is not None:
            return None
    return max(times) if times else None
