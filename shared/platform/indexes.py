"""The table's global secondary indexes: the queries that must never become a Scan.

Each index is sparse: only items that carry its partition attribute are in it, so a profile
without a birthday costs nothing in `by-birthday`. Partition values start with the store, so
stores never share (or heat) a partition. The CDK stack, the emulator and moto tests all build
the indexes from this list (through infra/description.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition: str  # attribute holding the partition value
    sort: str  # attribute holding the sort value
    include: tuple[str, ...] = ()  # non-key attributes copied into the index (projection INCLUDE)


# Profiles whose birthday (month-day) is a given day: the daily birthday run.
BY_BIRTHDAY = IndexSpec("by-birthday", partition="bday", sort="pk", include=("customer_id",))
# Profiles whose first order was on a given month-day: the first-order anniversary run.
BY_ANNIVERSARY = IndexSpec("by-anniversary", partition="anniv", sort="pk", include=("customer_id",))
# Profiles that become at risk on a given day (last order + their own expected interval).
AT_RISK = IndexSpec("at-risk", partition="risk", sort="pk", include=("customer_id",))
# Back-in-stock subscriptions waiting for a SKU.
BY_SKU = IndexSpec("by-sku", partition="bis", sort="pk", include=("customer_id", "subscribed_at"))
# Every store (the scheduled runs go store by store).
STORES = IndexSpec("stores", partition="listing", sort="pk", include=("store_id",))
# A store's buyers (profiles with a counted order) with their RFM values and current scores: the
# daily run pages through it to recompute the store's quintile edges and to find whose scores the
# new edges change, reading no profile.
RFM_LAST_ORDER = "rfm_last_order_at"
RFM_FREQUENCY = "rfm_frequency"
RFM_MONETARY = "rfm_monetary"
RFM_SCORE = "rfm_score"  # "RFM" digits as last scored, e.g. "545"
BUYERS = IndexSpec(
    "buyers",
    partition="buyer",
    sort="pk",
    include=("customer_id", RFM_LAST_ORDER, RFM_FREQUENCY, RFM_MONETARY, RFM_SCORE),
)
# Profiles whose segments or lifecycle stage change with time alone on a given UTC day (an event
# window closing, the at-risk day, churn, the recency score passing an edge): the daily re-check.
SEGMENTS_DUE = IndexSpec("segments-due", partition="segdue", sort="pk", include=("customer_id",))
# Segment membership items, one per (store, segment, customer): members(store, segment) pages it.
BY_SEGMENT = IndexSpec("by-segment", partition="seg", sort="pk", include=("customer_id", "since"))

INDEXES: tuple[IndexSpec, ...] = (
    BY_BIRTHDAY,
    BY_ANNIVERSARY,
    AT_RISK,
    BY_SKU,
    STORES,
    BUYERS,
    SEGMENTS_DUE,
    BY_SEGMENT,
)


def birthday_key(store: str, month_day: str) -> str:
    return f"STORE#{store}#BDAY#{month_day}"


def anniversary_key(store: str, month_day: str) -> str:
    return f"STORE#{store}#ANNIV#{month_day}"


def at_risk_key(store: str, day: str) -> str:
    return f"STORE#{store}#RISK#{day}"


def back_in_stock_key(store: str, sku: str) -> str:
    return f"STORE#{store}#BIS#{sku}"


# Buyers are spread over a few partitions per store, so a busy store's order folds never heat one
# index partition; the daily run reads them all.
BUYER_SHARDS = 4


def buyer_shard(customer_id: str) -> int:
    return int(hashlib.sha256(customer_id.encode()).hexdigest()[:8], 16) % BUYER_SHARDS


def buyers_key(store: str, shard: int) -> str:
    return f"STORE#{store}#BUYERS#{shard}"


def segments_due_key(store: str, day: str) -> str:
    return f"STORE#{store}#SEGDUE#{day}"


def segment_key(store: str, segment: str) -> str:
    return f"STORE#{store}#SEG#{segment}"


STORES_LISTING = "STORES"
