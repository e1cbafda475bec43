"""The monthly retention sweep: what DynamoDB's TTL does not reach.

TTL attributes do most of the work (Store.data_retention): a profile expires `inactive_profile_days`
after its last event, a cart `cart_days` after its last activity, history lines after
`message_history_days`, processed-event markers after `event_marker_days`. TTL deletes lag (up to a
few days) and cannot follow a profile to what hangs off it (segment memberships, subscriptions,
aliases, re-entry records, orders), so once a month this sweep reads the store's items (one Scan,
like an erasure) and:
- erases every customer whose profile is past its limit (as an erasure would, but without a
  tombstone: a customer let go for inactivity may come back and be welcomed again);
- deletes what a customer partition, alias or journey run still holds for a profile TTL removed;
- deletes forward records to fulfilment partners past `message_history_days` from their order (the
  order document in them holds the shipping address; the report reads them a year back), and the
  partners' rate-limit counters TTL has not yet removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.privacy_store import PrivacyStore
from shared.domain.privacy import DataRetention, forward_expired, rate_counter_expired
from shared.platform import keys
from shared.services.privacy.collect import Who
from shared.services.privacy.erase import Eraser

logger = logging.getLogger("boomerang")
GRACE_S = 86400  # an item younger than this may belong to a profile being written right now


@dataclass
class Sweep:
    store_id: str
    customers_expired: int = 0
    orphans_removed: dict[str, int] = field(default_factory=dict)


def _customer_of(pk: str, store_id: str) -> str | None:
    prefix = f"STORE#{store_id}#CUST#"
    return pk[len(prefix) :] if pk.startswith(prefix) else None


def sweep(store: PrivacyStore, eraser: Eraser, store_id: str, policy: DataRetention, now: float) -> Sweep:
    result = Sweep(store_id)
    alive: set[str] = set()
    expired: set[str] = set()
    hanging: list[tuple[str, dict[str, Any]]] = []  # (customer id, item) not a profile
    aliases: list[dict[str, Any]] = []
    orphans: list[dict[str, Any]] = []
    for item in store.scan_store(store_id):
        for kind, done in (
            ("forward", forward_expired(item, policy, now)),
            ("rate", rate_counter_expired(item, now)),
        ):
            if done:
                orphans.append(item)
                result.orphans_removed[kind] = result.orphans_removed.get(kind, 0) + 1
        pk, sk = str(item["pk"]), str(item["sk"])
        customer = _customer_of(pk, store_id)
        if customer is not None and sk == keys.PROFILE_SK and item.get("merged_into"):
            alive.add(customer)  # a merged visitor goes with the customer it was merged into
        elif customer is not None and sk == keys.PROFILE_SK:
            limit = item.get("expires_at") or policy.profile_expires_at(item.get("last_seen_at"), now)
            (expired if float(limit) <= now else alive).add(customer)
        elif customer is not None:
            hanging.append((customer, item))
        elif pk.startswith(f"STORE#{store_id}#ALIAS#"):
            aliases.append(item)
    for customer in sorted(expired):
        if customer.startswith(("u:", "a:")):
            eraser.erase(Who(store_id=store_id, customer=customer), tombstone=False)
            result.customers_expired += 1
    for customer, item in hanging:
        if customer not in alive and customer not in expired and _older_than(item, now - GRACE_S):
            orphans.append(item)
            kind = str(item["sk"]).split("#", 1)[0].lower()
            result.orphans_removed[kind] = result.orphans_removed.get(kind, 0) + 1
    for alias in aliases:
        if alias.get("customer_id") not in alive and _older_than(alias, now - GRACE_S):
            orphans.append(alias)
            result.orphans_removed["alias"] = result.orphans_removed.get("alias", 0) + 1
    store.delete(orphans)
    logger.info(
        "retention sweep",
        extra={"store": store_id, "expired": result.customers_expired, "orphans": result.orphans_removed},
    )
    return result


def _older_than(item: dict[str, Any], cut: float) -> bool:
    for name in ("at", "since", "entered_at", "subscribed_at", "received_at"):
        if item.get(name) is not None:
            return float(item[name]) < cut
    return True  # nothing says when: a cap ledger or the like, no use without its profile


def sweep_all(store: PrivacyStore, eraser: Eraser, stores: Any, now: float) -> list[Sweep]:
    """Every store's sweep, with its own policy (`stores`: a StoreDirectory)."""
    out = []
    for store_id in stores.store_ids():
        settings = stores.get(store_id)
        out.append(
            sweep(store, eraser, store_id, settings.data_retention if settings else DataRetention(), now)
        )
    return out
