"""`python -m tests.bench dynamodb`: what one storefront event costs in DynamoDB writes.

WRU per event type as AWS bills them (tests/wru.py: item sizes before and after, x2 inside a
transaction, + every index entry the write changes), measured on moto through the profile fold,
for customers who already have a history (a dozen viewed products, a consent, an order); and the
profile item's size after many varied events (p50, p95, max), the figure that sets every write's
price.
"""

from __future__ import annotations

import os
import random
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.aws_fixtures import FAKE_CREDENTIALS, FixedClock, World

T0 = 1_790_000_000.0


@contextmanager
def _world() -> Iterator[World]:
    from moto import mock_aws

    from infra.local import moto_dynamodb
    from shared.platform import clock
    from shared.platform.aws import reset_clients
    from shared.platform.settings import settings
    from shared.services import wiring
    from tests.aws_fixtures import create_world, use_shared_boto3_session

    moto_dynamodb.install()
    os.environ.update(FAKE_CREDENTIALS)
    with mock_aws():
        use_shared_boto3_session()
        world = create_world(templates=False)
        os.environ.update(world.env())
        settings.cache_clear()
        reset_clients()
        wiring.reset()
        clock.set_clock(FixedClock(T0))
        try:
            yield world
        finally:
            clock.reset_clock()
            reset_clients()


def _product(i: int) -> dict[str, Any]:
    return {
        "product_id": f"prod-{i}",
        "sku": f"SKU-{i:05d}",
        "name": f"Merino trail running jacket, colour {i} (limited edition)",
        "price": 89.5 + i,
        "currency": "GBP",
        "image_url": f"https://cdn.shop.example.com/s/files/1/0001/products/jacket-{i}-front_1024x1024.jpg",
        "url": f"https://shop.example.com/products/merino-trail-running-jacket-colour-{i}",
    }


def calls(user: str, n: int) -> dict[str, dict[str, Any]]:
    """The measured calls of customer `user` (the n-th measured round)."""
    p = _product(1000 + n)
    cart = f"cart-{user}-{n}"
    line = {**p, "quantity": 1}
    return {
        "identify (a login, same traits)": {
            "type": "identify",
            "userId": user,
            "traits": {"email": f"{user}@example.com", "firstName": "Ada", "timezone": "Europe/London"},
        },
        "Product Viewed (a new product)": {
            "type": "track",
            "event": "Product Viewed",
            "userId": user,
            "properties": p,
        },
        "Product Viewed (same product again)": {
            "type": "track",
            "event": "Product Viewed",
            "userId": user,
            "properties": p,
        },
        "Product Added": {
            "type": "track",
            "event": "Product Added",
            "userId": user,
            "properties": {**line, "cart_id": cart},
        },
        "Checkout Started": {
            "type": "track",
            "event": "Checkout Started",
            "userId": user,
            "properties": {
                "cart_id": cart,
                "checkout_id": f"chk-{cart}",
                "value": p["price"],
                "products": [line],
            },
        },
        "Order Completed": {
            "type": "track",
            "event": "Order Completed",
            "userId": user,
            "properties": {
                "order_id": f"order-{cart}",
                "cart_id": cart,
                "total": p["price"],
                "currency": "GBP",
                "products": [line],
            },
        },
        "Consent Updated": {
            "type": "track",
            "event": "Consent Updated",
            "userId": user,
            "properties": {
                "consent": {"sms": "subscribed" if n % 2 == 0 else "unsubscribed"},
                "consent_source": "preference-center",
                "consent_text": "Text me about offers and reminders",
            },
        },
    }


def _history(user: str, views: int = 12) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "identify",
            "userId": user,
            "anonymousId": f"anon-{user}",
            "traits": {
                "email": f"{user}@example.com",
                "firstName": "Ada",
                "timezone": "Europe/London",
                "consent": {"email": "subscribed"},
                "consent_source": "checkout-form",
                "consent_text": "Send me offers and reminders by email",
            },
        }
    ]
    out += [
        {"type": "track", "event": "Product Viewed", "userId": user, "properties": _product(i)}
        for i in range(views)
    ]
    return out


