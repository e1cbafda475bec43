"""publish(): chunks of 10, retry of only the failed entries, and a clear failure when they keep failing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.adapters import bus
from shared.adapters.bus import PublishFailed, event_from_sqs_body, publish
from shared.domain.events import EVENT_SOURCE, CanonicalEvent

BUS = "boomerang"


def events(n: int) -> list[CanonicalEvent]:
    return [
        CanonicalEvent(
            message_id=f"m-{i:02d}",
            store_id="shop-1",
            type="track",
            event="Product Added",
            user_id="u1",
            properties={"cart_id": "c1", "sku": f"S{i}", "price": 1.5},
            received_at=1000.0 + i,
        )
        for i in range(n)
    ]


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [json.loads(e["Detail"])["message_id"] for e in entries]


class FakeEvents:
    """An EventBridge client that fails the entries `fail(message_id, attempt)` says should fail."""

    def __init__(self, fail: Callable[[str, int], str | None] = lambda _id, _n: None) -> None:
        self.fail = fail
        self.calls: list[list[dict[str, Any]]] = []
        self.attempts: dict[str, int] = {}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3 spelling)
        assert len(Entries) <= 10, "EventBridge takes at most 10 entries per call"
        self.calls.append(list(Entries))
        results = []
        for message_id in ids(Entries):
            n = self.attempts[message_id] = self.attempts.get(message_id, 0) + 1
            code = self.fail(message_id, n)
            results.append(
                {"ErrorCode": code, "ErrorMessage": "no"} if code else {"EventId": f"evt-{message_id}-{n}"}
            )
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(bus.time, "sleep", slept.append)
    return slept


def test_25_events_go_out_in_three_calls_of_at_most_10() -> None:
    client = FakeEvents()

    calls = publish(client, BUS, events(25))

    assert calls == 3
    assert [len(c) for c in client.calls] == [10, 10, 5]
    assert [i for c in client.calls for i in ids(c)] == [e.message_id for e in events(25)]


def test_entries_carry_source_detail_type_bus_and_the_canonical_event() -> None:
    client = FakeEvents()
    [event] = events(1)

    publish(client, BUS, [event])

    [[entry]] = client.calls
    assert entry["Source"] == EVENT_SOURCE
    assert entry["DetailType"] == "track"
    assert entry["EventBusName"] == BUS
    assert CanonicalEvent.model_validate_json(entry["Detail"]) == event


def test_no_events_no_calls() -> None:
    client = FakeEvents()
    assert publish(client, BUS, []) == 0 and client.calls == []


def test_only_failed_entries_are_retried(no_backoff: list[float]) -> None:
    # Given EventBridge throttles two entries of the second chunk once
    flaky = {"m-12", "m-17"}
    client = FakeEvents(lambda mid, n: "ThrottlingException" if mid in flaky and n == 1 else None)

    # When 20 events are published
    calls = publish(client, BUS, events(20))

    # Then the retry carries exactly the two failed entries, and every event went out exactly once
    assert calls == 3
    assert [ids(c) for c in client.calls][2] == ["m-12", "m-17"]
    assert all(n == 1 for mid, n in client.attempts.items() if mid not in flaky)
    assert len(no_backoff) == 1  # backed off once before retrying


def test_entries_that_keep_failing_raise_publish_failed() -> None:
    # Given one entry EventBridge always refuses
    client = FakeEvents(lambda mid, n: "InternalFailure" if mid == "m-03" else None)

    # When publishing
    with pytest.raises(PublishFailed) as info:
        publish(client, BUS, events(25), attempts=4)

    # Then it was tried 4 times in all, alone after the first call, and the caller learns what failed
    assert client.attempts["m-03"] == 4
    assert [len(c) for c in client.calls] == [10, 1, 1, 1]
    assert (info.value.failed, info.value.codes) == (1, ["InternalFailure"])
    assert str(info.value) == "1 of 25 events could not be published (InternalFailure)"
    # and later chunks were not sent after a chunk failed (the whole request is retried by the client)
    assert "m-10" not in client.attempts


def test_mixed_failure_codes_are_reported() -> None:
    client = FakeEvents(lambda mid, n: {"m-00": "ThrottlingException", "m-01": "InternalFailure"}.get(mid))
    with pytest.raises(PublishFailed) as info:
        publish(client, BUS, events(3), attempts=2)
    assert info.value.failed == 2
    assert "InternalFailure, ThrottlingException" in str(info.value)


def test_sqs_body_from_an_eventbridge_rule_gives_back_the_canonical_event() -> None:
    [event] = events(1)
    envelope = {
        "version": "0",
        "id": "f0e1",
        "detail-type": "track",
        "source": EVENT_SOURCE,
        "detail": json.loads(event.model_dump_json()),
    }
    assert event_from_sqs_body(json.dumps(envelope)) == event
