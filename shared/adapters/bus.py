"""Publishing canonical events to the EventBridge bus, and reading them back off SQS."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from shared.domain.events import EVENT_SOURCE, CanonicalEvent

PUT_EVENTS_MAX_ENTRIES = 10  # EventBridge's per-call limit


class PublishFailed(Exception):
    def __init__(self, failed: int, total: int, codes: list[str]) -> None:
        super().__init__(
            f"{failed} of {total} events could not be published ({', '.join(sorted(set(codes)))})"
        )
        self.failed = failed
        self.codes = codes


def entry(event: CanonicalEvent, bus_name: str) -> dict[str, Any]:
    return {
        "Source": EVENT_SOURCE,
        "DetailType": event.type,
        "Detail": event.model_dump_json(),
        "EventBusName": bus_name,
    }


def publish(events_client: Any, bus_name: str, events: list[CanonicalEvent], attempts: int = 4) -> int:
    """Put every event on the bus in chunks of 10, retrying only the entries that failed.

    Returns the number of PutEvents calls made. Raises PublishFailed if entries still fail: the
    caller answers 503 so the client retries, and the messageId markers make that retry safe.
    """
    calls = 0
    for start in range(0, len(events), PUT_EVENTS_MAX_ENTRIES):
        chunk = [entry(e, bus_name) for e in events[start : start + PUT_EVENTS_MAX_ENTRIES]]
        calls += _put_entries(events_client, chunk, len(events), attempts)
    return calls


def publish_detail(
    events_client: Any,
    bus_name: str,
    source: str,
    detail_type: str,
    detail: dict[str, Any],
    attempts: int = 4,
) -> int:
    """One event of Boomerang's own (not a storefront event), with the same retries."""
    put = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "EventBusName": bus_name,
    }
    return _put_entries(events_client, [put], 1, attempts)


def _put_entries(events_client: Any, pending: list[dict[str, Any]], total: int, attempts: int) -> int:
    calls = 0
    codes: list[str] = []
    for attempt in range(attempts):
        calls += 1
        resp = events_client.put_events(Entries=pending)
        if not resp.get("FailedEntryCount"):
            return calls
        results = resp["Entries"]
        codes = [r.get("ErrorCode", "Unknown") for r in results if r.get("ErrorCode")]
        pending = [e for e, r in zip(pending, results, strict=True) if r.get("ErrorCode")]
        if attempt < attempts - 1:
            time.sleep(random.uniform(0, 0.05 * 2**attempt))  # full jitter
    raise PublishFailed(len(pending), total, codes)


def event_from_sqs_body(body: str) -> CanonicalEvent:
    """An SQS message delivered by an EventBridge rule carries the whole bus event; ours is in detail."""
    envelope = json.loads(body)
    return CanonicalEvent.model_validate(envelope["detail"])
