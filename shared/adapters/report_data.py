"""The records the metrics need (shared/domain/metrics.py), read from the table or from a DynamoDB export.

Two sources, one parser (`collect`), so both give the same numbers:

- the table, by a paginated Scan (`scan_table`): for the local emulator and small stores. A report
  is an offline batch job, never a request path, so a Scan is acceptable here; it reads the whole
  table (every store), which is what an export avoids.
- a DynamoDB export to S3 (`read_export`, the ExportTableToPointInTime format in DynamoDB JSON:
  ``<prefix>/AWSDynamoDB/<export id>/data/*.json.gz``, one ``{"Item": {...}}`` per line): at
  scale the report reads the export and makes no table reads at all.

Items used (README "Table layout"): orders ``STORE#s#ORDER#<id>`` / ``ORDER``; profiles
``STORE#s#CUST#<id>`` / ``PROFILE`` (for ``merged_into``: an anonymous visitor's orders and history
count for the customer they became); journey history ``STORE#s#CUST#<id>`` / ``HIST#..`` (``sent``
and ``entered`` records); SES engagement ``STORE#s#MSG#<ses message id>`` / ``ENGAGE``; what was
sent to fulfilment partners ``STORE#s#ORDER#<id>`` / ``FWD#<partner>#create`` (times and status). Nothing
personal is kept: no address, name or trait leaves this module, only ids, times and amounts.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.domain.metrics import EngagementRec, EntryRec, ForwardRec, OrderRec, SentRec
from shared.platform import keys
from shared.platform.aws import from_item

ENGAGEMENT_KIND = "MSG"  # keys.message_pk
FORWARD_CREATE = ("FWD#", "#create")  # shared/adapters/fulfilment_store.py fwd_sk(partner, "create")


class ReportDataError(ValueError):
    """The source cannot be read as asked (bad export location, no such store, ...)."""


@dataclass
class ReportData:
    store: str
    customers: int = 0  # profiles that were not merged into another
    known_customers: int = 0  # of those, identified (user id or email)
    orders: list[OrderRec] = field(default_factory=list)
    sends: list[SentRec] = field(default_factory=list)
    entries: list[EntryRec] = field(default_factory=list)
    # None when SES reported no engagement for this store (e.g. the emulator, or SMS/push only)
    engagement: list[EngagementRec] | None = None
    forwards: list[ForwardRec] = field(default_factory=list)
    currencies: set[str] = field(default_factory=set)
    items_read: int = 0
    # the customers as the data holds them now: (stage | group | segment) -> [customers, net revenue]
    stages: dict[str, list[float]] = field(default_factory=dict)
    rfm_groups: dict[str, list[float]] = field(default_factory=dict)
    segments: dict[str, list[float]] = field(default_factory=dict)


def _split(pk: str) -> tuple[str, str, str] | None:
    """``STORE#<store>#<KIND>#<id>`` -> (store, kind, id); store ids never contain '#'."""
    parts = pk.split("#", 3)
    if len(parts) != 4 or parts[0] != "STORE":
        return None
    return parts[1], parts[2], parts[3]


