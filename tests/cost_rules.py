"""AWS list prices (us-east-1) and the billing rules the cost bench (tests/bench_cost.py) applies to
the calls it measures. Pure functions, so tests/unit/test_cost_rules.py can hold them to AWS's rules.

DynamoDB on demand bills a write in 1 KB units of the larger of the item before and after it, twice
inside a transaction, and again for each global secondary index the write changes; a read in 4 KB
units of what it read (half when eventually consistent, twice in a transaction). Item size is the
sum of attribute names and values as DynamoDB counts them. Step Functions logs one record per
history event at ALL, only the failures at ERROR, only the execution's end at FATAL.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# USD, us-east-1 list prices (checked 2026-12): per unit of each line.
PRICES: dict[str, float] = {
    "apigw_rest": 3.50 / 1e6,  # REST API, per request (first 333 M a month)
    "apigw_http": 1.00 / 1e6,  # HTTP API, per request (first 300 M a month; 512 KB units)
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s_arm64": 0.0000133334,
    "lambda_gb_s_x86_64": 0.0000166667,
    "eventbridge_entry": 1.00 / 1e6,  # custom events, per 64 KB entry
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB request
    "ddb_wru": 0.625 / 1e6,  # on demand (prices of November 2024)
    "ddb_rru": 0.125 / 1e6,
    "logs_gb": 0.50,  # CloudWatch Logs ingestion (standard class; vended logs the same first tier)
    "sfn_transition": 0.025 / 1000,  # Standard workflows
    "ses_email": 0.10 / 1000,
    "push_message": 1.00 / 1e6,  # End User Messaging push (the Pinpoint send API)
}
# SNS / End User Messaging SMS, per outbound message part (base price + typical carrier fee; varies
# by route and sender type: check the price page for the destination before budgeting).
SMS_PRICES: dict[str, float] = {
    "US": 0.00581 + 0.00302,
    "GB": 0.0395,
    "DE": 0.0926,
    "FR": 0.0764,
    "PL": 0.0371,
}

# What AWS Lambda itself writes per invocation to the function's log group (text format):
# START, END and REPORT lines, measured on a 512 MB arm64 function.
LAMBDA_PLATFORM_LOG_BYTES = len(
    "START RequestId: 0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9 Version: $LATEST\n"
    "END RequestId: 0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9\n"
    "REPORT RequestId: 0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 98 MB\t\n"
)


def _number_size(text: str) -> int:
    """A number: about one byte per two significant digits, plus one (DynamoDB's rule)."""
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    if "e" in text.lower():
        digits = format(Decimal(text), "f").lstrip("-").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB JSON ({"S": ...}, {"M": {...}}, ...)."""
    (kind, v), *_ = value.items()
    if kind == "S":
        return len(v.encode("utf-8"))
    if kind == "N":
        return _number_size(str(v))
    if kind == "B":
        return len(v if isinstance(v, bytes) else base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in v)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in v)
    if kind == "BS":
        return sum(len(b if isinstance(b, bytes) else base64.b64decode(b)) for b in v)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(e) for k, e in v.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of an item in DynamoDB JSON: names plus values; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def write_units(before: int, after: int, transactional: bool = False) -> int:
    """WRU of one write: 1 KB units of the larger of the item's sizes (at least 1), x2 in a transaction."""
    units = max(1, math.ceil(max(before, after) / 1024))
    return units * (2 if transactional else 1)


def read_units(size: int, consistent: bool = True, transactional: bool = False) -> float:
    """RRU of one read of `size` bytes: 4 KB units (at least 1), half eventually consistent, x2 in a
    transaction."""
    units = max(1, math.ceil(size / 4096))
    if transactional:
        return units * 2.0
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """What of a GSI the billing needs: its key attributes and the attributes it copies."""

    name: str
    keys: tuple[str, ...]
    include: tuple[str, ...] = ()

    def entry(self, item: Mapping[str, Any] | None, table_keys: Iterable[str]) -> dict[str, Any] | None:
        """The index's copy of `item` (None when the item is not in this sparse index)."""
        if not item or any(k not in item for k in self.keys):
            return None
        names = {*self.keys, *table_keys, *self.include}
        return {k: v for k, v in item.items() if k in names}


def index_write_units(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    indexes: Iterable[Index],
    table_keys: Iterable[str],
) -> int:
    """WRU the GSIs add to one write: nothing when the index's copy is unchanged; one write to put or
    remove it; two (delete + put) when its key changed."""
    keys = tuple(table_keys)
    units = 0
    for index in indexes:
        old, new = index.entry(before, keys), index.entry(after, keys)
        if old == new:
            continue
        if old and new and any(old[k] != new[k] for k in index.keys):
            units += write_units(item_size(old), 0) + write_units(item_size(new), 0)
        else:
            units += write_units(item_size(old), item_size(new))
    return units


# Step Functions execution logging: which history events each level writes to CloudWatch Logs.
_FATAL = {"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}


def logged_at(event_type: str, level: str) -> bool:
    if level == "OFF":
        return False
    if level == "ALL":
        return True
    if level == "FATAL":
        return event_type in _FATAL
    if level == "ERROR":
        return event_type.endswith(("Failed", "TimedOut", "Aborted"))
    raise ValueError(f"unknown Step Functions log level {level!r}: ALL, ERROR, FATAL or OFF")


def execution_log_bytes(history: Iterable[Mapping[str, Any]], level: str, execution_arn: str) -> int:
    """Bytes Step Functions writes for an execution at `level` without execution data: one JSON
    record per logged history event (its type, ids, time, and details without input/output)."""
    import json

    total = 0
    for event in history:
        if not logged_at(event["type"], level):
            continue
        details = {
            k: {f: x for f, x in v.items() if f not in ("input", "output", "inputDetails", "outputDetails")}
            for k, v in event.items()
            if k.endswith("EventDetails") and isinstance(v, dict)
        }
        record = {
            "id": str(event.get("id", "")),
            "type": event["type"],
            "details": next(iter(details.values()), {}),
            "previous_event_id": str(event.get("previousEventId", 0)),
            "event_timestamp": "1764770000000",
            "execution_arn": execution_arn,
            "redrive_count": "0",
        }
        total += len(json.dumps(record)) + 1
    return total


def transitions(history: Iterable[Mapping[str, Any]]) -> int:
    """State transitions Step Functions bills: one per state entered."""
    return sum(1 for e in history if e["type"].endswith("StateEntered"))
