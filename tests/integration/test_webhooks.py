"""Shopify and WooCommerce webhooks through the real ingest λ, the profile fold and the journey trigger.

Signed with the store's secret, a webhook becomes canonical events on the bus; a forged one is
401 and stores nothing; a replayed one (same delivery id) publishes the same messageIds again,
which the fold treats as duplicates: nothing changes.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from functions.ingest.handler import handler
from functions.journey_trigger.handler import handler as trigger_handler
from functions.profile.handler import handler as profile_handler
from shared.adapters.store_directory import StoreDirectory
from shared.domain.journey_decisions import execution_name
from shared.domain.webhooks import signature
from shared.platform.aws import client
from tests.aws_fixtures import LambdaContext, World, api_request, bus_envelope, canonical, sqs_batch
from tests.events import load_event

SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"
WOO_SECRET = "woo-secret-7f3a"
CHECKOUT_TOKEN = "0123456789abcdef0456456789abcdef"


@pytest.fixture
def secrets(world: World) -> StoreDirectory:
    directory = StoreDirectory(client("dynamodb"), world.table)
    directory.set_webhook_secret("shop-1", "shopify", SHOPIFY_SECRET)
    directory.set_webhook_secret("shop-1", "woocommerce", WOO_SECRET)
    return directory


def shopify(
    ctx: LambdaContext,
    topic: str,
    sample: str | bytes,
    webhook_id: str,
    secret: str = SHOPIFY_SECRET,
    store: str = "shop-1",
    hmac_header: str | None = None,
) -> tuple[int, dict[str, Any]]:
    body = sample if isinstance(sample, bytes) else json.dumps(load_event(f"shopify/{sample}")).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature(secret, body) if hmac_header is None else hmac_header,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "johns-apparel.myshopify.com",
        "X-Shopify-API-Version": "2025-10",
    }
    result = handler(api_request("POST", f"/v1/webhooks/shopify/{store}", body, headers), ctx)
    return result["statusCode"], json.loads(result["body"])


def woo(ctx: LambdaContext, topic: str, sample: str, delivery: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps(load_event(f"woocommerce/{sample}")).encode()
    headers = {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Signature": signature(WOO_SECRET, body),
        "X-WC-Webhook-Delivery-ID": delivery,
        "X-WC-Webhook-Source": "https://example.com/",
    }
    result = handler(api_request("POST", "/v1/webhooks/woocommerce/shop-1", body, headers), ctx)
    return result["statusCode"], json.loads(result["body"])


def fold_and_trigger(world: World, ctx: LambdaContext) -> list[dict[str, Any]]:
    """What the profile and journey queues' λs do with what was published; returns the bus events."""
    published = world.published("profile")
    assert profile_handler(sqs_batch(published), ctx) == {"batchItemFailures": []}
    journey = world.published("journey")
    if journey:
        assert trigger_handler(sqs_batch(journey), ctx) == {"batchItemFailures": []}
    return published


def journeys_started(world: World) -> set[str]:
    return {e["name"] for e in world.executions()}


