"""A journey step's exactly-once send record, and its place in the customer's frequency-cap ledger.

The record is claimed before any provider is called, just after the cap place (a conditional write
on the ledger's version: two journeys cannot both take a customer's last place); it is finished with
the outcome, or released when nothing went out so Step Functions' retry may send.
shared/services/journeys/deliver.py uses it.

A step λ can die holding a claim (timeout, out of memory). Every claim therefore has a lease, longer
than the λ can live, and passes through two states before its outcome:
- "claimed": nothing has reached a provider yet (policy, offer draw, rendering). A retry after the
  lease takes the claim over and sends: exactly one message.
- "handed-off": written just before the provider call. If the λ died now, the provider may or may
  not have accepted the message, and neither SES, SNS nor Pinpoint can be asked by an id we choose
  (SES SendEmail has no idempotency token). A retry after the lease records "unknown" and never
  sends again: at most one message, and support sees which ones to look into.
Until the lease ends, a retry waits for it rather than deciding twice.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.journey_store import CapConflict
from shared.domain.delivery import CapEntry, DeliveryPolicy, cap_allows, cap_state
from shared.services.journeys.context import Deps, StepInput

# Longer than the journey step λ may run (infra/description.py: journey_step, timeout 60 s), so a claim
# is only taken over once its holder has certainly stopped (tests/unit/test_claim_lease.py checks it).
LEASE_S = 180
HANDED_OFF = "handed-off"


@dataclass
class Claim:
    """The step's exactly-once send record, the place it holds in the customer's cap ledger, and the
    history line written beside it."""

    deps: Deps
    state: StepInput
    journey_id: str
    instance: str  # as the history records it: generation and trigger included
    step_id: str
    customer_id: str | None  # whose history the lines go to
    base: dict[str, Any]  # what every outcome of the step carries: step, step id, variant
    now: float
    token: str | None = None
    ledger: list[CapEntry] = field(default_factory=list)  # the customer's recent sends, as last read
    replaces: str | None = None  # an expired, unsent claim this attempt takes over
    # the cap ledger as this attempt's claim wrote it (entries, version): confirm_cap needs no re-read
    written: tuple[list[dict[str, Any]], int] | None = None

    @property
    def send_id(self) -> str:
        """The step's place in the cap ledger."""
        key = f"{self.state.store_id}|{self.journey_id}|{self.instance}|{self.step_id}"
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    def exists(self) -> bool:
        return (
            self.deps.journeys.get_send(self.state.store_id, self.journey_id, self.instance, self.step_id)
            is not None
        )

    def resolve(self) -> dict[str, Any] | None:
        """What an earlier attempt left: None to go on (no record, or an expired unsent claim to take
        over); else what this attempt does instead (already handled, wait for the lease, unknown)."""
        found = self.deps.journeys.get_send(self.state.store_id, self.journey_id, self.instance, self.step_id)
        if found is None:
            return None
        status = found.get("status")
        if status not in ("claimed", HANDED_OFF):
            return self.already_handled()
        lease_until = float(found.get("lease_until") or float(found.get("at") or 0) + LEASE_S)
        if self.now < lease_until:
            return {
                **self.base,
                "type": "deferred",
                "until": lease_until,
                "reason": "another attempt holds this step's send record until its lease ends",
            }
        if status == "claimed":
            self.replaces = str(found["claim"])
            return None
        # died while the provider was answering: it may have the message; never send it again
        reason = "the step stopped while the provider was answering; not sent again (at most once)"
        self.token = str(found["claim"])
        try:
            self.finish({"status": "unknown", "reason": reason})
        except self.deps.journeys.ddb.exceptions.ConditionalCheckFailedException:
            return self.already_handled()  # another retry resolved it first
        self.record({**self.base, "type": "unknown", "reason": reason})
        return {**self.base, "type": "unknown", "reason": reason}

    def hand_off(self) -> None:
        """Just before a provider call: from here a lost attempt may have sent (see the module doc)."""
        self.finish({"status": HANDED_OFF, "handed_off_at": self.now})

    def already_handled(self) -> dict[str, Any]:
        return {**self.base, "type": "already-handled", "reason": "send record exists; never sent twice"}

    def skip(self, reason: str) -> dict[str, Any]:
        """Not sent, and why: recorded with the same exactly-once claim, so the history says it once."""
        token = self.deps.journeys.claim_send(
            self.state.store_id,
            self.journey_id,
            self.instance,
            self.step_id,
            {"reason": reason, "at": self.now, "customer_id": self.customer_id, **self.base},
            replaces=self.replaces,
        )
        if token is not None and self.replaces is not None and self.customer_id:
            # the claim taken over may have held a cap place: nothing goes out, so it goes back
            self.deps.journeys.release_cap(self.state.store_id, self.customer_id, self.send_id)
        if token is not None:
            self.deps.journeys.finish_send(
                self.state.store_id,
                self.journey_id,
                self.instance,
                self.step_id,
                token,
                {"status": "skipped"},
            )
            self.record({**self.base, "type": "skipped", "reason": reason})
        return {**self.base, "type": "skipped", "reason": reason}

    def take(
        self,
        record: dict[str, Any],
        customer_id: str,
        marketing: bool,
        first: str,
        policy: DeliveryPolicy,
        on_cap: str,
    ) -> dict[str, Any] | None:
        """Claim the send record and, for marketing, a place within the cap (a conditional write each).
        None once claimed; else what the step does instead (skipped, deferred, already handled)."""
        for _ in range(5):
            cap = None
            if marketing:
                entries, version = self.deps.journeys.cap_ledger(self.state.store_id, customer_id)
                # a claim taken over held this very place: it is not another send
                self.ledger = [
                    CapEntry.model_validate(e) for e in entries if e.get("send_id") != self.send_id
                ]
                fits_at = cap_allows(self.ledger, first, policy, self.now)
                if fits_at is not None:
                    if fits_at == math.inf:
                        return self.skip(f"marketing {first} disabled (cap of 0)")
                    if on_cap == "defer":
                        return {
                            **self.base,
                            "type": "deferred",
                            "until": fits_at,
                            "reason": "frequency cap reached",
                        }
                    return self.skip("frequency cap reached")
                live = [
                    *cap_state(self.ledger, self.now),
                    CapEntry(at=self.now, channel=first, send_id=self.send_id),
                ]
                cap = (customer_id, [e.model_dump() for e in live], version)
            try:
                self.token = self.deps.journeys.claim_send(
                    self.state.store_id,
                    self.journey_id,
                    self.instance,
                    self.step_id,
                    {**record, "lease_until": self.now + LEASE_S},
                    cap=cap,
                    replaces=self.replaces,
                    send_id=self.send_id,
                )
                if self.token is not None and cap is not None:
                    self.written = (cap[1], cap[2] + 1)
                break
            except CapConflict:
                # another journey just messaged this customer: read the ledger again, a moment later
                time.sleep(random.uniform(0, 0.05))
                continue
        else:
            raise CapConflict("cap ledger kept changing")
        return self.already_handled() if self.token is None else None

    def finish(self, outcome: dict[str, Any]) -> None:
        assert self.token is not None  # only a claimed record is finished
        self.deps.journeys.finish_send(
            self.state.store_id, self.journey_id, self.instance, self.step_id, self.token, outcome
        )

    def record(self, entry: dict[str, Any]) -> None:
        self.deps.journeys.record(
            self.state.store_id, self.journey_id, self.instance, self.customer_id, entry
        )

    def release(self, customer_id: str) -> None:
        """Nothing went out: the record and the cap place go back, so a retry may send."""
        assert self.token is not None
        self.deps.journeys.release_send(
            self.state.store_id, self.journey_id, self.instance, self.step_id, self.token
        )
        self.deps.journeys.release_cap(self.state.store_id, customer_id, self.send_id)

    def give_up(self, status: str, reason: str, customer_id: str) -> dict[str, Any]:
        """The claimed step ends without a send: the record says why, the cap place goes back."""
        self.finish({"status": status, "reason": reason})
        self.deps.journeys.release_cap(self.state.store_id, customer_id, self.send_id)
        self.record({**self.base, "type": status, "reason": reason})
        return {**self.base, "type": status, "reason": reason}
