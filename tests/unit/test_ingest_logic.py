"""The event API's decisions without HTTP: write key, body size, body shape, validation."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.domain.api_calls import MAX_BODY_BYTES, MAX_CALLS_PER_BATCH
from shared.services.ingest import ApiProblem, api_key_from_headers, parse_calls, read_body, validate
from tests.events import load_event


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


# --- api_key_from_headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Basic " + b64("bk_key:")}, "bk_key"),  # Segment: key as user, no password
        ({"Authorization": "Basic " + b64("bk_key")}, "bk_key"),  # no colon at all
        ({"authorization": "basic " + b64("bk_key:ignored-password")}, "bk_key"),
        ({"Authorization": "Basic   " + b64(" bk_key :")}, "bk_key"),
        ({"x-api-key": "bk_key"}, "bk_key"),
        ({"X-Api-Key": "  bk_key  "}, "bk_key"),
        ({"X-API-KEY": "bk_key", "Authorization": "Basic " + b64("other:")}, "bk_key"),
    ],
)
def test_write_key_is_read_from_basic_auth_or_x_api_key(headers: dict[str, str], expected: str) -> None:
    assert api_key_from_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + b64(b"\xff\xfe:")},  # not UTF-8
        {"Authorization": "Basic " + b64(":password-only")},
        {"Authorization": "Basic "},
        {"Authorization": "Bearer bk_key"},
        {"x-api-key": ""},
    ],
)
def test_missing_or_garbled_credentials_give_no_key(headers: dict[str, str]) -> None:
    assert api_key_from_headers(headers) is None


def test_none_headers_give_no_key() -> None:
    assert api_key_from_headers(None) is None  # type: ignore[arg-type]  # API Gateway sends null


# --- read_body -------------------------------------------------------------------------------------


def test_body_up_to_the_limit_is_read() -> None:
    raw = "x" * MAX_BODY_BYTES
    assert len(read_body(raw, False)) == MAX_BODY_BYTES


def test_body_over_500_kb_is_413() -> None:
    with pytest.raises(ApiProblem) as info:
        read_body("x" * (MAX_BODY_BYTES + 1), False)
    assert info.value.status == 413 and info.value.error == "payload_too_large"


def test_limit_counts_bytes_not_characters() -> None:
    # "ł" is two bytes in UTF-8: fewer characters than the limit, more bytes
    with pytest.raises(ApiProblem) as info:
        read_body("ł" * (MAX_BODY_BYTES // 2 + 1), False)
    assert info.value.status == 413


def test_base64_bodies_are_decoded_and_measured_decoded() -> None:
    assert read_body(b64('{"a":1}'), True) == b'{"a":1}'
    with pytest.raises(ApiProblem) as info:
        read_body(b64(b"x" * (MAX_BODY_BYTES + 1)), True)
    assert info.value.status == 413


def test_no_body_is_empty() -> None:
    assert read_body(None, False) == b""


# --- parse_calls ------------------------------------------------------------------------------------


def problem(raw: bytes, route: str = "batch") -> ApiProblem:
    with pytest.raises(ApiProblem) as info:
        parse_calls(raw, route)
    return info.value


@pytest.mark.parametrize("raw", [b"{not json", b'{"batch": [', b"\x80\x81"])
def test_malformed_json_is_400(raw: bytes) -> None:
    p = problem(raw)
    assert (p.status, p.error) == (400, "malformed_json")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"", b"null"])
def test_body_must_be_an_object(raw: bytes) -> None:
    p = problem(raw)
    assert (p.status, p.error, p.message) == (400, "invalid_body", "body must be a JSON object")


@pytest.mark.parametrize("payload", [{}, {"batch": {"type": "track"}}, {"calls": []}])
def test_batch_route_needs_a_batch_list(payload: dict[str, Any]) -> None:
    p = problem(body(payload))
    assert (p.status, p.error) == (400, "invalid_body")
    assert p.body()["errors"] == [{"index": -1, "field": "batch", "message": "required: a list of calls"}]


def test_empty_batch_is_400() -> None:
    p = problem(body({"batch": []}))
    assert (p.status, p.error) == (400, "invalid_body") and "empty" in p.message


def test_more_than_100_calls_is_413() -> None:
    call = load_event("product_added")
    assert len(parse_calls(body({"batch": [call] * MAX_CALLS_PER_BATCH}), "batch")) == MAX_CALLS_PER_BATCH
    p = problem(body({"batch": [call] * (MAX_CALLS_PER_BATCH + 1)}))
    assert (p.status, p.error) == (413, "batch_too_large")


def test_batch_route_returns_the_calls() -> None:
    sample = load_event("batch_cart_abandon")
    assert parse_calls(body(sample), "batch") == sample["batch"]


def test_single_call_routes_imply_the_type() -> None:
    call = load_event("product_added")
    del call["type"]
    [parsed] = parse_calls(body(call), "track")
    assert parsed["type"] == "track"
    [identify] = parse_calls(body(load_event("identify_with_consent")), "identify")
    assert identify["type"] == "identify"


def test_track_path_refuses_an_identify_call() -> None:
    # Given an identify call posted to /v1/track
    p = problem(body(load_event("identify_with_consent")), "track")

    # Then it is a 400 that points at the type and at /v1/batch
    assert (p.status, p.error) == (400, "invalid_body")
    assert p.body()["errors"] == [
        {"index": 0, "field": "type", "message": "must be 'track' on this path, or use /v1/batch"}
    ]


# --- validate ----------------------------------------------------------------------------------------


def test_validate_turns_errors_into_one_400_listing_all() -> None:
    good = load_event("product_added")
    bad = {**load_event("order_completed"), "properties": {"total": 10}}
    with pytest.raises(ApiProblem) as info:
        validate([good, bad, {"type": "track"}], "shop-1", 1.0)
    out = info.value.body()
    assert info.value.status == 400
    assert out["success"] is False and out["error"] == "validation_failed"
    assert [(e["index"], e["field"]) for e in out["errors"]] == [(1, "properties.order_id"), (2, "(call)")]
    assert "nothing was accepted" in out["message"]


def test_validate_returns_canonical_events() -> None:
    events = validate(load_event("batch_cart_abandon")["batch"], "shop-1", 5.0)
    assert [e.received_at for e in events] == [5.0] * 4