def test_shopify_checkout_starts_the_checkout_journey_with_the_recovery_link(
    world: World, ctx: LambdaContext, secrets: StoreDirectory
) -> None:
    # When Shopify sends a signed checkouts/create
    status, body = shopify(
        ctx, "checkouts/create", "checkouts_create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    )

    # Then it is answered at once with what was taken
    assert (status, body) == (200, {"success": True, "topic": "checkouts/create", "accepted": 2})
    published = fold_and_trigger(world, ctx)
    assert [e["detail"]["message_id"] for e in published] == [
        "shopify:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043:0",
        "shopify:b54557e4-bdd9-4b37-8a5f-bf7d70bcd043:1",
    ]
    # And the checkout journey runs for the checkout token's cart, with consent from the checkout
    assert journeys_started(world) == {execution_name("shop-1", "checkout-abandonment", CHECKOUT_TOKEN)}
    profile = world.profiles().load_profile("shop-1", "u:207119551")
    assert profile is not None and profile.email == "bob.norman@mail.example.com"
    assert profile.consent["email"].status == "subscribed"
    assert profile.consent["email"].source == "shopify:checkout"
    cart = client("dynamodb").get_item(
        TableName=world.table, Key={"pk": {"S": f"STORE#shop-1#CART#{CHECKOUT_TOKEN}"}, "sk": {"S": "CART"}}
    )["Item"]
    assert cart["recovery_url"]["S"].startswith("https://checkout.local/548380009/checkouts/")


def test_forged_webhook_is_401_and_changes_nothing(
    world: World, ctx: LambdaContext, secrets: StoreDirectory
) -> None:
    body = json.dumps(load_event("shopify/checkouts_create")).encode()
    cases = {
        "wrong secret": shopify(ctx, "checkouts/create", body, "w-1", secret="guessed"),
        "no signature": shopify(ctx, "checkouts/create", body, "w-2", hmac_header=""),
        "signature of another body": shopify(
            ctx,
            "checkouts/create",
            body.replace(b"248.00", b"0.01"),
            "w-3",
            hmac_header=signature(SHOPIFY_SECRET, body),
        ),
        "another store's secret": shopify(ctx, "checkouts/create", body, "w-4", store="shop-2"),
    }
    for name, (status, answer) in cases.items():
        assert status == 401, name
        assert answer["success"] is False, name
    assert cases["wrong secret"][1]["error"] == "invalid_signature"
    assert "boomerang stores set shop-2 --shopify-secret" in cases["another store's secret"][1]["message"]
    assert world.published("profile") == [] and world.published("journey") == []


def test_replayed_webhook_changes_nothing(world: World, ctx: LambdaContext, secrets: StoreDirectory) -> None:
    # Given an order folded once
    assert shopify(ctx, "orders/create", "orders_create", "order-delivery-1")[0] == 200
    fold_and_trigger(world, ctx)
    before = client("dynamodb").scan(TableName=world.table)["Items"]
    started = journeys_started(world)
    assert execution_name("shop-1", "post-purchase", "450789469") in started

    # When Shopify delivers the very same webhook again (its retry after a timeout)
    assert shopify(ctx, "orders/create", "orders_create", "order-delivery-1")[0] == 200
    replayed = fold_and_trigger(world, ctx)

    # Then the same messageIds were folded as duplicates: the table and the executions are unchanged
    assert [e["detail"]["message_id"] for e in replayed] == [
        "shopify:order-delivery-1:0",
        "shopify:order-delivery-1:1",
    ]
    after = client("dynamodb").scan(TableName=world.table)["Items"]
    key = lambda i: (i["pk"]["S"], i["sk"]["S"])  # noqa: E731
    assert sorted(before, key=key) == sorted(after, key=key)
    assert journeys_started(world) == started


def test_order_then_refund_and_cancel_reach_the_customers_profile(
    world: World, ctx: LambdaContext, secrets: StoreDirectory
) -> None:
    shopify(ctx, "orders/paid", "orders_create", "d-paid")
    fold_and_trigger(world, ctx)
    # the refund's payload names only the order: the order's alias leads it to the customer
    assert shopify(ctx, "refunds/create", "refunds_create", "d-refund") == (
        200,
        {"success": True, "topic": "refunds/create", "accepted": 1},
    )
    fold_and_trigger(world, ctx)
    profile = world.profiles().load_profile("shop-1", "u:207119551")
    assert profile is not None
    assert (profile.orders.count, profile.orders.refunded) == (1, Decimal("199.00"))
    shopify(ctx, "orders/cancelled", "orders_cancelled", "d-cancel")
    fold_and_trigger(world, ctx)
    profile = world.profiles().load_profile("shop-1", "u:207119551")
    assert profile is not None and (profile.orders.count, profile.orders.cancelled_count) == (0, 1)


def test_new_customer_gets_consent_per_channel_and_the_welcome_journey(
    world: World, ctx: LambdaContext, secrets: StoreDirectory
) -> None:
    assert shopify(ctx, "customers/create", "customers_create", "d-cust")[1]["accepted"] == 4
    fold_and_trigger(world, ctx)
    profile = world.profiles().load_profile("shop-1", "u:706405506")
    assert profile is not None
    assert {c: (v.status, v.source) for c, v in profile.consent.items()} == {
        "email": ("subscribed", "shopify:email_marketing_consent:shopify"),
        "sms": ("subscribed", "shopify:sms_marketing_consent:shopify"),
    }
    # the proof keeps Shopify's own time of the choice
    assert profile.consent["email"].at == datetime.fromisoformat("2026-11-25T12:00:00-05:00").timestamp()
    assert any(n.startswith("shop-1-welcome-") for n in journeys_started(world))
    # And a later customers/update carrying an unsubscribe withdraws email consent only
    shopify(ctx, "customers/update", "customers_update", "d-cust-2")
    fold_and_trigger(world, ctx)
    profile = world.profiles().load_profile("shop-1", "u:706405506")
    assert profile is not None
    assert (profile.consent["email"].status, profile.consent["sms"].status) == ("unsubscribed", "subscribed")


def test_product_update_moves_back_in_stock_subscribers(
    world: World, ctx: LambdaContext, secrets: StoreDirectory
) -> None:
    status, body = shopify(ctx, "products/update", "products_update", "d-prod")
    assert (status, body["accepted"]) == (200, 3)
    events = fold_and_trigger(world, ctx)
    assert [e["detail"]["event"] for e in events] == ["Back In Stock", "Price Dropped", "Product Updated"]


def test_inventory_level_reaches_the_skus_subscribers_through_the_products_inventory_items(
    world: World, ctx: LambdaContext, secrets: StoreDirectory
) -> None:
    # A customer waits for the red iPod (out of stock: its variant's inventory item is 457924702)
    [wait] = canonical(
        [
            {
                "type": "track",
                "event": "Back In Stock Subscribed",
                "userId": "cust-9",
                "messageId": "bis-cust-9",
                "properties": {"sku": "IPOD2008RED", "name": "IPod Nano - Red"},
            }
        ]
    )
    assert profile_handler(sqs_batch([bus_envelope(wait)]), ctx) == {"batchItemFailures": []}
    # inventory before any products/update: the item is unknown, nothing is started, nothing fails
    shopify(ctx, "inventory_levels/update", "inventory_levels_update", "d-inv-0")
    fold_and_trigger(world, ctx)
    assert world.published("journey") == [] and not journeys_started(world)
    # products/update teaches item -> sku (the pink variant in stock notifies nobody: no subscriber)
    shopify(ctx, "products/update", "products_update", "d-prod")
    fold_and_trigger(world, ctx)
    assert world.profiles().inventory_item_sku("shop-1", "457924702") == "IPOD2008RED"
    # the red one's stock comes back: Shopify names only the inventory item
    status, body = shopify(ctx, "inventory_levels/update", "inventory_levels_update", "d-inv-1")
    assert (status, body["accepted"]) == (200, 1)
    fold_and_trigger(world, ctx)
    wanted = execution_name("shop-1", "back-in-stock", "u:cust-9|IPOD2008RED")
    assert wanted in journeys_started(world)
    # the resolved Back In Stock the fold announced is itself store-level: folded into nobody
    resolved = world.published("profile")
    assert [e["detail"]["properties"].get("sku") for e in resolved] == ["IPOD2008RED"]
    assert profile_handler(sqs_batch(resolved), ctx) == {"batchItemFailures": []}
    # Shopify delivering the same webhook again starts nothing new
    shopify(ctx, "inventory_levels/update", "inventory_levels_update", "d-inv-1")
    fold_and_trigger(world, ctx)
    assert len(journeys_started(world)) == 1


def test_unknown_topic_is_200_archived_and_counted(
    world: World, ctx: LambdaContext, secrets: StoreDirectory, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body = shopify(ctx, "shop/update", "shop_update", "d-shop")
    assert status == 200
    assert body["archived"] is True and body["accepted"] == 0 and "not one Boomerang reads" in body["reason"]
    assert world.published("profile") == []  # routed nowhere; the bus archive keeps it
    assert '"WebhookTopicsUnknown"' in capsys.readouterr().out  # the EMF metric


def test_missing_topic_or_delivery_id_is_400(
    world: World, ctx: LambdaContext, secrets: StoreDirectory
) -> None:
    body = json.dumps(load_event("shopify/orders_create")).encode()
    headers = {"X-Shopify-Hmac-Sha256": signature(SHOPIFY_SECRET, body), "X-Shopify-Topic": "orders/create"}
    result = handler(api_request("POST", "/v1/webhooks/shopify/shop-1", body, headers), ctx)
    assert result["statusCode"] == 400
    assert "x-shopify-webhook-id" in json.loads(result["body"])["message"]


@pytest.mark.parametrize(
    ("topic", "sample", "event", "journey", "instance"),
    [
        (
            "order.created",
            "order_created",
            "Checkout Started",
            "checkout-abandonment",
            "woocommerce-order-727",
        ),
        ("order.updated", "order_updated_paid", "Order Completed", "post-purchase", "727"),
        ("customer.created", "customer_created", "Signed Up", "welcome", None),
        ("product.updated", "product_updated", "Price Dropped", None, None),
    ],
)
def test_woocommerce_topics(
    world: World,
    ctx: LambdaContext,
    secrets: StoreDirectory,
    topic: str,
    sample: str,
    event: str,
    journey: str | None,
    instance: str | None,
) -> None:
    status, body = woo(ctx, topic, sample, f"delivery-{sample}")
    assert status == 200 and body["accepted"] >= 1
    events = fold_and_trigger(world, ctx)
    assert events[-1]["detail"]["event"] == event
    started = journeys_started(world)
    if journey and instance:
        assert execution_name("shop-1", journey, instance) in started
    elif journey:
        assert any(n.startswith(f"shop-1-{journey}-") for n in started)


def test_woocommerce_ping_is_200(world: World, ctx: LambdaContext, secrets: StoreDirectory) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    result = handler(api_request("POST", "/v1/webhooks/woocommerce/shop-1", b"webhook_id=12", headers), ctx)
    assert result["statusCode"] == 200
    assert world.published("profile") == []