def stores_in(items: Iterable[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for item in items:
        where = _split(str(item.get("pk", "")))
        if where and (item.get("sk") == "PROFILE" or item.get("sk") == "ORDER"):
            found.add(where[0])
    return found


def collect(items: Iterable[dict[str, Any]], store: str) -> ReportData:
    """One store's records from plain (already deserialised) table items, in any order."""
    data = ReportData(store)
    merged: dict[str, str] = {}
    raw_orders: list[dict[str, Any]] = []
    raw_hist: list[tuple[str, dict[str, Any]]] = []
    engagement: list[EngagementRec] = []
    for item in items:
        data.items_read += 1
        where = _split(str(item.get("pk", "")))
        if where is None or where[0] != store:
            continue
        _, kind, ident = where
        sk = str(item.get("sk", ""))
        if kind == "ORDER" and sk == "ORDER":
            raw_orders.append(item)
        elif kind == "CUST" and sk == "PROFILE":
            if item.get("merged_into"):
                merged[ident] = str(item["merged_into"])
            else:
                data.customers += 1
                if item.get("user_id") or item.get("email"):
                    data.known_customers += 1
                _count_segments(data, item)
        elif kind == "ORDER" and sk.startswith(FORWARD_CREATE[0]) and sk.endswith(FORWARD_CREATE[1]):
            data.forwards.append(_forward(ident, sk, item))
        elif kind == "CUST" and sk.startswith("HIST#"):
            raw_hist.append((ident, item))
        elif kind == ENGAGEMENT_KIND and sk == keys.MESSAGE_ENGAGEMENT_SK and item.get("journey"):
            engagement.append(
                EngagementRec(
                    journey=str(item["journey"]),
                    step_id=str(item.get("step") or "?"),
                    delivered="delivered_at" in item,
                    opened="opened_at" in item,
                    clicked="clicked_at" in item,
                    variant=None if item.get("variant") is None else str(item["variant"]),
                )
            )

    def resolve(customer: str) -> str:
        seen: set[str] = set()
        while customer in merged and customer not in seen:
            seen.add(customer)
            customer = merged[customer]
        return customer

    for item in raw_orders:
        if item.get("currency"):
            data.currencies.add(str(item["currency"]))
        data.orders.append(
            OrderRec(
                order_id=str(item.get("order_id")),
                customer_id=resolve(str(item.get("customer_id"))),
                at=float(item["at"]),
                total=float(item.get("total") or 0),
                refunded=float(item.get("refunded") or 0),
                status=str(item.get("status") or "completed"),
                delivered_at=None if item.get("delivered_at") is None else float(item["delivered_at"]),
            )
        )
    for customer, item in raw_hist:
        who, at, journey = resolve(customer), float(item["at"]), str(item["journey"])
        record_type = item.get("type")
        if record_type == "sent":
            data.sends.append(
                SentRec(
                    customer_id=who,
                    journey=journey,
                    at=at,
                    step_id=None if item.get("step_id") is None else str(item["step_id"]),
                    variant=None if item.get("variant") is None else str(item["variant"]),
                    channel=None if item.get("channel") is None else str(item["channel"]),
                    message_id=None if item.get("message_id") is None else str(item["message_id"]),
                    kind=None if item.get("kind") is None else str(item["kind"]),
                )
            )
        elif record_type == "entered":
            group = item.get("group")
            data.entries.append(EntryRec(who, journey, at, None if group is None else str(group)))
    data.orders.sort(key=lambda o: (o.at, o.order_id))
    data.sends.sort(key=lambda s: s.at)
    data.entries.sort(key=lambda e: e.at)
    data.forwards.sort(key=lambda f: (f.order_at, f.order_id, f.partner_id))
    data.engagement = engagement or None
    return data


def _forward(order_id: str, sk: str, item: dict[str, Any]) -> ForwardRec:
    def when(name: str) -> float | None:
        return None if item.get(name) is None else float(item[name])

    return ForwardRec(
        order_id=str(item.get("order_id") or order_id),
        partner_id=str(item.get("partner_id") or sk[len(FORWARD_CREATE[0]) : -len(FORWARD_CREATE[1])]),
        order_at=float(item.get("order_at") or item.get("first_at") or 0),
        status=str(item.get("status") or "pending"),
        accepted_at=when("accepted_at"),
        shipped_at=when("shipped_at"),
        delivered_at=when("delivered_at"),
    )


def _count_segments(data: ReportData, profile: dict[str, Any]) -> None:
    """Tally a profile's lifecycle stage, RFM group and segment memberships (as the fold keeps them)."""
    stats = profile.get("orders") or {}
    revenue = float(stats.get("revenue") or 0) - float(stats.get("refunded") or 0)
    rfm = profile.get("rfm") or {}
    tallies = [
        (data.stages, [str(profile.get("lifecycle") or "prospect")]),
        (data.rfm_groups, [str(rfm.get("group") or "unscored")]),
        (data.segments, [str(s) for s in profile.get("segments") or []]),
    ]
    for tally, names in tallies:
        for name in names:
            row = tally.setdefault(name, [0, 0.0])
            row[0] += 1
            row[1] += revenue


# --- sources ------------------------------------------------------------------------------------


def scan_table(ddb: Any, table: str, store: str | None = None) -> Iterator[dict[str, Any]]:
    """Every item of the table (of one store's partitions, if given), page by page.

    A report is an offline batch job: a Scan is acceptable here, never on a request path."""
    args: dict[str, Any] = {"TableName": table}
    if store:
        args["FilterExpression"] = "begins_with(pk, :p)"
        args["ExpressionAttributeValues"] = {":p": {"S": f"STORE#{store}#"}}
    while True:
        resp = ddb.scan(**args)
        for item in resp.get("Items", []):
            yield from_item(item)
        if "LastEvaluatedKey" not in resp:
            return
        args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without a trailing slash)."""
    if not url.startswith("s3://") or len(url) <= 5 or url[5] == "/":
        raise ReportDataError(f"--export must look like s3://bucket/prefix, got {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def export_files(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The data files of the one export under `prefix` (the export's own folder or the folder the
    export was asked to write to)."""
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
        keys += [o["Key"] for o in page.get("Contents", [])]
    # DynamoDB names its data files <random>.json.gz; moto 5.2.5 (the local emulator's exports) <uuid>.gz
    data = sorted(k for k in keys if "/AWSDynamoDB/" in k and "/data/" in k and k.endswith(".gz"))
    exports = sorted({k.split("/AWSDynamoDB/", 1)[1].split("/", 1)[0] for k in data})
    if not exports:
        raise ReportDataError(
            f"no DynamoDB export under s3://{bucket}/{prefix} (expected AWSDynamoDB/<id>/data/*.json.gz)"
        )
    if len(exports) > 1:
        raise ReportDataError(
            f"{len(exports)} exports under s3://{bucket}/{prefix}: name one, e.g. "
            f"--export s3://{bucket}/{prefix + '/' if prefix else ''}AWSDynamoDB/{exports[-1]}"
        )
    return data


def parse_export_lines(lines: Iterable[bytes | str]) -> Iterator[dict[str, Any]]:
    """DynamoDB JSON lines (``{"Item": {...}}``) -> plain items, as the table Scan gives them."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            yield from_item(record["Item"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReportDataError(f"line {number}: not a DynamoDB export item ({exc})") from None


def read_export(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    for key in export_files(s3, bucket, prefix):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with gzip.open(io.BytesIO(body), "rb") as lines:
            try:
                yield from parse_export_lines(lines)
            except ReportDataError as exc:
                raise ReportDataError(f"s3://{bucket}/{key}: {exc}") from None


def export_lines(items: Iterable[dict[str, Any]]) -> bytes:
    """Plain items as one gzip'd export data file (what DynamoDB writes; tests and tools use it)."""
    from shared.platform.aws import to_item

    text = "".join(json.dumps({"Item": to_item(i)}, default=str) + "\n" for i in items)
    return gzip.compress(text.encode())
