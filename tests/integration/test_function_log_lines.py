"""What the three per-event functions (ingest, profile, journey-trigger) log at INFO, line by line
and key by key: one line per invocation for routine outcomes, a line of its own (with the reason)
for a skip, and no key the log group, stream or log event already says (shared/platform/function_log.py).
The cost bench counts these bytes (tests/bench_cost.py); a new key or line shows up here first."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from functions.ingest.handler import handler as ingest_handler
from functions.journey_trigger.handler import handler as trigger_handler
from functions.profile.handler import handler as profile_handler
from shared.platform.function_log import SERVICE
from tests.aws_fixtures import (
    LambdaContext,
    World,
    api_request,
    basic_auth,
    bus_envelope,
    canonical,
    sqs_batch,
)

EMAIL = "ada.lines@example.com"
COMMON = {"level", "message", "function_request_id"}


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The functions' log lines at INFO (the deployed level), as they reach the log stream."""
    out = io.StringIO()
    logger = logging.getLogger(SERVICE)
    monkeypatch.setattr(logger, "level", logging.INFO)
    for h in logger.handlers:
        if isinstance(h, logging.StreamHandler):
            monkeypatch.setattr(h, "stream", out)
    yield out


def read(out: io.StringIO) -> list[dict[str, Any]]:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def view(user: str, mid: str) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Product Viewed",
        "messageId": mid,
        "properties": {"product_id": "p-1", "sku": "RUN-42", "name": "Trail Runner", "price": 89.0},
    }


def test_each_function_writes_one_lean_line_per_invocation(
    world: World, ctx: LambdaContext, lines: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    identify = {"type": "identify", "userId": "ada-l", "messageId": "ada-l-id", "traits": {"email": EMAIL}}
    request = api_request("POST", "/v1/identify", identify, basic_auth(world.api_key))
    assert ingest_handler(request, ctx)["statusCode"] == 200
    [accepted] = read(lines)
    assert '"EventsAccepted":[1.0]' in capsys.readouterr().out  # the metrics blob the dashboard reads
    assert set(accepted) == COMMON | {"correlation_id", "store", "route", "accepted"}
    assert accepted["message"] == "accepted" and accepted["accepted"] == 1
    # the API's request id: the access-log line's requestId (infra/access_logs.py)
    assert accepted["correlation_id"] == request["requestContext"]["requestId"]
    assert accepted["function_request_id"] == ctx.aws_request_id

    calls = [identify, view("ada-l", "ada-l-v1")]
    bodies = [bus_envelope(e) for e in canonical(calls)]
    assert profile_handler(sqs_batch(bodies), ctx) == {"batchItemFailures": []}
    [batch] = read(lines)  # two events applied: one line, with their ids to follow either
    assert set(batch) == COMMON | {"records", "failed", "outcomes", "message_ids"}
    assert batch["message"] == "profile batch" and batch["records"] == 2 and batch["failed"] == 0
    assert sum(batch["outcomes"].values()) == 2 and set(batch["outcomes"]) <= {"applied", "unchanged"}
    assert batch["message_ids"] == ["ada-l-id", "ada-l-v1"]
    assert "_aws" not in capsys.readouterr().out  # outcomes are counted in the line, not as metrics

    # a redelivery changes nothing: routine too, still followable by its id
    assert profile_handler(sqs_batch(bodies[:1]), ctx) == {"batchItemFailures": []}
    [again] = read(lines)
    assert again["message"] == "profile batch" and again["message_ids"] == ["ada-l-id"]

    # the first view starts browse abandonment (routine: one batch line); the next is skipped, with why
    assert trigger_handler(sqs_batch(bodies[1:]), ctx) == {"batchItemFailures": []}
    [started] = read(lines)
    assert set(started) == COMMON | {"records", "failed", "outcomes", "message_ids"}
    assert started["outcomes"] == {"started": 1} and started["message_ids"] == ["ada-l-v1"]
    assert "_aws" not in capsys.readouterr().out
    later = [bus_envelope(e) for e in canonical([view("ada-l", "ada-l-v2")])]
    assert trigger_handler(sqs_batch(later), ctx) == {"batchItemFailures": []}
    [skipped] = read(lines)
    assert set(skipped) == COMMON | {
        "store",
        "message_id",
        "event",
        "outcome",
        "journey",
        "instance",
        "reason",
    }
    assert (skipped["outcome"], skipped["reason"]) == ("ignored", "re-entry policy")


def test_no_line_names_the_customer(world: World, ctx: LambdaContext, lines: io.StringIO) -> None:
    call = {"type": "identify", "userId": "ada-p", "messageId": "ada-p-id", "traits": {"email": EMAIL}}
    ingest_handler(api_request("POST", "/v1/identify", call, basic_auth(world.api_key)), ctx)
    profile_handler(sqs_batch([bus_envelope(e) for e in canonical([call])]), ctx)
    text = lines.getvalue()
    assert text and EMAIL not in text.lower()
