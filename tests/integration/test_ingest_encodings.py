"""Compressed batches, the body's writeKey, sentAt and Retry-After through the real ingest λ."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest

from functions.ingest.handler import handler
from tests.aws_fixtures import API_KEY, LambdaContext, World, api_request, basic_auth
from tests.events import load_event
from tests.integration.test_ingest_handler import failing_put_events


def post(
    ctx: LambdaContext, body: bytes, headers: dict[str, str], path: str = "/v1/batch"
) -> tuple[int, Any, dict[str, Any]]:
    result = handler(api_request("POST", path, body, headers), ctx)
    out = {k.lower(): v for k, v in (result.get("multiValueHeaders") or {}).items()}
    out.update({k.lower(): [v] for k, v in (result.get("headers") or {}).items()})
    return result["statusCode"], json.loads(result["body"]), out


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_compressed_batch_is_accepted_like_a_plain_one(
    world: World, ctx: LambdaContext, encoding: str, compress: Any
) -> None:
    sample = load_event("batch_cart_abandon")
    raw = json.dumps(sample).encode()
    status, body, _ = post(ctx, compress(raw), {**basic_auth(API_KEY), "Content-Encoding": encoding})
    assert (status, body) == (200, {"success": True, "accepted": 4})
    assert [e["detail"]["message_id"] for e in world.published("profile")] == [
        c["messageId"] for c in sample["batch"]
    ]


def test_unknown_encoding_is_415(world: World, ctx: LambdaContext) -> None:
    status, body, _ = post(ctx, b"...", {**basic_auth(API_KEY), "Content-Encoding": "br"})
    assert (status, body["error"]) == (415, "unsupported_encoding")
    assert world.published("profile") == []


def test_zip_bomb_is_413_and_nothing_is_published(world: World, ctx: LambdaContext) -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024), compresslevel=9)  # valid JSON whitespace, 64 MB
    status, body, _ = post(ctx, bomb, {**basic_auth(API_KEY), "Content-Encoding": "gzip"})
    assert (status, body["error"]) == (413, "payload_too_large")
    assert world.published("profile") == []


def test_write_key_in_the_body_authenticates(world: World, ctx: LambdaContext) -> None:
    sample = {**load_event("batch_cart_abandon"), "writeKey": API_KEY, "sentAt": "2026-11-23T10:00:00Z"}
    status, body, _ = post(ctx, gzip.compress(json.dumps(sample).encode()), {"Content-Encoding": "gzip"})
    assert (status, body) == (200, {"success": True, "accepted": 4})
    assert len(world.published("profile")) == 4


def test_wrong_write_key_in_the_body_is_401(world: World, ctx: LambdaContext) -> None:
    sample = {**load_event("batch_cart_abandon"), "writeKey": "bk_not_ours"}
    status, body, _ = post(ctx, json.dumps(sample).encode(), {})
    assert (status, body["error"]) == (401, "unauthorized")
    assert "writeKey" in body["message"]


def test_a_wrong_header_key_is_not_rescued_by_the_body(world: World, ctx: LambdaContext) -> None:
    sample = {**load_event("batch_cart_abandon"), "writeKey": API_KEY}
    assert post(ctx, json.dumps(sample).encode(), basic_auth("bk_wrong"))[0] == 401


def test_sent_at_corrects_the_timestamp(world: World, ctx: LambdaContext) -> None:
    call = {
        **load_event("product_added"),
        "timestamp": "2000-01-01T00:00:00Z",
        "sentAt": "2000-01-01T00:01:00Z",
    }
    assert post(ctx, json.dumps(call).encode(), basic_auth(API_KEY), "/v1/track")[0] == 200
    [event] = world.published("profile")
    detail = event["detail"]
    # the client's clock was decades behind: the event is a minute before Boomerang received it
    assert abs(detail["received_at"] - 60 - _ts(detail["timestamp"])) < 0.01
    assert detail["context"]["original_timestamp"] == "2000-01-01T00:00:00Z"


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_503_tells_the_client_when_to_retry(
    world: World, ctx: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_put_events(monkeypatch)
    status, _, headers = post(ctx, json.dumps(load_event("batch_cart_abandon")).encode(), basic_auth(API_KEY))
    assert status == 503
    assert headers["retry-after"] == ["5"]
