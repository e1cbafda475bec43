"""DynamoDB write request units as AWS would bill them, measured on moto (bench and tests only).

`WruMeter` wraps botocore's _make_api_call: around every write it reads the items the call names
(consistent GetItem through the unwrapped call, so the reads are not counted) and applies
DynamoDB's on-demand billing rules to the sizes before and after:
- 1 WRU per started 1 KB of the larger of the item before and after the write (a Delete: before);
- twice that for an item inside TransactWriteItems;
- plus, per global secondary index the write touches, 1 WRU per started KB of the projected
  index entry (a key change is a delete and a put: both are billed; a write that changes no
  projected attribute costs the index nothing).
Reads are metered too (`rru`, `reads`): a GetItem or Query is billed per started 4 KB of the items
it reads (at least one unit, for a missing item as well), half that when eventually consistent.
Item size follows AWS's published rules (attribute name bytes + value bytes; numbers about one
byte per two significant digits plus one; 3 bytes per list or map plus 1 per element).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

KB = 1024
INDEX_ENTRY_OVERHEAD = 100  # bytes DynamoDB adds to every index entry


def value_size(v: dict[str, Any]) -> int:
    ((kind, x),) = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        digits = x.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits.rstrip("0") or "0") / 2) + 1
    if kind == "B":
        return len(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: e}) for e in x)
    if kind == "L":
        return 3 + sum(value_size(e) + 1 for e in x)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(e) + 1 for k, e in x.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    """Bytes DynamoDB bills for an item in wire format (0 for no item)."""
    if not item:
        return 0
    return sum(len(k.encode()) + value_size(v) for k, v in item.items())


def units(size: int) -> int:
    return math.ceil(size / KB) if size else 0


@dataclass
class _Index:
    name: str
    keys: tuple[str, ...]
    projected: tuple[str, ...] | None  # None: ALL


@dataclass
class WruMeter:
    """WRU per write, summed; `reset()` between the things measured."""

    wru: float = 0.0
    calls: list[str] = field(default_factory=list)
    largest_item: int = 0  # bytes: the largest item a measured write left
    rru: float = 0.0
    reads: list[str] = field(default_factory=list)
    _indexes: dict[str, tuple[tuple[str, ...], list[_Index]]] = field(default_factory=dict)

    def reset(self) -> None:
        self.wru, self.calls, self.largest_item = 0.0, [], 0
        self.rru, self.reads = 0.0, []

    def _bill_read(self, operation: str, params: dict[str, Any], sizes: list[int]) -> None:
        self.reads.append(operation)
        self.rru += max(1, math.ceil(sum(sizes) / (4 * KB))) * (1.0 if params.get("ConsistentRead") else 0.5)

    def _schema(self, client: BaseClient, call: Any, table: str) -> tuple[tuple[str, ...], list[_Index]]:
        if table not in self._indexes:
            desc = call(client, "DescribeTable", {"TableName": table})["Table"]
            keys = tuple(k["AttributeName"] for k in desc["KeySchema"])
            found = []
            for gsi in desc.get("GlobalSecondaryIndexes", []):
                proj = gsi.get("Projection", {})
                index_keys = tuple(k["AttributeName"] for k in gsi["KeySchema"])
                projected = None
                if proj.get("ProjectionType") != "ALL":
                    projected = keys + index_keys + tuple(proj.get("NonKeyAttributes", []))
                found.append(_Index(gsi["IndexName"], index_keys, projected))
            self._indexes[table] = (keys, found)
        return self._indexes[table]

    def _bill(
        self, table_keys: tuple[str, ...], indexes: list[_Index], before: Any, after: Any, tx: bool
    ) -> float:
        size = max(item_size(before), item_size(after))
        self.largest_item = max(self.largest_item, item_size(after))
        total = units(size) * (2 if tx else 1)
        for index in indexes:
            entry = [_entry(index, table_keys, i) for i in (before, after)]
            if entry[0] == entry[1]:
                continue  # nothing the index holds changed
            old, new = entry
            same_key = old is not None and new is not None and all(old[k] == new[k] for k in index.keys)
            if same_key:
                total += units(max(item_size(old), item_size(new)) + INDEX_ENTRY_OVERHEAD)
            else:
                total += sum(units(item_size(e) + INDEX_ENTRY_OVERHEAD) for e in entry if e is not None)
        return total


def _entry(index: _Index, table_keys: tuple[str, ...], item: dict[str, Any] | None) -> dict[str, Any] | None:
    if not item or any(k not in item for k in index.keys):
        return None
    if index.projected is None:
        return item
    return {k: item[k] for k in index.projected if k in item}


def _targets(
    operation: str, params: dict[str, Any], keys: tuple[str, ...] | None = None
) -> list[tuple[str, dict[str, Any], bool]]:
    """(table, key, in a transaction) for every item the write names."""

    def key_of(table_keys: tuple[str, ...], item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in table_keys}

    assert keys is not None
    out: list[tuple[str, dict[str, Any], bool]] = []
    if operation == "PutItem":
        out.append((params["TableName"], key_of(keys, params["Item"]), False))
    elif operation in ("UpdateItem", "DeleteItem"):
        out.append((params["TableName"], params["Key"], False))
    elif operation == "TransactWriteItems":
        for entry in params["TransactItems"]:
            ((kind, body),) = entry.items()
            if kind == "ConditionCheck":
                continue  # billed as a read
            k = key_of(keys, body["Item"]) if kind == "Put" else body["Key"]
            out.append((body["TableName"], k, True))
    elif operation == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            for r in requests:
                if "PutRequest" in r:
                    out.append((table, key_of(keys, r["PutRequest"]["Item"]), False))
                else:
                    out.append((table, r["DeleteRequest"]["Key"], False))
    return out


WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
READS = ("GetItem", "Query")


@contextmanager
def metering() -> Iterator[WruMeter]:
    """Meter every DynamoDB write and read made by any client while the block runs."""
    meter = WruMeter()
    original: Any = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private: no stub)

    def call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name != "dynamodb":
            return original(client, operation, params)
        if operation in READS:
            resp = original(client, operation, params)
            if operation == "GetItem":
                # billed by the whole item, whatever the projection
                full = original(client, "GetItem", {"TableName": params["TableName"], "Key": params["Key"]})
                sizes = [item_size(full.get("Item"))]
            else:
                sizes = [item_size(i) for i in resp.get("Items", [])]
            meter._bill_read(operation, params, sizes)
            return resp
        if operation not in WRITES:
            return original(client, operation, params)
        tables = {params.get("TableName")} | set(params.get("RequestItems", {}))
        for entry in params.get("TransactItems", []):
            tables |= {b["TableName"] for b in entry.values()}
        tables.discard(None)
        [table] = [str(t) for t in tables]  # one table (the design's single table)
        table_keys, indexes = meter._schema(client, original, table)
        targets = _targets(operation, params, table_keys)

        def read(t: str, k: dict[str, Any]) -> Any:
            return original(client, "GetItem", {"TableName": t, "Key": k, "ConsistentRead": True}).get("Item")

        before = [read(t, k) for t, k, _ in targets]
        try:
            return original(client, operation, params)
        finally:
            meter.calls.append(operation)
            for (t, k, tx), old in zip(targets, before, strict=True):
                meter.wru += meter._bill(table_keys, indexes, old, read(t, k), tx)

    setattr(BaseClient, "_make_api_call", call)  # noqa: B010
    try:
        yield meter
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010
