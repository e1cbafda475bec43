"""A shopping cart, and the rules that fold cart events into it.

Cart events arrive late and out of order (several tabs, retried calls): a line remembers when it
changed, so a late Product Added never undoes a later removal, and activity from before a
purchase never reopens the converted cart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from shared.domain.events import CART_VIEWED, CHECKOUT_STARTED, PRODUCT_ADDED, PRODUCT_REMOVED, CanonicalEvent
from shared.domain.profiles import as_decimal


class CartLine(BaseModel):
    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    price: Decimal | None = None
    quantity: int = 0
    currency: str | None = None
    image_url: str | None = None
    url: str | None = None
    updated_at: float = 0
    removed_at: float | None = None


class Cart(BaseModel):
    store_id: str
    cart_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    lines: dict[str, CartLine] = Field(default_factory=dict)
    currency: str | None = None
    snapshot_at: float | None = None
    status: str = "open"  # open | converted
    converted_at: float | None = None
    order_id: str | None = None
    recovery_url: str | None = None  # the platform's link back to this checkout, if it gave one
    created_at: float | None = None
    last_activity_at: float = 0
    version: int = 0

    @property
    def items(self) -> list[CartLine]:
        return [line for line in self.lines.values() if line.quantity > 0 and line.removed_at is None]

    @property
    def value(self) -> Decimal:
        return sum(((line.price or Decimal(0)) * line.quantity for line in self.items), Decimal(0))


def _line_key(p: dict[str, Any]) -> str:
    return str(p.get("sku") or p.get("product_id"))


def _line_from(p: dict[str, Any], at: float, quantity: int) -> CartLine:
    return CartLine(
        product_id=p.get("product_id"),
        sku=p.get("sku"),
        name=p.get("name"),
        price=as_decimal(p.get("price")),
        quantity=quantity,
        currency=p.get("currency"),
        image_url=p.get("image_url"),
        url=p.get("url"),
        updated_at=at,
    )


def new_cart(event: CanonicalEvent, cart_id: str) -> Cart:
    return Cart(store_id=event.store_id, cart_id=cart_id, created_at=event.received_at)


def apply_cart_event(cart: Cart, event: CanonicalEvent) -> None:
    at = event.received_at
    p = event.properties
    if event.user_id:
        cart.user_id = event.user_id
    if event.anonymous_id and not cart.anonymous_id:
        cart.anonymous_id = event.anonymous_id
    if cart.status == "converted" and cart.converted_at is not None and at <= cart.converted_at:
        return  # activity from before the purchase cannot reopen the cart
    if cart.status == "converted":
        cart.status, cart.converted_at, cart.order_id = "open", None, None  # shopping again
    cart.created_at = at if cart.created_at is None else min(cart.created_at, at)
    cart.last_activity_at = max(cart.last_activity_at, at)
    cart.currency = p.get("currency") or cart.currency
    if event.event in (CART_VIEWED, CHECKOUT_STARTED) and p.get("recovery_url"):
        cart.recovery_url = str(p["recovery_url"])

    if event.event == PRODUCT_ADDED:
        key = _line_key(p)
        line = cart.lines.get(key)
        if line is not None and line.removed_at is not None and at <= line.removed_at:
            return  # the removal came later in real time
        if line is None or line.removed_at is not None:
            cart.lines[key] = _line_from(p, at, int(p.get("quantity", 1)))
        else:
            fresh = _line_from(p, at, line.quantity + int(p.get("quantity", 1)))
            # details (price, name) follow the newest event; quantity accumulates
            cart.lines[key] = (
                fresh if at >= line.updated_at else line.model_copy(update={"quantity": fresh.quantity})
            )
    elif event.event == PRODUCT_REMOVED:
        key = _line_key(p)
        line = cart.lines.get(key)
        if line is None:
            cart.lines[key] = _line_from(p, at, 0).model_copy(update={"removed_at": at})
        elif at >= line.updated_at:
            remaining = line.quantity - int(p.get("quantity", line.quantity))
            if remaining > 0:
                cart.lines[key] = line.model_copy(update={"quantity": remaining, "updated_at": at})
            else:
                cart.lines[key] = line.model_copy(update={"quantity": 0, "removed_at": at, "updated_at": at})
    elif event.event in (CART_VIEWED, CHECKOUT_STARTED) and p.get("products") is not None:
        if cart.snapshot_at is not None and at < cart.snapshot_at:
            return
        cart.snapshot_at = at
        snapshot = {
            _line_key(prod): _line_from(prod, at, int(prod.get("quantity", 1))) for prod in p["products"]
        }
        # lines changed after this snapshot (late-processed events) keep their newer state
        for k, line in cart.lines.items():
            if line.updated_at > at:
                snapshot[k] = line
        cart.lines = snapshot


def convert_cart(cart: Cart, order_id: str, at: float) -> None:
    if cart.last_activity_at > at:
        return  # the customer added things after this order: that is a new, open cart
    cart.status, cart.converted_at, cart.order_id = "converted", at, order_id


def is_cart_event(event: CanonicalEvent) -> bool:
    return event.type == "track" and event.event in (
        PRODUCT_ADDED,
        PRODUCT_REMOVED,
        CART_VIEWED,
        CHECKOUT_STARTED,
    )
