"""DynamoDB at the floor, the pure half: the profile item stays small and bounded whatever the
customer does, and a repeat view changes nothing (so the store writes nothing)."""

from __future__ import annotations

import random
from typing import Any

from shared.adapters.profile_store import ProfileStore
from shared.domain import event_routing as route
from shared.domain.api_calls import normalise
from shared.domain.carts import Cart
from shared.domain.events import CanonicalEvent
from shared.domain.fold import MAX_REMOVED_DEVICES, MAX_VIEWED, REPEAT_VIEW_S, touch
from shared.domain.loyalty import LoyaltyPolicy
from shared.domain.orders import Order
from shared.domain.profiles import Profile
from shared.domain.retention import RetentionPolicy, index_attributes
from shared.domain.segments import restate
from shared.platform.aws import to_item
from tests.wru import item_size

STORE = "shop-1"
# The profile item's bound with realistic custom traits (they have their own budget,
# limits.MAX_PROFILE_TRAITS_BYTES, set by the store's own identify calls, not by what a customer does).
PROFILE_ITEM_BOUND = 8 * 1024


def event(call: dict[str, Any], at: float, n: int) -> CanonicalEvent:
    [e], errors = normalise([{"userId": "user-42", "messageId": f"m-{n}", **call}], STORE, at)
    assert not errors, errors
    return e


def product(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "product_id": f"prod-{i}",
        "sku": f"SKU-{i:05d}",
        "name": f"Merino trail running jacket, colour {i} (limited edition)",
        "price": 89.5 + i,
        "currency": "GBP",
        "image_url": f"https://cdn.shop.example.com/s/files/1/0001/products/jacket-{i}-front_1024x1024.jpg",
        "url": f"https://shop.example.com/products/merino-trail-running-jacket-colour-{i}",
        **extra,
    }


def fold(p: Profile, e: CanonicalEvent) -> None:
    """What ProfileStore._plan does to the profile for a profile-only event."""
    touch(p, e)
    route.fold_profile_rules(p, e, False)


def view(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", "properties": product(i, **extra)}


def test_a_repeat_view_of_the_front_product_changes_nothing() -> None:
    p = Profile(store_id=STORE, customer_id="u:user-42")
    fold(p, event(view(1), 1000, 1))
    held = p.model_dump()

    # a reload seconds later: the same product, same details
    fold(p, event(view(1), 1000 + REPEAT_VIEW_S - 1, 2))
    assert p.model_dump() == held

    # later than the window, another product, new details or a new device: each is recorded
    for call, at in (
        (view(1), 1000 + REPEAT_VIEW_S),
        (view(2), 1001),
        (view(1, price=1.0), 1001),
        ({**view(1), "anonymousId": "new-device"}, 1001),
    ):
        q = Profile.model_validate(held)
        fold(q, event(call, at, 3))
        assert q.model_dump() != held, call


def test_a_late_repeat_view_is_not_mistaken_for_a_repeat() -> None:
    p = Profile(store_id=STORE, customer_id="u:user-42")
    fold(p, event(view(1), 1000, 1))
    held = p.model_dump()
    fold(p, event(view(1), 999, 2))  # older than the held view: nothing newer to record either
    assert p.first_seen_at == 999 and p.model_dump() != held


def test_the_profile_item_stays_small_whatever_the_customer_does() -> None:
    # Given thousands of varied events: views of thousands of products, hundreds of event names,
    # new devices (anonymous ids), consent changed back and forth, push devices come and go,
    # carts and orders, logins
    rnd = random.Random(17)
    p = Profile(store_id=STORE, customer_id="u:user-42")
    loyalty, retention = LoyaltyPolicy(), RetentionPolicy()
    carts: dict[str, Cart] = {}
    orders: dict[str, Order] = {}
    sizes = []
    store, proofs = ProfileStore(None, "table"), 0
    at = 1_790_000_000.0
    for n in range(2500):
        at += rnd.randint(1, 4000)
        roll = rnd.random()
        anon = {"anonymousId": f"anon-device-{rnd.randint(0, 400)}"}
        if roll < 0.45:
            e = event({**view(rnd.randint(0, 5000)), **anon}, at, n)
        elif roll < 0.6:
            e = event({"type": "track", "event": f"Custom Event {rnd.randint(0, 300)}", **anon}, at, n)
        elif roll < 0.7:
            status = rnd.choice(["subscribed", "unsubscribed"])
            e = event(
                {
                    "type": "track",
                    "event": "Consent Updated",
                    "properties": {
                        "consent": {rnd.choice(["email", "sms"]): status},
                        "consent_source": "preference-center",
                        "consent_text": "Send me offers and reminders by email, at most twice a week",
                    },
                },
                at,
                n,
            )
        elif roll < 0.78:
            token = f"{rnd.randint(0, 10**6):064x}"
            name = rnd.choice(["Device Registered", "Device Unregistered"])
            e = event(
                {"type": "track", "event": name, "properties": {"token": token, "platform": "GCM"}}, at, n
            )
        elif roll < 0.9:
            cart_id = f"cart-{n // 20}"
            e = event(
                {
                    "type": "track",
                    "event": "Product Added",
                    "properties": {**product(rnd.randint(0, 5000)), "quantity": 1, "cart_id": cart_id},
                },
                at,
                n,
            )
            carts[cart_id], _ = route.fold_cart(p, carts.get(cart_id), e)
            touch(p, e)
            continue
        elif roll < 0.95:
            order_id = f"order-{n}"
            e = event(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "properties": {
                        "order_id": order_id,
                        "total": 120.0,
                        "currency": "GBP",
                        "products": [product(n)],
                    },
                },
                at,
                n,
            )
            touch(p, e)
            folded = route.fold_order(p, e, None, None, loyalty, retention)
            if folded.order is not None:
                orders[order_id] = folded.order
            continue
        else:
            traits = {
                "email": "ada@example.com",
                "firstName": "Ada",
                "timezone": "Europe/London",
                "plan": "gold",
            }
            e = event({"type": "identify", "traits": traits, **anon}, at, n)
        fold(p, e)
        restate(p, None, None, retention, at)
        proofs += len(store._consent_proof_writes(p))  # as the fold's write does: proof in items of its own
        item = {"pk": "STORE#shop-1#CUST#u:user-42", "sk": "PROFILE", **p.model_dump(mode="python")}
        item.update(index_attributes(p))
        sizes.append(item_size(to_item(item)))

    # Then the item never passes its stated bound, and the growing lists are at their caps
    print("profile item sizes", sorted(sizes)[len(sizes) // 2], max(sizes))
    assert max(sizes) < PROFILE_ITEM_BOUND, max(sizes)
    assert len(p.viewed) == MAX_VIEWED
    assert len(p.removed_devices) <= MAX_REMOVED_DEVICES
    assert proofs > 200 and not p.consent_history  # every change kept as proof, none on the profile
