"""Compressed request bodies: inflated layer by layer, within the body limit before and after."""

from __future__ import annotations

import base64
import gzip
import json
import resource
import zlib
from datetime import UTC, datetime

import pytest

from shared.domain.api_calls import MAX_BODY_BYTES, normalise, skew_corrected
from shared.services.ingest import ApiProblem, parse_calls, parse_json, read_body, write_key_from_body

BATCH = {
    "batch": [{"type": "track", "event": "Product Viewed", "userId": "u-1", "properties": {"sku": "S-1"}}]
}
RAW = json.dumps(BATCH).encode()
RECEIVED = datetime(2026, 11, 19, 6, 26, 40, tzinfo=UTC).timestamp()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("gzip", gzip.compress(RAW)),
        ("x-gzip", gzip.compress(RAW)),
        ("deflate", zlib.compress(RAW)),  # RFC 9110's deflate: zlib-wrapped
        ("deflate", b"raw"),  # raw deflate (no zlib header), as some clients send: built below
        ("identity", RAW),
        ("gzip, deflate", zlib.compress(gzip.compress(RAW))),  # applied in order, undone in reverse
    ],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw", "identity", "two-layers"],
)
def test_every_supported_encoding_gives_back_the_json(encoding: str, data: bytes) -> None:
    if data == b"raw":
        c = zlib.compressobj(wbits=-15)
        data = c.compress(RAW) + c.flush()
    assert read_body(b64(data), True, {"Content-Encoding": encoding}) == RAW


def test_header_names_are_case_insensitive() -> None:
    assert read_body(b64(gzip.compress(RAW)), True, {"content-encoding": "GZIP"}) == RAW


def test_unknown_encoding_is_415_naming_the_allowed_ones() -> None:
    with pytest.raises(ApiProblem) as caught:
        read_body(b64(RAW), True, {"Content-Encoding": "br"})
    assert caught.value.status == 415
    assert "'br'" in caught.value.message and "gzip, deflate" in caught.value.message


def test_corrupt_gzip_is_400_not_a_crash() -> None:
    with pytest.raises(ApiProblem) as caught:
        read_body(b64(b"\x1f\x8bnot really gzip"), True, {"Content-Encoding": "gzip"})
    assert (caught.value.status, caught.value.error) == (400, "malformed_body")


def test_truncated_gzip_is_400() -> None:
    with pytest.raises(ApiProblem) as caught:
        read_body(b64(gzip.compress(RAW)[:-12]), True, {"Content-Encoding": "gzip"})
    assert caught.value.status == 400


def test_zip_bomb_is_413_and_never_inflated_past_the_limit() -> None:
    # Given 1 GB of zeros in about 1 MB... too big to send; 200 MB in ~200 KB is under the body limit
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < MAX_BODY_BYTES
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux

    # When it is read
    with pytest.raises(ApiProblem) as caught:
        read_body(b64(bomb), True, {"Content-Encoding": "gzip"})

    # Then 413, and the process grew by far less than the bomb's size (Lambda's smallest is 128 MB)
    assert (caught.value.status, caught.value.error) == (413, "payload_too_large")
    assert "decompressed" in caught.value.message
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 64


def test_compressed_body_over_the_limit_is_413_before_inflating() -> None:
    with pytest.raises(ApiProblem) as caught:
        read_body(b64(b"x" * (MAX_BODY_BYTES + 1)), True, {"Content-Encoding": "gzip"})
    assert caught.value.status == 413


def test_write_key_in_the_body_and_envelope_fields_are_not_calls() -> None:
    payload = parse_json(json.dumps({**BATCH, "writeKey": "bk_1", "sentAt": "2026-11-23T10:00:00Z"}).encode())
    assert write_key_from_body(payload) == "bk_1"
    assert write_key_from_body({"writeKey": 3}) is None
    single = parse_calls(
        {"event": "Product Viewed", "userId": "u", "writeKey": "bk_1", "sentAt": "x"}, "track"
    )
    assert "writeKey" not in single[0] and "sentAt" not in single[0]


def test_batch_context_applies_to_every_call_and_the_calls_own_wins() -> None:
    calls = parse_calls(
        {
            "batch": [{**BATCH["batch"][0], "context": {"locale": "pl-PL"}}, BATCH["batch"][0]],
            "context": {"library": {"name": "analytics-python"}, "locale": "en-GB"},
        },
        "batch",
    )
    assert calls[0]["context"] == {"library": {"name": "analytics-python"}, "locale": "pl-PL"}
    assert calls[1]["context"]["locale"] == "en-GB"


def test_sent_at_corrects_a_client_clock_that_is_five_minutes_fast() -> None:
    # Given a client whose clock is 5 minutes fast: Boomerang receives at 06:26:40 what the client
    # stamped sentAt 06:31:40, for an event one minute earlier by the client's clock (06:30:40)
    received = RECEIVED
    corrected = skew_corrected("2026-11-19T06:30:40Z", "2026-11-19T06:31:40Z", received)
    # Then the event's time is one minute before receipt, on Boomerang's clock
    assert corrected == "2026-11-19T06:25:40.000Z"


def test_sent_at_is_ignored_without_a_timestamp_or_when_unreadable() -> None:
    assert skew_corrected(None, "2026-11-19T06:31:40Z", 0) is None
    assert skew_corrected("2026-11-19T06:30:40Z", "yesterday", 0) == "2026-11-19T06:30:40Z"


def test_normalise_keeps_context_and_the_original_timestamp() -> None:
    call = {
        **BATCH["batch"][0],
        "timestamp": "2026-11-19T06:30:40Z",
        "context": {"ip": "203.0.113.9", "library": {"name": "analytics.js"}, "timezone": "Europe/Warsaw"},
    }
    [event], errors = normalise([call], "shop-1", RECEIVED, "2026-11-19T06:31:40Z")
    assert not errors
    assert event.timestamp == "2026-11-19T06:25:40.000Z"
    assert event.context == {  # the IP address is not kept
        "library": {"name": "analytics.js"},
        "timezone": "Europe/Warsaw",
        "original_timestamp": "2026-11-19T06:30:40Z",
    }


def test_a_retry_with_a_new_sent_at_derives_the_same_message_id() -> None:
    call = {"type": "track", "event": "Product Viewed", "userId": "u-1", "properties": {"sku": "S-1"}}
    [a], _ = normalise([{**call, "sentAt": "2026-11-19T06:31:40Z"}], "shop-1", 1.0)
    [b], _ = normalise([{**call, "sentAt": "2026-11-19T06:32:40Z"}], "shop-1", 2.0)
    assert a.message_id == b.message_id
