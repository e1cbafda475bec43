"""The profile λ on moto DynamoDB: SQS batches of bus events folded into profiles exactly once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from functions.profile.handler import handler
from shared import keys
from shared.aws import client, from_item, key
from shared.events import CanonicalEvent
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
