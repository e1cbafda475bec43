"""The profile fold keeps the sparse lifecycle indexes exact: each Query finds exactly who it should.

by-birthday (bday), by-anniversary (anniv), at-risk (risk) on profile items, by-sku (bis) on
back-in-stock subscription items; all written in the fold's one transaction, on moto DynamoDB.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions.profile.handler import handler
from shared.domain.events import CanonicalEvent
from shared.platform import indexes, keys
from shared.platform.aws import client, from_item, key
from tests.aws_fixtures import LambdaContext, World, bus_envelope, canonical, sqs_batch

STORE = "shop-1"
DAY = 86400
T1 = datetime(2026, 1, 10, 9, 30, tzinfo=UTC).timestamp()  # a Saturday morning in January


def deliver(ctx: LambdaContext, *events: CanonicalEvent) -> None:
    result = handler(sqs_batch(bus_envelope(e) for e in events), ctx)
    assert result == {"batchItemFailures": []}


def identify(user: str | None, at: float, anon: str | None = None, **traits: Any) -> CanonicalEvent:
    call: dict[str, Any] = {"type": "identify", "messageId": f"id-{user}-{anon}-{at}", "traits": traits}
    call.update({k: v for k, v in (("userId", user), ("anonymousId", anon)) if v})
    [event] = canonical([call], at)
    return event


def track(
    event: str, at: float, user: str | None = None, anon: str | None = None, **props: Any
) -> CanonicalEvent:
    call: dict[str, Any] = {"type": "track", "event": event, "messageId": f"{event}-{user}-{anon}-{at}"}
    call.update({k: v for k, v in (("userId", user), ("anonymousId", anon)) if v})
    call["properties"] = props
    [folded] = canonical([call], at)
    return folded


def order(
    user: str | None, order_id: str, total: float, at: float, anon: str | None = None
) -> CanonicalEvent:
    return track("Order Completed", at, user, anon, order_id=order_id, total=total, currency="EUR")


def who(world: World, index: indexes.IndexSpec, value: str) -> list[str]:
    """Every customer_id in one partition of a sparse index (a Query, as the scheduled runs do)."""
    resp = client("dynamodb").query(
        TableName=world.table,
        IndexName=index.name,
        KeyConditionExpression="#p = :p",
        ExpressionAttributeNames={"#p": index.partition},
        ExpressionAttributeValues={":p": {"S": value}},
    )
    return sorted(from_item(i)["customer_id"] for i in resp["Items"])


def raw(world: World, pk: str, sk: str) -> dict[str, Any]:
    resp = client("dynamodb").get_item(TableName=world.table, Key=key(pk, sk), ConsistentRead=True)
    return from_item(resp["Item"])


# --- birthdays ----------------------------------------------------------------------------------------


def test_birthday_index_finds_exactly_the_customers_born_that_day(world: World, ctx: LambdaContext) -> None:
    # Given four customers: two born on 23 April (with and without a year), one on 1 May, one unknown
    deliver(
        ctx,
        identify("ada", T1, birthday="1990-04-23"),
        identify("bo", T1, birthday="04-23"),
        identify("cy", T1, birthday="--05-01"),
        identify("di", T1, first_name="Di"),
    )

    # Then each day's Query finds exactly its customers
    assert who(world, indexes.BY_BIRTHDAY, indexes.birthday_key(STORE, "04-23")) == ["u:ada", "u:bo"]
    assert who(world, indexes.BY_BIRTHDAY, indexes.birthday_key(STORE, "05-01")) == ["u:cy"]
    profile = world.profiles().load_profile(STORE, "u:cy")
    assert profile is not None and profile.birthday_month_day == "05-01"

    # When one corrects their birthday and another clears it
    deliver(ctx, identify("bo", T1 + 10, birthday="1985-05-01"), identify("ada", T1 + 10, birthday=None))

    # Then they move and leave: the attribute follows the profile in the same write
    assert who(world, indexes.BY_BIRTHDAY, indexes.birthday_key(STORE, "04-23")) == []
    assert who(world, indexes.BY_BIRTHDAY, indexes.birthday_key(STORE, "05-01")) == ["u:bo", "u:cy"]
    assert "bday" not in raw(world, keys.customer_pk(STORE, "u:ada"), keys.PROFILE_SK)

    # And a late identify (received before the clearing) does not bring the old birthday back
    deliver(ctx, identify("ada", T1 + 5, birthday="04-23"))
    assert who(world, indexes.BY_BIRTHDAY, indexes.birthday_key(STORE, "04-23")) == []


# --- first-order anniversary and at risk ----------------------------------------------------------------


def test_anniversary_and_at_risk_follow_the_orders(world: World, ctx: LambdaContext) -> None:
    # Given a one-time buyer and a regular who orders every 60 days, both first on 10 January
    deliver(ctx, order("once", "o-1", 30, T1))
    deliver(ctx, order("reg", "r-1", 40, T1), order("reg", "r-2", 40, T1 + 60 * DAY))
    deliver(ctx, order("reg", "r-3", 40, T1 + 120 * DAY))
    deliver(ctx, identify("never", T1))  # has not ordered

    # Then both celebrate on 10 January
    assert who(world, indexes.BY_ANNIVERSARY, indexes.anniversary_key(STORE, "01-10")) == ["u:once", "u:reg"]
    # And the one-time buyer is at risk 90 days after their order (10 April); the regular's own
    # interval (60 days) is shorter than the 90-day minimum: 90 days after 10 May is 8 August
    assert who(world, indexes.AT_RISK, indexes.at_risk_key(STORE, "2026-04-10")) == ["u:once"]
    assert who(world, indexes.AT_RISK, indexes.at_risk_key(STORE, "2026-08-08")) == ["u:reg"]
    regular = world.profiles().load_profile(STORE, "u:reg")
    assert regular is not None
    assert (regular.expected_interval_days, regular.at_risk_on) == (60, "2026-08-08")

    # When the one-time buyer's order is cancelled
    deliver(ctx, track("Order Cancelled", T1 + DAY, "once", order_id="o-1"))

    # Then they are neither celebrated nor at risk: they have no order
    assert who(world, indexes.BY_ANNIVERSARY, indexes.anniversary_key(STORE, "01-10")) == ["u:reg"]
    assert who(world, indexes.AT_RISK, indexes.at_risk_key(STORE, "2026-04-10")) == []


def test_a_late_order_never_moves_the_at_risk_day_back(world: World, ctx: LambdaContext) -> None:
    # Given an order on day 120, then an older order (day 0) processed late
    deliver(ctx, order("ada", "a-2", 10, T1 + 120 * DAY))
    deliver(ctx, order("ada", "a-1", 10, T1))

    # Then first order (anniversary) is 10 January, and the risk day still counts from the last order:
    # one interval of 120 days > 90 -> 120 days after 10 May = 7 September
    assert who(world, indexes.BY_ANNIVERSARY, indexes.anniversary_key(STORE, "01-10")) == ["u:ada"]
    assert who(world, indexes.AT_RISK, indexes.at_risk_key(STORE, "2026-09-07")) == ["u:ada"]


def test_store_retention_policy_sets_the_at_risk_day(world: World, ctx: LambdaContext) -> None:
    from shared.adapters.store_directory import StoreDirectory
    from shared.domain.stores import RetentionPolicy

    StoreDirectory(client("dynamodb"), world.table).put(
        world.store.model_copy(update={"retention": RetentionPolicy(at_risk_min_days=30)}), world.api_key
    )
    deliver(ctx, order("ada", "a-1", 10, T1))
    assert who(world, indexes.AT_RISK, indexes.at_risk_key(STORE, "2026-02-09")) == ["u:ada"]


# --- merged visitors --------------------------------------------------------------------------------------


def test_a_merged_visitor_leaves_every_index_and_the_customer_takes_their_place(
    world: World, ctx: LambdaContext
) -> None:
    # Given an anonymous visitor who gave a birthday and ordered as a guest
    deliver(ctx, identify(None, T1, anon="anon-7", birthday="07-14"))
    deliver(ctx, order(None, "g-1", 50, T1 + 60, anon="anon-7"))
    assert who(world, indexes.BY_BIRTHDAY, indexes.birthday_key(STORE, "07-14")) == ["a:anon-7"]
    assert who(world, indexes.BY_ANNIVERSARY, indexes.anniversary_key(STORE, "01-10")) == ["a:anon-7"]
    assert who(world, indexes.AT_RISK, indexes.at_risk_key(STORE, "2026-04-10")) == ["a:anon-7"]

    # When they sign in as a known customer
    deliver(ctx, identify("ada", T1 + 120, anon="anon-7", email="ada@example.com"))

    # Then only the customer is found, in every index
    assert who(world, indexes.BY_BIRTHDAY, indexes.birthday_key(STORE, "07-14")) == ["u:ada"]
    assert who(world, indexes.BY_ANNIVERSARY, indexes.anniversary_key(STORE, "01-10")) == ["u:ada"]
    assert who(world, indexes.AT_RISK, indexes.at_risk_key(STORE, "2026-04-10")) == ["u:ada"]
    visitor = raw(world, keys.customer_pk(STORE, "a:anon-7"), keys.PROFILE_SK)
    assert visitor["merged_into"] == "u:ada"
    assert not {"bday", "anniv", "risk"} & set(visitor)
    customer = world.profiles().load_profile(STORE, "u:ada")
    assert customer is not None and customer.loyalty.points == 50 and customer.loyalty.tier == "bronze"


# --- back in stock ---------------------------------------------------------------------------------------


def test_back_in_stock_subscribers_are_found_by_sku_and_notified_once(
    world: World, ctx: LambdaContext
) -> None:
    # Given a known customer and a visitor waiting for LAMP-9, and someone waiting for another SKU
    product: dict[str, Any] = {"name": "Headlamp", "url": "https://shop.example.com/p/lamp", "price": 24.5}
    deliver(
        ctx,
        track("Back In Stock Subscribed", T1, "ada", sku="LAMP-9", **product),
        track("Back In Stock Subscribed", T1 + 1, None, "anon-3", sku="LAMP-9", **product),
        track("Back In Stock Subscribed", T1 + 2, "bo", product_id="TENT-1"),
    )
    profiles = world.profiles()

    # Then a Query by SKU finds exactly the two, with when they subscribed
    found, more = profiles.back_in_stock_subscribers(STORE, "LAMP-9")
    assert sorted((f["customer_id"], f["subscribed_at"]) for f in found) == [
        ("a:anon-3", T1 + 1),
        ("u:ada", T1),
    ]
    assert more is None
    assert [f["customer_id"] for f in profiles.back_in_stock_subscribers(STORE, "TENT-1")[0]] == ["u:bo"]
    item = raw(world, keys.customer_pk(STORE, "u:ada"), "BIS#LAMP-9")
    assert (item["name"], item["url"], item["price"]) == ("Headlamp", "https://shop.example.com/p/lamp", 24.5)

    # When Ada subscribes again later (and the first event is replayed)
    deliver(ctx, track("Back In Stock Subscribed", T1 + 500, "ada", sku="LAMP-9"))
    deliver(ctx, track("Back In Stock Subscribed", T1, "ada", sku="LAMP-9", **product))

    # Then her original subscription time stands
    assert raw(world, keys.customer_pk(STORE, "u:ada"), "BIS#LAMP-9")["subscribed_at"] == T1

    # And the subscribers page through, one at a time
    pages, start = [], None
    while True:
        page, start = profiles.back_in_stock_subscribers(STORE, "LAMP-9", limit=1, start_key=start)
        pages.append([f["customer_id"] for f in page])
        if start is None:
            break
    assert sorted(c for p in pages for c in p) == ["a:anon-3", "u:ada"]
    assert all(len(p) <= 1 for p in pages)

    # When the journey ends Ada's subscription, twice (a retry)
    assert profiles.end_back_in_stock(STORE, "u:ada", "LAMP-9", at=T1 + 900) is True
    assert profiles.end_back_in_stock(STORE, "u:ada", "LAMP-9", at=T1 + 901) is False

    # Then she has left the index, and the item stays as her history
    assert [f["customer_id"] for f in profiles.back_in_stock_subscribers(STORE, "LAMP-9")[0]] == ["a:anon-3"]
    history = raw(world, keys.customer_pk(STORE, "u:ada"), "BIS#LAMP-9")
    assert "bis" not in history and history["notified_at"] == T1 + 900
    assert profiles.end_back_in_stock(STORE, "u:nobody", "LAMP-9") is False

    # And a subscription event from before the notification, processed late, does not re-subscribe her
    late = track("Back In Stock Subscribed", T1 + 800, "ada", sku="LAMP-9")
    deliver(ctx, late)
    assert "bis" not in raw(world, keys.customer_pk(STORE, "u:ada"), "BIS#LAMP-9")
    # while a new one after it does
    deliver(ctx, track("Back In Stock Subscribed", T1 + 1000, "ada", sku="LAMP-9"))
    again = raw(world, keys.customer_pk(STORE, "u:ada"), "BIS#LAMP-9")
    assert (again["subscribed_at"], "notified_at" in again) == (T1 + 1000, False)


def test_a_visitors_subscriptions_follow_them_when_they_sign_in(world: World, ctx: LambdaContext) -> None:
    # Given a visitor waiting for two SKUs, one of which the customer already waits for (since later)
    deliver(
        ctx,
        track("Back In Stock Subscribed", T1 + 100, "ada", sku="LAMP-9"),
        track("Back In Stock Subscribed", T1, None, "anon-3", sku="LAMP-9"),
        track("Back In Stock Subscribed", T1 + 1, None, "anon-3", sku="TENT-1", name="Tent"),
    )

    # When the visitor signs in as Ada
    deliver(ctx, identify("ada", T1 + 200, anon="anon-3"))

    # Then each SKU lists Ada once, with the earliest subscription time, and no longer the visitor
    profiles = world.profiles()
    assert profiles.back_in_stock_subscribers(STORE, "LAMP-9")[0] == [
        {"customer_id": "u:ada", "subscribed_at": T1}
    ]
    assert profiles.back_in_stock_subscribers(STORE, "TENT-1")[0] == [
        {"customer_id": "u:ada", "subscribed_at": T1 + 1}
    ]
    assert raw(world, keys.customer_pk(STORE, "u:ada"), "BIS#TENT-1")["name"] == "Tent"
    moved = raw(world, keys.customer_pk(STORE, "a:anon-3"), "BIS#TENT-1")
    assert "bis" not in moved and moved["moved_to"] == "u:ada"


def test_back_in_stock_from_the_store_changes_no_profile(world: World, ctx: LambdaContext) -> None:
    # Given the store's backend announcing a restock under a technical user id
    event = track("Back In Stock", T1, "store-backend", sku="LAMP-9")

    # When folded
    result = handler(sqs_batch([bus_envelope(event)]), ctx)

    # Then nothing is created: no profile, no exactly-once marker
    assert result == {"batchItemFailures": []}
    assert world.profiles().load_profile(STORE, "u:store-backend") is None
    resp = client("dynamodb").get_item(
        TableName=world.table, Key=key(keys.event_pk(STORE, event.message_id), keys.EVENT_SK)
    )
    assert "Item" not in resp


def test_subscribing_while_signing_in_with_a_waiting_visitor_subscription(
    world: World, ctx: LambdaContext
) -> None:
    # Given a visitor waiting for LAMP-9
    deliver(ctx, track("Back In Stock Subscribed", T1, None, "anon-3", sku="LAMP-9"))

    # When the first call that links them to Ada subscribes to the same SKU (the merge moves it)
    deliver(ctx, track("Back In Stock Subscribed", T1 + 60, "ada", "anon-3", sku="LAMP-9"))

    # Then Ada waits once, since the visitor's time
    found, _ = world.profiles().back_in_stock_subscribers(STORE, "LAMP-9")
    assert found == [{"customer_id": "u:ada", "subscribed_at": T1}]
