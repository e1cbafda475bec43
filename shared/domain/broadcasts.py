"""Broadcasts in pages: when each member's message is due, and how a page task is named.

A broadcast (a journey triggered by `broadcast: {segment, day}`) is sent by one Step Functions
execution per (broadcast, send instant), not one per recipient: 10:00 local on the day falls on
about 40 distinct UTC instants worldwide. This module is the pure part: the instant a customer's
first step is due (the same rule the step engine applies, shared/domain/journey_decisions.py
`due_at`), and deterministic names so a replayed task joins instead of starting twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import date, datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain.journey_decisions import Situation, due_at
from shared.domain.journeys import Journey

BROADCAST_MODE = "broadcast"  # the journey state machine's input for a send-instant execution
# A worker sends one member at a time (about a dozen DynamoDB round trips and one SES call: ~0.15 s
# on AWS), so an instant's pages are spread over enough workers (shards, one execution each) for
# the account's MaxSendRate: 1 at SES's sandbox rate, 15 at 100/s, 150 at 1,000/s.
MEMBER_S = 0.15
MAX_SHARDS = 200  # well inside Lambda's default 1,000 concurrent executions


def shard_count(max_send_rate: float) -> int:
    return max(1, min(MAX_SHARDS, math.ceil(max_send_rate * MEMBER_S)))


def send_instant(journey: Journey, day: date, tz: ZoneInfo) -> int:
    """When the broadcast's first step is due for a customer in `tz` (epoch seconds): the step's
    `at` on the day in their zone, as the engine times an occasion (from local midnight)."""
    midnight = datetime.combine(day, dtime(0), tzinfo=tz).timestamp()
    return int(due_at(journey.steps[0], Situation(now=midnight, started_at=midnight, tz=tz)))


def source_page_id(part: int, cursor: dict[str, Any] | None) -> str:
    """The audience page a send page came from: the same on every replay of that task."""
    if not cursor:
        return f"{part}-first"
    return f"{part}-" + hashlib.sha256(json.dumps(cursor, sort_keys=True).encode()).hexdigest()[:16]


def instant_execution_name(store_id: str, journey: str, day: str, run: str, instant: int, shard: int) -> str:
    """One execution per (broadcast, daily run, send instant, shard), within the 80-character rules."""
    digest = hashlib.sha256(f"{store_id}\n{journey}\n{day}\n{run}".encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", f"bc-{store_id}-{journey}")[:44]
    return f"{readable}-{digest}-{instant}-{shard}"
