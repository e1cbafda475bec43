"""Hostile and broken bodies on the event API (issue 16, item 1): every one a 400 that names the
call and the field, a batch all or nothing, and whatever gets 200 folds in the profile λ."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from functions.ingest.handler import handler
from functions.profile.handler import handler as profile_handler
from shared.domain import limits
from shared.platform import keys
from shared.platform.aws import client, from_item, key
from tests.aws_fixtures import (
    API_KEY,
    LambdaContext,
    World,
    api_request,
    basic_auth,
    sqs_batch,
    world_for_module,
)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # one world: every test here uses its own customers and drains what it published
    with world_for_module() as created:
        yield created


def post(
    ctx: LambdaContext, raw: bytes, path: str = "/v1/batch", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    result = handler(api_request("POST", path, raw, basic_auth(API_KEY) if headers is None else headers), ctx)
    return result["statusCode"], json.loads(result["body"])


def identify(n: int, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": f"hb-{n}", "messageId": f"hb-m-{n}", "traits": traits}


def batch_with(bad_call_json: str) -> bytes:
    """Two valid calls, then the hostile one spliced in as raw JSON text."""
    good = ",".join(json.dumps(identify(n, email=f"hb{n}@example.com")) for n in range(2))
    return ('{"batch": [' + good + "," + bad_call_json + "]}").encode()


def fold_published(world: World, ctx: LambdaContext) -> dict[str, Any]:
    """Run whatever ingest published through the profile λ, as the profile queue would."""
    published = world.published("profile")
    return profile_handler(sqs_batch(published), ctx) if published else {"batchItemFailures": []}


def profile_item(world: World, user: str) -> dict[str, Any] | None:
    pk = keys.customer_pk("shop-1", keys.user_customer_id(user))
    resp = client("dynamodb").get_item(
        TableName=world.table, Key=key(pk, keys.PROFILE_SK), ConsistentRead=True
    )
    return from_item(resp["Item"]) if "Item" in resp else None


HOSTILE = {
    "lone-surrogate-in-properties": (
        '{"type": "track", "userId": "hb-9", "event": "Thing", "properties": {"x": "\\ud800"}}',
        "properties.x",
        "surrogate",
    ),
    "lone-surrogate-in-a-key": (
        '{"type": "track", "userId": "hb-9", "event": "Thing", "properties": {"\\udfff": 1}}',
        "properties",
        "surrogate",
    ),
    "deep-nesting": (
        '{"type": "track", "userId": "hb-9", "event": "Thing", "properties": {"x": '
        + "[" * 300
        + "]" * 300
        + "}}",
        "properties.x",
        "nest",
    ),
    "giant-integer": (
        '{"type": "track", "userId": "hb-9", "event": "Thing", "properties": {"n": ' + "9" * 5000 + "}}",
        "properties.n",
        "digits",
    ),
    "39-digit-integer": (
        '{"type": "identify", "userId": "hb-9", "traits": {"n": ' + "1" * 39 + "}}",
        "traits.n",
        "digits",
    ),
    "float-beyond-dynamodb": (
        '{"type": "identify", "userId": "hb-9", "traits": {"n": 1e200}}',
        "traits.n",
        "range",
    ),
    "nan": ('{"type": "identify", "userId": "hb-9", "traits": {"n": NaN}}', "traits.n", "number"),
    "order-total-1e38": (
        '{"type": "track", "userId": "hb-9", "event": "Order Completed", '
        '"properties": {"order_id": "o-1", "total": 1e38}}',
        "properties.total",
        "less than or equal",
    ),
    "trait-too-large": (
        json.dumps(identify(9, bio="x" * 30_000)),
        "traits.bio",
        "bytes",
    ),
    "too-many-traits": (
        json.dumps(identify(9, **{f"t{i}": i for i in range(limits.MAX_TRAITS_PER_CALL + 1)})),
        "traits",
        "traits",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_a_hostile_call_is_a_400_naming_it_and_its_valid_neighbours_are_not_stored(
    world: World, ctx: LambdaContext, case: str
) -> None:
    bad, field, words = HOSTILE[case]

    # When a batch of two valid calls and one hostile call is posted
    status, body = post(ctx, batch_with(bad))

    # Then the answer is a 400 naming the third call, its field and what is allowed
    assert status == 400, body
    [error] = body["errors"]
    assert error["index"] == 2
    assert error["field"] == field
    assert words in error["message"].lower()
    # And nothing was published: the two valid customers have no profile
    assert world.published("profile") == []
    assert profile_item(world, "hb-0") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,  # past the JSON parser's own recursion limit
        b'{"batch": ' + b"1" * 5000 + b"}",
    ],
    ids=["parser-recursion", "giant-integer-outside-calls"],
)
def test_bodies_the_parser_chokes_on_are_400s(world: World, ctx: LambdaContext, raw: bytes) -> None:
    status, body = post(ctx, raw)

    assert status == 400, body
    assert body["success"] is False


def test_a_write_key_in_the_body_with_a_lone_surrogate_is_a_400(world: World, ctx: LambdaContext) -> None:
    raw = b'{"writeKey": "bk_\\ud800", "batch": [' + json.dumps(identify(7)).encode() + b"]}"

    status, body = post(ctx, raw, headers={})

    assert status == 400, body
    assert body["errors"][0]["field"] == "writeKey"
    assert world.published("profile") == []


def test_a_flood_of_distinct_wrong_write_keys_keeps_the_key_cache_bounded(
    world: World, ctx: LambdaContext
) -> None:
    from shared.adapters.store_directory import MISS_ENTRIES
    from shared.services import wiring

    directory = wiring.ingest_directory()
    valid = json.dumps({"batch": [identify(8)]}).encode()
    assert post(ctx, valid)[0] == 200  # the store's real key is cached
    world.published("profile")

    # When a client tries three times as many distinct wrong keys as the miss cache holds
    for n in range(3 * MISS_ENTRIES):
        status, _ = post(ctx, valid, headers=basic_auth(f"bk_wrong_{n}"))
        assert status == 401

    # Then the cache holds at most its stated sizes, and the real key was never evicted by the flood
    assert len(directory._misses) == MISS_ENTRIES
    assert len(directory._cache) <= 2
    reads: list[str] = []

    def count(**_: Any) -> None:
        reads.append("GetItem")

    client("dynamodb").meta.events.register("before-call.dynamodb.GetItem", count)
    try:
        assert post(ctx, valid)[0] == 200
    finally:
        client("dynamodb").meta.events.unregister("before-call.dynamodb.GetItem", count)
    assert reads == []  # answered from the cache


def test_the_single_call_routes_refuse_the_same_way(world: World, ctx: LambdaContext) -> None:
    raw = b'{"userId": "hb-1", "event": "Thing", "properties": {"a": {"b": "\\udc00"}}}'

    status, body = post(ctx, raw, "/v1/track")

    assert status == 400
    assert body["errors"][0] == {
        "index": 0,
        "field": "properties.a.b",
        "message": body["errors"][0]["message"],
    }
    assert "surrogate" in body["errors"][0]["message"]


def test_an_order_at_the_money_limits_is_accepted_and_counted(world: World, ctx: LambdaContext) -> None:
    # Given an order at the largest total allowed, with the largest price and quantity
    order = {
        "type": "track",
        "userId": "hb-rich",
        "messageId": "hb-order",
        "event": "Order Completed",
        "properties": {
            "order_id": "o-big",
            "total": float(limits.MAX_ORDER_TOTAL),
            "products": [{"sku": "S", "price": float(limits.MAX_PRICE), "quantity": limits.MAX_QUANTITY}],
        },
    }

    # When it is posted and folded
    status, body = post(ctx, json.dumps({"batch": [order]}).encode())
    assert status == 200, body
    result = fold_published(world, ctx)

    # Then the profile λ counts it (no dead letter)
    assert result == {"batchItemFailures": []}
    item = profile_item(world, "hb-rich")
    assert item is not None
    assert Decimal(str(item["orders"]["revenue"])) == limits.MAX_ORDER_TOTAL


def test_accepted_numbers_at_the_edges_fold_without_a_dead_letter(world: World, ctx: LambdaContext) -> None:
    traits = {
        "big": int("9" * 38),
        "small": -int("9" * 38),
        "tiny": 1e-130,
        "huge": 9.99e125,
        "deep": json.loads("[" * (limits.MAX_DEPTH - 2) + "1" + "]" * (limits.MAX_DEPTH - 2)),
        "text": "emoji \U0001f600 ok",
    }
    status, body = post(ctx, json.dumps({"batch": [identify(1, **traits)]}).encode())
    assert status == 200, body

    assert fold_published(world, ctx) == {"batchItemFailures": []}
    item = profile_item(world, "hb-1")
    assert item is not None
    assert item["traits"]["big"] == pytest.approx(1e38)  # the codec reads past 2**53 as a float
    assert item["traits"]["text"] == "emoji \U0001f600 ok"


def test_traits_never_grow_a_profile_past_its_budget(world: World, ctx: LambdaContext) -> None:
    # Given a customer with an email and consent
    first = identify(5, email="grow@example.com", consent={"email": "subscribed"})
    assert post(ctx, json.dumps({"batch": [first]}).encode())[0] == 200
    # When 14 identify calls each add the largest trait a call may carry, under a new name
    big = "x" * (limits.MAX_TRAIT_BYTES - 16)
    for n in range(14):
        call = {**identify(5, **{f"note_{n}": big}), "messageId": f"grow-{n}"}
        status, body = post(ctx, json.dumps({"batch": [call]}).encode())
        assert status == 200, body

    # Then every event folds (none dead-lettered) ...
    assert fold_published(world, ctx) == {"batchItemFailures": []}
    # ... the stored traits stay within the per-profile budget, and the rest of the profile is intact
    item = profile_item(world, "hb-5")
    assert item is not None
    assert len(json.dumps(item["traits"], separators=(",", ":")).encode()) <= limits.MAX_PROFILE_TRAITS_BYTES
    assert "note_0" in item["traits"]
    assert "note_13" not in item["traits"]
    assert item["email"] == "grow@example.com"
    assert item["consent"]["email"]["status"] == "subscribed"
    # And a later event of that customer still folds
    order = {
        "type": "track",
        "userId": "hb-5",
        "messageId": "grow-order",
        "event": "Order Completed",
        "properties": {"order_id": "o-grow", "total": 10},
    }
    assert post(ctx, json.dumps({"batch": [order]}).encode())[0] == 200
    assert fold_published(world, ctx) == {"batchItemFailures": []}
    item = profile_item(world, "hb-5")
    assert item is not None and item["orders"]["count"] == 1


WEBHOOK_SECRET = "shpss_hostile_0123456789"


@pytest.mark.parametrize(
    ("topic", "sample", "splice", "field"),
    [
        ("customers/create", "customers_create", ('"first_name": "', '"first_name": "\\ud800'), "first_name"),
        ("orders/create", "orders_create", ('"id": ', '"note_big": ' + "7" * 5000 + ', "id": '), "note_big"),
        (
            "orders/create",
            "orders_create",
            ('"id": ', '"deep": ' + "[" * 400 + "]" * 400 + ', "id": '),
            "deep",
        ),
    ],
    ids=["surrogate", "giant-integer", "deep-nesting"],
)
def test_a_signed_webhook_with_hostile_values_is_a_400_and_stores_nothing(
    world: World, ctx: LambdaContext, topic: str, sample: str, splice: tuple[str, str], field: str
) -> None:
    from shared.adapters.store_directory import StoreDirectory
    from shared.domain.webhooks import signature
    from tests.events import load_event

    StoreDirectory(client("dynamodb"), world.table).set_webhook_secret("shop-1", "shopify", WEBHOOK_SECRET)
    text = json.dumps(load_event(f"shopify/{sample}"))
    assert splice[0] in text
    body = text.replace(splice[0], splice[1], 1).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature(WEBHOOK_SECRET, body),
        "X-Shopify-Webhook-Id": f"hostile-{field}",
    }

    result = handler(api_request("POST", "/v1/webhooks/shopify/shop-1", body, headers), ctx)

    assert result["statusCode"] == 400, result["body"]
    assert field in json.loads(result["body"])["message"]
    assert world.published("profile") == []