def _fold(world: World, call: dict[str, Any], at: float, n: int, message_id: str | None = None) -> str:
    from tests.aws_fixtures import canonical

    message_id = message_id or f"m-{call.get('userId')}-{n}-{at}"
    [event] = canonical([{**call, "messageId": message_id}], at)
    world.profiles().apply(event)
    return message_id


# measured after the round: the round's identify delivered again a minute later (a webhook's retry)
REPLAY = "identify replayed 60 s later"


def wru_per_event(customers: int = 4) -> dict[str, tuple[float, float, int]]:
    """Mean WRU, mean RRU and the largest item written, per event type, for customers with a history."""
    from shared.platform import clock
    from tests.wru import metering

    found: dict[str, list[tuple[float, float, int]]] = {}
    with _world() as world, metering() as meter:
        at = T0
        for c in range(customers):
            user = f"bench-{c}"
            for i, call in enumerate(_history(user)):
                at += 30
                _fold(world, call, at, i)
            sent: dict[str, str] = {}
            round_ = calls(user, c)
            for kind, call in [*round_.items(), (REPLAY, round_["identify (a login, same traits)"])]:
                at += 20 if "again" in kind else 60  # a reload 20 s after the view
                clock.set_clock(FixedClock(at))
                meter.reset()
                sent[kind] = _fold(
                    world,
                    call,
                    at,
                    99,
                    sent.get("identify (a login, same traits)", "") if kind == REPLAY else None,
                )
                found.setdefault(kind, []).append((meter.wru, meter.rru, meter.largest_item))
    return {
        k: (statistics.mean(w for w, _, _ in v), statistics.mean(r for _, r, _ in v), max(s for _, _, s in v))
        for k, v in found.items()
    }


def profile_sizes(customers: int = 12, seed: int = 7) -> list[int]:
    """The profile item's size (bytes) after each customer's varied history (20 to 200 events:
    views of many products, carts, orders, consent changes, traits, new devices' anonymous ids)."""
    from shared.platform import keys
    from shared.platform.aws import client, key
    from tests.wru import item_size

    rnd = random.Random(seed)
    sizes: list[int] = []
    with _world() as world:
        at = T0
        for c in range(customers):
            user = f"size-{c}"
            for n in range(rnd.randint(20, 200)):
                at += 45
                roll = rnd.random()
                round_ = calls(user, rnd.randint(0, 300))
                if roll < 0.5:
                    call = round_["Product Viewed (a new product)"]
                elif roll < 0.7:
                    call = round_["Product Added"]
                elif roll < 0.75:
                    call = round_["Checkout Started"]
                elif roll < 0.78:
                    call = round_["Order Completed"]
                elif roll < 0.85:
                    call = round_["Consent Updated"]
                elif roll < 0.95:
                    call = {
                        "type": "track",
                        "event": f"Custom Event {rnd.randint(0, 200)}",
                        "userId": user,
                        "anonymousId": f"anon-{user}-{rnd.randint(0, 50)}",
                    }
                else:
                    call = round_["identify (a login, same traits)"]
                _fold(world, call, at, n)
            resp = client("dynamodb").get_item(
                TableName=world.table,
                Key=key(keys.customer_pk(world.store.store_id, f"u:{user}"), keys.PROFILE_SK),
            )
            sizes.append(item_size(resp["Item"]))
    return sizes


def print_dynamodb() -> None:
    print("DynamoDB writes per event (WRU as billed: 1 KB units of the larger of before/after, x2 in a")
    print("transaction, + index entries), the reads' RRU (4 KB units, half when eventually consistent),")
    print("for a customer with a history; and the largest item written:")
    for kind, (wru, rru, largest) in wru_per_event().items():
        print(f"  {kind:<38} {wru:5.1f} WRU {rru:5.1f} RRU   largest item {largest / 1024:5.1f} KB")
    sizes = sorted(profile_sizes())
    q = statistics.quantiles(sizes, n=20)
    print(
        f"Profile item after 20-200 varied events ({len(sizes)} customers): p50 {statistics.median(sizes) / 1024:.1f} KB,"
        f" p95 {q[18] / 1024:.1f} KB, max {sizes[-1] / 1024:.1f} KB"
    )
