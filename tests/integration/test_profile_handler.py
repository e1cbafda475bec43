"""The profile λ on moto DynamoDB: SQS batches of bus events folded into profiles exactly once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from functions.profile.handler import handler
from shared.domain.events import CanonicalEvent
from shared.platform import keys
from shared.platform.aws import client, from_item, key
from tests.aws_fixtures import LambdaContext, World, bus_envelope, canonical, sqs_batch
from tests.events import load_event

STORE = "shop-1"
T0 = 1_790_000_000.0


def at(name: str, received_at: float, **changes: Any) -> CanonicalEvent:
    [event] = canonical([{**load_event(name), **changes}], received_at)
    return event


def deliver(ctx: LambdaContext, events: list[CanonicalEvent]) -> dict[str, Any]:
    result: dict[str, Any] = handler(sqs_batch(bus_envelope(e) for e in events), ctx)
    return result


def item(world: World, pk: str, sk: str) -> dict[str, Any] | None:
    resp = client("dynamodb").get_item(TableName=world.table, Key=key(pk, sk), ConsistentRead=True)
    return from_item(resp["Item"]) if "Item" in resp else None


def test_replayed_batch_changes_nothing(world: World, ctx: LambdaContext) -> None:
    # Given a batch: identify with consent, add to cart, checkout, order
    batch = [
        at("identify_with_consent", T0),
        at("product_added", T0 + 60),
        at("checkout_started", T0 + 120),
        at("order_completed", T0 + 180),
    ]

    # When SQS delivers the same batch three times (at-least-once delivery, bus replays)
    results = [deliver(ctx, batch) for _ in range(3)]

    # Then every delivery succeeds, and the profile moved one version per event, not per delivery
    assert results == [{"batchItemFailures": []}] * 3
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None
    assert profile.version == 4
    assert (profile.orders.count, profile.orders.revenue) == (1, Decimal("101.5"))
    assert profile.email == "ada.lovelace@example.com"
    assert profile.consent["email"].message_id == "sample-identify-1"
    assert profile.can_email() == (True, "ok")
    # And the cart was converted by the order, once
    cart = world.profiles().load_cart(STORE, "cart-42")
    assert cart is not None
    assert (cart.status, cart.order_id, cart.version) == ("converted", "order-1001", 3)
    assert profile.open_cart_id is None
    # And each message left its exactly-once marker
    marker = item(world, keys.event_pk(STORE, "sample-order-completed-1"), keys.EVENT_SK)
    assert marker is not None and marker["customer_id"] == "u:user-42"


def test_same_order_under_a_new_message_id_counts_once(world: World, ctx: LambdaContext) -> None:
    # Given an order already counted
    deliver(ctx, [at("order_completed", T0)])

    # When the storefront resends the same order_id under a different messageId (e.g. page reload)
    resent = at("order_completed", T0 + 5, messageId="order-completed-resent")
    assert deliver(ctx, [resent]) == {"batchItemFailures": []}

    # Then revenue and count still reflect one order
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None
    assert (profile.orders.count, profile.orders.revenue) == (1, Decimal("101.5"))
    order = item(world, keys.order_pk(STORE, "order-1001"), keys.ORDER_SK)
    assert order is not None and order["message_ids"] == ["sample-order-completed-1"]


def test_anonymous_cart_then_identify_merges_the_visitor(world: World, ctx: LambdaContext) -> None:
    # Given an anonymous visitor who filled a cart
    anon_add = at("product_added", T0, userId=None, anonymousId="anon-9", messageId="anon-add")
    deliver(ctx, [anon_add])
    visitor = world.profiles().load_profile(STORE, "a:anon-9")
    assert visitor is not None and visitor.open_cart_id == "cart-42"

    # When they sign in (identify carries both ids)
    identify = at("identify_with_consent", T0 + 600, anonymousId="anon-9")
    assert deliver(ctx, [identify]) == {"batchItemFailures": []}

    # Then the anonymous id is linked to the customer...
    alias = item(world, keys.alias_pk(STORE, "anon", "anon-9"), keys.ALIAS_SK)
    assert alias is not None and alias["customer_id"] == "u:user-42"
    # ...the visitor's profile is folded into the customer's and marked as merged...
    customer = world.profiles().load_profile(STORE, "u:user-42")
    assert customer is not None
    assert customer.open_cart_id == "cart-42"
    assert "anon-9" in customer.anonymous_ids
    assert customer.first_seen_at == T0 and customer.email == "ada.lovelace@example.com"
    visitor = world.profiles().load_profile(STORE, "a:anon-9")
    assert visitor is not None and visitor.merged_into == "u:user-42"
    # ...and the cart did not move: it is still keyed by its cart_id, with its item
    cart = world.profiles().load_cart(STORE, "cart-42")
    assert cart is not None
    assert (cart.anonymous_id, [line.sku for line in cart.items]) == ("anon-9", ["RUN-42"])

    # And a later anonymous-only event from that browser lands on the customer
    later = at("product_added", T0 + 900, userId=None, anonymousId="anon-9", messageId="anon-add-2")
    deliver(ctx, [later])
    customer = world.profiles().load_profile(STORE, "u:user-42")
    assert customer is not None and customer.last_seen_at == T0 + 900
    assert world.profiles().load_cart(STORE, "cart-42").items[0].quantity == 2  # type: ignore[union-attr]


def test_poison_record_is_reported_while_the_others_succeed(world: World, ctx: LambdaContext) -> None:
    # Given a batch with one record whose detail is not a canonical event, and one that is not JSON
    good = [at("identify_with_consent", T0), at("product_added", T0 + 1)]
    poison = {**bus_envelope(good[1]), "detail": {"message_id": "broken", "store_id": STORE}}
    event = sqs_batch([bus_envelope(good[0]), poison, "not json at all", bus_envelope(good[1])])

    # When handled
    result = handler(event, ctx)

    # Then only the two bad records go back to the queue (and then the DLQ)
    records = event["Records"]
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": records[1]["messageId"]},
            {"itemIdentifier": records[2]["messageId"]},
        ]
    }
    # And the good ones were applied
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None and profile.version == 2
    assert world.profiles().load_cart(STORE, "cart-42") is not None


# --- loyalty: the tier event goes back out on the bus -------------------------------------------------


def order_of(
    total: float, received_at: float, order_id: str = "order-1001", **changes: Any
) -> CanonicalEvent:
    call = load_event("order_completed")
    call["properties"] = {**call["properties"], "order_id": order_id, "total": total}
    return at_call(call, received_at, **changes)


def at_call(call: dict[str, Any], received_at: float, **changes: Any) -> CanonicalEvent:
    [event] = canonical([{**call, **changes}], received_at)
    return event


def tier_events(world: World) -> list[dict[str, Any]]:
    return [
        e["detail"] for e in world.published("profile") if e["detail"].get("event") == "Loyalty Tier Reached"
    ]


def test_tier_reached_is_published_once_even_when_the_order_is_delivered_twice(
    world: World, ctx: LambdaContext
) -> None:
    # Given a first order of 650.00 (650 points: silver, up from the base tier)
    first = order_of(650.0, T0)

    # When SQS delivers it twice, and the storefront resends the order under a new messageId
    deliver(ctx, [first])
    deliver(ctx, [first])
    deliver(ctx, [order_of(650.0, T0 + 5, messageId="order-completed-resent")])

    # Then the bus got one Loyalty Tier Reached, for the customer, from Boomerang's own source
    [event] = tier_events(world)
    assert (event["user_id"], event["message_id"]) == ("user-42", "tier-u:user-42-silver-order-1001")
    assert event["properties"] == {
        "tier": "silver",
        "previous_tier": "bronze",
        "points": 650,
        "order_id": "order-1001",
    }
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None
    assert (profile.loyalty.points, profile.loyalty.tier, profile.loyalty.tier_reached_at) == (
        650,
        "silver",
        T0,
    )
    assert item(world, keys.order_pk(STORE, "order-1001"), keys.ORDER_SK)["points"] == 650  # type: ignore[index]

    # And when the published event comes back through the profile queue, it is only noted
    back = CanonicalEvent.model_validate(event)
    deliver(ctx, [back])
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None and profile.last_event_at["Loyalty Tier Reached"] == T0
    assert profile.loyalty.points == 650 and tier_events(world) == []


def test_the_tier_event_is_published_before_the_fold_commits(
    world: World, ctx: LambdaContext, monkeypatch: Any
) -> None:
    from functions.profile import handler as profile_module
    from shared.adapters.bus import PublishFailed

    # Given a bus that refuses the first publication
    real_publish = profile_module.publish
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise PublishFailed(1, 1, ["ThrottlingException"])
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(profile_module, "publish", flaky)
    event = order_of(2500.0, T0)

    # When the order is folded (next to another customer's event): its record fails, uncommitted
    other = at("product_added", T0, userId="someone-else", messageId="other-add")
    batch = sqs_batch([bus_envelope(event), bus_envelope(other)])
    result = handler(batch, ctx)
    assert result["batchItemFailures"] == [{"itemIdentifier": batch["Records"][0]["messageId"]}]
    assert world.profiles().load_profile(STORE, "u:user-42") is None
    assert item(world, keys.event_pk(STORE, event.message_id), keys.EVENT_SK) is None

    # Then SQS's retry folds it once and announces gold
    deliver(ctx, [event])
    [announced] = tier_events(world)
    assert announced["properties"]["tier"] == "gold" and announced["properties"]["previous_tier"] == "bronze"
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None and (profile.loyalty.points, profile.orders.count) == (2500, 1)


def test_refund_takes_points_back_and_can_lower_the_tier(world: World, ctx: LambdaContext) -> None:
    # Given silver after an order of 600.00 (600 points)
    deliver(ctx, [order_of(600.0, T0)])
    world.published("profile")

    # When 150.00 is refunded: floor(600 x 150 / 600) = 150 points back, 450 left
    refund = at_call(
        {"type": "track", "event": "Order Refunded", "userId": "user-42", "messageId": "refund-1"},
        T0 + 60,
        properties={"order_id": "order-1001", "total": 150.0},
    )
    deliver(ctx, [refund])

    # Then the customer is bronze again, and no tier event is published for a drop
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None
    assert (profile.loyalty.points, profile.loyalty.tier, profile.loyalty.tier_reached_at) == (
        450,
        "bronze",
        T0 + 60,
    )
    order = item(world, keys.order_pk(STORE, "order-1001"), keys.ORDER_SK)
    assert order is not None and (order["points"], order["points_reversed"]) == (600, 150)
    assert tier_events(world) == []

    # And cancelling the order takes back the rest
    cancel = at_call(
        {"type": "track", "event": "Order Cancelled", "userId": "user-42", "messageId": "cancel-1"},
        T0 + 120,
        properties={"order_id": "order-1001"},
    )
    deliver(ctx, [cancel])
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None and (profile.loyalty.points, profile.at_risk_on) == (0, None)


def test_store_loyalty_policy_applies(world: World, ctx: LambdaContext) -> None:
    from shared.adapters.store_directory import StoreDirectory
    from shared.domain.stores import LoyaltyPolicy

    StoreDirectory(client("dynamodb"), world.table).put(
        world.store.model_copy(update={"loyalty": LoyaltyPolicy(enabled=False)}), world.api_key
    )
    deliver(ctx, [order_of(5000.0, T0)])
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None and (profile.loyalty.points, profile.loyalty.tier) == (0, None)
    assert tier_events(world) == []


# --- browsing -------------------------------------------------------------------------------------------


def test_viewed_products_and_last_event_times_are_kept(world: World, ctx: LambdaContext) -> None:
    def viewed(sku: str, received_at: float, **props: Any) -> CanonicalEvent:
        call = {
            "type": "track",
            "event": "Product Viewed",
            "userId": "user-42",
            "messageId": f"v-{sku}-{received_at}",
        }
        return at_call(call, received_at, properties={"sku": sku, **props})

    # Given views of A, B, then A again with a new price, and an older view of C processed late
    deliver(ctx, [viewed("A", T0, price=10.0), viewed("B", T0 + 10)])
    deliver(ctx, [viewed("A", T0 + 20, price=12.0, name="Lamp A")])
    deliver(ctx, [viewed("C", T0 - 100)])

    # Then the newest three are in order, with the newest details
    profile = world.profiles().load_profile(STORE, "u:user-42")
    assert profile is not None
    assert [(v.sku, v.at) for v in profile.viewed] == [("A", T0 + 20), ("B", T0 + 10), ("C", T0 - 100)]
    assert (profile.viewed[0].price, profile.viewed[0].name) == (Decimal("12"), "Lamp A")
    assert profile.last_event_at == {"Product Viewed": T0 + 20}
