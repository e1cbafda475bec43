"""The table's global secondary indexes: the queries that must never become a Scan.

Each index is sparse: only items that carry its partition attribute are in it, so a profile
without a birthday costs nothing in `by-birthday`. Partition values start with the store, so
stores never share (or heat) a partition. The CDK stack, the emulator and moto tests all build
the indexes from this list (through infra/description.py).
"""

from __future__ import annotations

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

INDEXES: tuple[IndexSpec, ...] = (BY_BIRTHDAY, BY_ANNIVERSARY, AT_RISK, BY_SKU, STORES)


def birthday_key(store: str, month_day: str) -> str:
    return f"STORE#{store}#BDAY#{month_day}"


def anniversary_key(store: str, month_day: str) -> str:
    return f"STORE#{store}#ANNIV#{month_day}"


def at_risk_key(store: str, day: str) -> str:
    return f"STORE#{store}#RISK#{day}"


def back_in_stock_key(store: str, sku: str) -> str:
    return f"STORE#{store}#BIS#{sku}"


STORES_LISTING = "STORES"
