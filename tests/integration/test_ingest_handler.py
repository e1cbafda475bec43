"""The ingest λ behind API Gateway: authenticate, validate all-or-nothing, publish to the bus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.ingest.handler import handler
from functions.profile.handler import handler as profile_handler
from shared.adapters import bus
from shared.domain.api_calls import MAX_BODY_BYTES
from shared.platform.aws import client
from tests.aws_fixtures import API_KEY, LambdaContext, World, api_request, basic_auth, sqs_batch
from tests.events import load_event


def call(
    ctx: LambdaContext, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    result = handler(
        api_request("POST", path, body, basic_auth(API_KEY) if headers is None else headers), ctx
    )
    headers_out = {k.lower(): v for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers_out.update({k.lower(): [v] for k, v in (result.get("headers") or {}).items()})
    return result["statusCode"], json.loads(result["body"]), headers_out


def test_batch_is_accepted_and_published_as_canonical_events(world: World, ctx: LambdaContext) -> None:
    # Given the sample batch: identify, two adds (one spelled product_added) and a product view
    sample = load_event("batch_cart_abandon")

    # When the storefront posts it with its write key as the Basic user name
    status, body, _ = call(ctx, "/v1/batch", sample)

    # Then all four are accepted and every one reaches the profile queue as a canonical event
    assert (status, body) == (200, {"success": True, "accepted": 4})
    published = world.published("profile")
    assert [e["detail"]["message_id"] for e in published] == [c["messageId"] for c in sample["batch"]]
    assert {e["source"] for e in published} == {"boomerang.ingest"}
    assert [e["detail-type"] for e in published] == ["identify", "track", "track", "track"]
    details = [e["detail"] for e in published]
    assert details[1]["event"] == "Product Added"
    assert all(d["store_id"] == "shop-1" and d["received_at"] > 0 for d in details)
    assert details[0]["traits"]["email"] == "bo@example.com"
    assert details[2]["properties"] == {
        "cart_id": "cart-7",
        "sku": "KETTLE-3",
        "name": "Camp kettle & stand",
        "price": 34.9,
        "currency": "EUR",
    }  # no quantity sent, none invented: the fold reads an absent quantity as one added
    # And every track call (any may start a journey) and the identify that gives email consent (it
    # may need a double opt-in confirmation) go to the journey queue
    journey = world.published("journey")
    assert sorted(e["detail"]["message_id"] for e in journey) == [
        "sample-batch-add-1",
        "sample-batch-add-2",
        "sample-batch-identify",
        "sample-batch-viewed",
    ]


@pytest.mark.parametrize(
    "headers",
    [
        basic_auth(API_KEY),
        {"x-api-key": API_KEY},
        {"Authorization": "Basic " + "YmtfaW50ZWdyYXRpb25fdGVzdF9rZXk="},
    ],
    ids=["basic-with-colon", "x-api-key", "basic-without-colon"],
)
def test_single_track_call_with_either_credential(
    world: World, ctx: LambdaContext, headers: dict[str, str]
) -> None:
    status, body, _ = call(ctx, "/v1/track", load_event("product_added"), headers)

    assert (status, body) == (200, {"success": True, "accepted": 1})
    [event] = world.published("journey")
    assert event["detail"]["message_id"] == "sample-product-added-1"


def test_identify_route(world: World, ctx: LambdaContext) -> None:
    status, _, _ = call(ctx, "/v1/identify", load_event("identify_with_consent"))
    assert status == 200
    [event] = world.published("profile")
    assert event["detail"]["traits"]["consent"] == {"email": "subscribed"}
    # email consent also reaches the journey queue (double opt-in); an identify without it does not
    [consent] = world.published("journey")
    assert consent["detail"]["message_id"] == event["detail"]["message_id"]
    plain = {**load_event("identify_with_consent"), "messageId": "identify-no-consent"}
    plain["traits"] = {"first_name": "Ada"}
    assert call(ctx, "/v1/identify", plain)[0] == 200
    assert world.published("journey") == []  # (published() drains what it reads)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_auth("bk_wrong_key"),
        {"x-api-key": "bk_wrong_key"},
        {"Authorization": "Basic %%%garbage"},
        {"Authorization": f"Bearer {API_KEY}"},
    ],
    ids=["none", "wrong-basic", "wrong-x-api-key", "garbage", "bearer"],
)
def test_missing_or_wrong_key_is_401_and_nothing_is_published(
    world: World, ctx: LambdaContext, headers: dict[str, str]
) -> None:
    status, body, headers_out = call(ctx, "/v1/batch", load_event("batch_cart_abandon"), headers)

    assert status == 401
    assert (body["success"], body["error"]) == (False, "unauthorized")
    assert headers_out["www-authenticate"] == ['Basic realm="boomerang"']
    assert world.published("profile") == []


def test_invalid_batch_is_400_with_every_error_and_nothing_is_published(
    world: World, ctx: LambdaContext
) -> None:
    # Given a batch whose second and fourth calls are invalid
    sample = load_event("batch_cart_abandon")
    sample["batch"][1]["properties"]["quantity"] = -1
    sample["batch"][3].pop("userId")

    # When posted
    status, body, _ = call(ctx, "/v1/batch", sample)

    # Then the answer lists each problem with its index and field, and not even the valid calls went out
    assert status == 400
    assert body["error"] == "validation_failed"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "properties.quantity"), (3, "(call)")]
    assert world.published("profile") == [] and world.published("journey") == []


def test_malformed_json_is_400(world: World, ctx: LambdaContext) -> None:
    status, body, _ = call(ctx, "/v1/batch", b'{"batch": [')
    assert (status, body["error"]) == (400, "malformed_json")
    assert world.published("profile") == []


def test_too_many_calls_is_413(world: World, ctx: LambdaContext) -> None:
    status, body, _ = call(ctx, "/v1/batch", {"batch": [load_event("product_added")] * 101})
    assert (status, body["error"]) == (413, "batch_too_large")
    assert world.published("profile") == []


def test_body_over_500_kb_is_413(world: World, ctx: LambdaContext) -> None:
    status, body, _ = call(ctx, "/v1/batch", b" " * (MAX_BODY_BYTES + 1))
    assert (status, body["error"]) == (413, "payload_too_large")


def test_unknown_route_is_404(world: World, ctx: LambdaContext) -> None:
    status, body, _ = call(ctx, "/v1/page", {"type": "page", "userId": "u1"})
    assert (status, body["error"]) == (404, "not_found")


# --- the bus refuses -------------------------------------------------------------------------------


def failing_put_events(monkeypatch: pytest.MonkeyPatch, healthy_chunks: int = 0) -> list[int]:
    """Make EventBridge refuse every entry, after letting `healthy_chunks` PutEvents calls through."""
    events_client = client("events")
    real = events_client.put_events
    sizes: list[int] = []

    def put_events(Entries: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:  # noqa: N803
        sizes.append(len(Entries))
        if len(sizes) <= healthy_chunks:
            return real(Entries=Entries, **kw)
        return {
            "FailedEntryCount": len(Entries),
            "Entries": [
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"} for _ in Entries
            ],
        }

    monkeypatch.setattr(events_client, "put_events", put_events)
    monkeypatch.setattr(bus.time, "sleep", lambda _s: None)
    return sizes


def test_bus_failure_is_503_and_nothing_is_reported_as_accepted(
    world: World, ctx: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EventBridge refuses every entry
    sizes = failing_put_events(monkeypatch)

    # When a batch is posted
    status, body, _ = call(ctx, "/v1/batch", load_event("batch_cart_abandon"))

    # Then the client is told to retry, after the entries were retried a few times
    assert status == 503
    assert body == {
        "success": False,
        "error": "unavailable",
        "message": "events could not be stored right now; retry the same request",
    }
    assert sizes == [4, 4, 4, 4]
    assert world.published("profile") == []


def test_partial_publish_is_503_and_the_retry_is_counted_once(
    world: World, ctx: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 25 orders, and a bus that takes the first chunk of 10 and then refuses
    calls = [
        {
            **load_event("order_completed"),
            "messageId": f"order-msg-{i}",
            "properties": {"order_id": f"o-{i}", "total": 10},
        }
        for i in range(25)
    ]
    failing_put_events(monkeypatch, healthy_chunks=1)

    # When posted, the answer is 503, never a 200 that would make the storefront drop the rest
    status, body, _ = call(ctx, "/v1/batch", {"batch": calls})
    assert status == 503 and "accepted" not in body
    first_try = world.published("profile")
    assert len(first_try) == 10

    # When the storefront retries the same request once the bus is healthy again
    monkeypatch.undo()
    status, body, _ = call(ctx, "/v1/batch", {"batch": calls})
    assert (status, body) == (200, {"success": True, "accepted": 25})
    retried = world.published("profile")
    assert len(retried) == 25

    # Then, after the profile λ consumed both deliveries, each order counts exactly once
    for chunk in (first_try, retried[:10], retried[10:20], retried[20:]):
        assert profile_handler(sqs_batch(chunk), ctx) == {"batchItemFailures": []}
    profile = world.profiles().load_profile("shop-1", "u:user-42")
    assert profile is not None
    assert (profile.orders.count, profile.orders.revenue) == (25, 250)


def test_store_sent_loyalty_tier_and_bad_birthday_are_400_with_the_field_named(
    world: World, ctx: LambdaContext
) -> None:
    # Given a batch that fakes Boomerang's own tier event and carries an impossible birthday
    batch = {
        "batch": [
            {
                "type": "track",
                "event": "Loyalty Tier Reached",
                "userId": "u-1",
                "properties": {"tier": "gold"},
            },
            {"type": "identify", "userId": "u-1", "traits": {"birthday": "1990-02-30"}},
            {"type": "track", "event": "Back In Stock Subscribed", "userId": "u-1", "properties": {}},
        ]
    }

    # When posted
    status, body, _ = call(ctx, "/v1/batch", batch)

    # Then each problem is named, and nothing went out
    assert (status, body["error"]) == (400, "validation_failed")
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (0, "event"),
        (1, "traits.birthday"),
        (2, "properties"),
    ]
    assert "sent by Boomerang itself" in body["errors"][0]["message"]
    assert world.published("profile") == []


def test_lifecycle_events_are_accepted(world: World, ctx: LambdaContext) -> None:
    batch = {
        "batch": [
            {"type": "identify", "userId": "u-1", "messageId": "b-1", "traits": {"birthday": "--04-23"}},
            {"type": "track", "event": "signed_up", "userId": "u-1", "messageId": "b-2"},
            {
                "type": "track",
                "event": "Back In Stock Subscribed",
                "anonymousId": "anon-1",
                "messageId": "b-3",
                "properties": {"sku": "LAMP-9"},
            },
        ]
    }
    status, body, _ = call(ctx, "/v1/batch", batch)
    assert (status, body["accepted"]) == (200, 3)
    details = [e["detail"] for e in world.published("profile")]
    assert details[0]["traits"] == {"birthday": "04-23"}
    assert [d["event"] for d in details[1:]] == ["Signed Up", "Back In Stock Subscribed"]
