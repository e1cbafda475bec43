"""An order as Boomerang counts it, and what its events change on the customer's profile.

An order is counted once per order_id (a replay with a new messageId changes nothing); the
profile keeps the aggregates (count, revenue, refunds) that segments, RFM and retention read.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from shared.domain.events import ORDER_CANCELLED, ORDER_COMPLETED, ORDER_REFUNDED, CanonicalEvent
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
    return event.type == "track" and event.event in (
        ORDER_COMPLETED,
        ORDER_CANCELLED,
        ORDER_REFUNDED,
    )
