"""Erasure (GDPR Art. 17): every item that holds the person's data goes, their running journeys
stop, and only hashed tombstones stay.

Order matters, so that nothing is re-created behind the erasure:
1. the tombstones (one per user id, anonymous id, email, phone: a SHA-256 and the time) — from now
   on the fold and the journey trigger drop any event of theirs received before this moment;
2. their running Step Functions executions are stopped (names are deterministic: execution_name);
3. their items are deleted; orders stay for the store's revenue figures under a random pseudonym,
   their forwards to fulfilment partners stay for the fulfilment figures under the same pseudonym,
   scrubbed of the order document (address, name, contact), answers and tracking (scrub_forward),
   and offer codes given stay given without the recipient;
4. their profile keys are read once more, in case a fold that began before step 1 committed after
   the Scan passed by.

Idempotent: run it again and it finds nothing more to remove. The result holds counts only.
Exports in the analytics bucket (full-table copies for the monthly report) are not rewritten: they
expire 30 days after they were written (the bucket's lifecycle rule on exports/), so an erased
customer is gone from them within 30 days, inside GDPR's one month.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.privacy_store import PrivacyStore
from shared.domain.journey_decisions import execution_name
from shared.domain.privacy import EXPORT_RETENTION_DAYS, Subject, journey_instance, scrub_forward
from shared.platform import clock, keys
from shared.services.privacy.collect import Collected, Who, collect, resolve

logger = logging.getLogger("boomerang")


@dataclass
class Erasure:
    status: str  # erased | not_found (nothing held; tombstones written all the same) | already_erased
    removed: dict[str, int] = field(default_factory=dict)
    pseudonymised_orders: int = 0
    scrubbed_forwards: int = 0
    # partners that were sent the person's orders: the store tells them of the erasure (Art. 19)
    partners_to_notify: list[str] = field(default_factory=list)
    executions_stopped: int = 0
    tombstones: int = 0
    exports_expire_within_days: int = EXPORT_RETENTION_DAYS

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "removed": self.removed,
            "pseudonymised_orders": self.pseudonymised_orders,
            "scrubbed_forwards": self.scrubbed_forwards,
            "partners_to_notify": self.partners_to_notify,
            "executions_stopped": self.executions_stopped,
            "tombstones": self.tombstones,
            "exports_expire_within_days": self.exports_expire_within_days,
        }


class Eraser:
    """`sfn` and `state_machine_arn` stop the person's running journeys (None: none are stopped,
    e.g. a table-only tool; their next step then finds no profile and sends nothing)."""

    def __init__(self, store: PrivacyStore, sfn: Any = None, state_machine_arn: str | None = None) -> None:
        self.store = store
        self.sfn = sfn
        self.state_machine_arn = state_machine_arn

    def erase(self, who: Who, *, requested_at: float | None = None, tombstone: bool = True) -> Erasure:
        """`requested_at`: when the request was made (its tombstones carry that time). A request
        already carried out (the tombstone of the identifier it names is as recent) is not run
        again: a redelivered or replayed request cannot erase a customer who came back since.
        `tombstone` False: retention's own deletion of an inactive customer, who may come back."""
        at = clock.now_ts() if requested_at is None else requested_at
        named = who.named()
        if tombstone and requested_at is not None:
            done = self.store.tombstones.erased_at(who.store_id, [named])
            if done and max(done) >= requested_at:
                return Erasure(status="already_erased")
        subject = resolve(self.store, who)
        written = self.store.tombstones.put(who.store_id, subject.identifiers(), at) if tombstone else 0
        found = collect(self.store, subject)
        stopped = self._stop_runs(found)
        result = self._remove(found, at)
        result.tombstones, result.executions_stopped = written, stopped
        result.removed["profiles"] = result.removed.get("profiles", 0) + self._late_profiles(subject)
        if not any(result.removed.values()) and not (result.pseudonymised_orders or result.scrubbed_forwards):
            result.status = "not_found"
        logger.info(
            "customer erased",
            extra={
                "store": who.store_id,
                "status": result.status,
                "removed": result.removed,
                "stopped": stopped,
            },
        )
        return result

    def _stop_runs(self, found: Collected) -> int:
        if self.sfn is None or not self.state_machine_arn:
            return 0
        stopped = 0
        for item in found.items.get("journey_records", []):
            if item.get("sk") != "STATE" or item.get("status") != "active":
                continue
            run = journey_instance(str(item["pk"]))
            if run is None:
                continue
            journey, instance = run
            name = execution_name(found.subject.store_id, journey, instance, int(item.get("generation") or 0))
            arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
            try:
                self.sfn.stop_execution(executionArn=arn, cause="customer erased (GDPR Art. 17)")
                stopped += 1
            except (self.sfn.exceptions.ExecutionDoesNotExist, self.sfn.exceptions.InvalidArn):
                pass  # already ended, or never started: nothing to stop
        return stopped

    def _remove(self, found: Collected, at: float) -> Erasure:
        result = Erasure(status="erased")
        doomed: list[dict[str, Any]] = []
        pseudonym = f"erased:{secrets.token_hex(8)}"  # one per erasure: their orders stay one buyer
        for kind, items in found.items.items():
            if kind == "forwards":
                # an already-scrubbed record (a rerun) was not found: owns() needs their customer id
                for fwd in items:
                    if self.store.scrub_forward(fwd, lambda i: scrub_forward(i, pseudonym, at)):
                        result.scrubbed_forwards += 1
                result.partners_to_notify = sorted({str(f.get("partner_id")) for f in items})
                continue
            if kind == "orders":
                for order in items:
                    self.store.pseudonymise_order(order, pseudonym)
                result.pseudonymised_orders += len(items)
                continue
            if kind == "offer_codes":
                for given in items:
                    self.store.forget_recipient(given)
                result.removed[kind] = len(items)
                continue
            doomed += items
            result.removed[kind] = len(items)
        devices = sum(len(p.get("devices") or {}) for p in found.items.get("profiles", []))
        if devices:
            result.removed["devices"] = devices
        self.store.delete(doomed)
        return result

    def _late_profiles(self, subject: Subject) -> int:
        late = [
            p
            for cid in sorted(subject.customer_ids)
            if (p := self.store.get(keys.customer_pk(subject.store_id, cid), keys.PROFILE_SK)) is not None
        ]
        return self.store.delete(late) if late else 0
