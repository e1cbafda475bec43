"""The pure decisions a journey makes at run time, from its definition and fresh state.

Does an event start it, may this customer enter, which experiment arm or holdout are they in,
and at each step: exit, wait or send. A journey execution (Step Functions) only waits and loops;
every decision is made here, so it is tested without AWS.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.domain.carts import Cart
from shared.domain.conditions import lookup, value_matches
from shared.domain.journeys import Entry, Journey, Step, Trigger
from shared.domain.profiles import Profile

# ---------------------------------------------------------------------------------------------
# Matching and entry


def matches(trigger: Trigger, event_name: str | None, properties: dict[str, Any]) -> bool:
    if trigger.event is None or event_name != trigger.event:
        return False
    return all(value_matches(lookup(properties, p), t) for p, t in trigger.where.items())


def entry_problem(
    entry: Entry, profile: Profile | None, segment_problem: Callable[[str], str | None] | None = None
) -> str | None:
    """Why this customer may not enter, or None. Named, so the history answers "why not me?".

    `segment_problem(segment_id)` says why the profile is not in a segment (None: it is); without
    it a segment condition cannot hold."""
    if entry.known is not None:
        known = bool(profile and (profile.user_id or profile.email))
        if known != entry.known:
            return "an anonymous visitor" if entry.known else "already identified"
    orders = profile.orders.count if profile else 0
    if entry.has_ordered is not None and (orders > 0) != entry.has_ordered:
        return "has ordered before" if orders else "has not ordered yet"
    if entry.min_orders is not None and orders < entry.min_orders:
        return f"{orders} orders, needs at least {entry.min_orders}"
    if entry.max_orders is not None and orders > entry.max_orders:
        return f"{orders} orders, allows at most {entry.max_orders}"
    traits = profile.traits if profile else {}
    for name, test in entry.traits.items():
        if not value_matches(traits.get(name), test):
            return f"trait {name} does not match"
    if entry.interests_any:
        held = traits.get("interests") or []
        held = [held] if isinstance(held, str) else held
        wanted = {i.lower() for i in entry.interests_any}
        if not any(str(h).lower() in wanted for h in held):
            return "no matching interest"
    if entry.loyalty_tiers:
        tier = _loyalty_tier(profile)
        if tier not in entry.loyalty_tiers:
            return f"loyalty tier {tier or 'none'} not in {', '.join(entry.loyalty_tiers)}"
    if entry.consent:
        consent = profile.consent if profile else {}
        if not any(c in consent and consent[c].status == "subscribed" for c in entry.consent):
            return f"no {' or '.join(entry.consent)} consent"
    if entry.segment or entry.segments_any:
        check = segment_problem or (lambda s: "segments cannot be checked here")
        if entry.segment:
            problem = check(entry.segment)
            if problem:
                return f"not in segment {entry.segment}: {problem}"
        if entry.segments_any and all(check(s) for s in entry.segments_any):
            return f"in none of the segments {', '.join(entry.segments_any)}"
    return None


def awaiting_confirmation(
    entry: Entry, profile: Profile | None, segment_problem: Callable[[str], str | None] | None, now: float
) -> float | None:
    """When the customer asked for email (double opt-in, still `pending`), if the journey needs email
    consent and that confirmation is all that stands in its way; None otherwise."""
    from shared.domain.fold import CONFIRM_LINK_LIFETIME_S

    if profile is None or "email" not in (entry.consent or []):
        return None
    held = profile.consent.get("email")
    if held is None or held.status != "pending" or now >= held.at + CONFIRM_LINK_LIFETIME_S:
        return None
    if entry_problem(entry.model_copy(update={"consent": []}), profile, segment_problem) is not None:
        return None
    return held.at


def _loyalty_tier(profile: Profile | None) -> str | None:
    loyalty = getattr(profile, "loyalty", None)
    return getattr(loyalty, "tier", None)


def _unit(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:13], 16) / 16**13


def bucket(journey_id: str, customer_id: str) -> float:
    """A customer's stable place in [0, 1) for a journey's experiments: the same on every step and
    every retry, independent across journeys."""
    return _unit(f"variant|{journey_id}|{customer_id}")


def in_holdout(journey: Journey, customer_id: str) -> bool:
    return journey.holdout > 0 and _unit(f"holdout|{journey.id}|{customer_id}") < journey.holdout


# ---------------------------------------------------------------------------------------------
# Instances


def execution_name(store_id: str, journey: str, instance: str, generation: int = 0) -> str:
    """Deterministic and within Step Functions' 80-character name rules: one execution per instance
    and generation (a cart shopped again after its journey ended gets generation 1, 2, ...)."""
    digest = hashlib.sha256(f"{store_id}\n{journey}\n{instance}".encode()).hexdigest()[:28]
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", f"{store_id}-{journey}")[:44]
    return f"{readable}-{digest}" + (f"-g{generation}" if generation else "")


def record_instance(instance: str, generation: int, trigger: str | None = None) -> str:
    """The key one run's send records and history live under. With the trigger that started it, so
    a run Step Functions starts again under a recycled name (names are kept 90 days) never finds the
    earlier run's send records; without one (built-ins, old inputs), the plain id or ~g<generation>."""
    if trigger:
        return f"{instance}~{hashlib.sha256(trigger.encode()).hexdigest()[:12]}"
    return instance if not generation else f"{instance}~g{generation}"


# ---------------------------------------------------------------------------------------------
# Decisions


@dataclass(frozen=True)
class Decision:
    action: Literal["exit", "wait", "send"]
    reason: str
    wait_seconds: int = 0


@dataclass(frozen=True)
class Situation:
    """Fresh state read by the step λ for one decision."""

    now: float
    started_at: float  # receive time of the trigger (or the occasion's local midnight)
    tz: ZoneInfo
    profile: Profile | None = None
    cart: Cart | None = None
    order_status: str | None = None  # per-order journeys: completed | cancelled | missing
    activity_at: float | None = None  # the customer's last relevant activity (from: activity)
    yielded_to: str | None = None  # a journey with precedence took this instance over
    variant_after: int | None = None  # the customer's experiment arm delays this step differently
    delivered_at: float | None = None  # per-order journeys: when the whole order arrived, if known


def due_at(step: Step, situation: Situation, after: int | None = None) -> float:
    base = situation.started_at
    if step.from_ == "activity" and situation.activity_at is not None:
        base = situation.activity_at  # the customer's latest action restarts the clock
    elif step.from_ == "delivery" and situation.delivered_at is not None:
        base = situation.delivered_at  # unknown delivery: counts from the order, as if `from: trigger`
    due = base + (step.after if after is None else after)
    if step.at is None:
        return due
    local = datetime.fromtimestamp(due, tz=UTC).astimezone(situation.tz)
    target = _local(local.date(), step.at, situation.tz)
    if target < due:
        target = _local(local.date() + timedelta(days=1), step.at, situation.tz)
    return target


def _local(day: date, at: dtime, tz: ZoneInfo) -> float:
    # a wall time skipped by a DST change resolves forwards (fold=0 then normalised through UTC)
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC).timestamp()


def decide(journey: Journey, step_index: int, s: Situation) -> Decision:
    """Exit, wait or send: the same rules for every journey, from fresh state."""
    if s.yielded_to:
        return Decision("exit", f"{s.yielded_to} took over")
    if journey.per == "cart":
        cart = s.cart
        if cart is None:
            return Decision("exit", "cart not found")
        if cart.status == "converted":
            return Decision("exit", f"customer bought (order {cart.order_id})")
        last_order = s.profile.orders.last_order_at if s.profile else None
        if last_order is not None and last_order >= cart.last_activity_at:
            return Decision("exit", "customer bought after the last cart activity")
        if not cart.items:
            return Decision("exit", "cart emptied")
    if journey.per == "order" and s.order_status == "cancelled":
        return Decision("exit", "order cancelled")
    seen = getattr(s.profile, "last_event_at", None) or {}
    for name in journey.exit_on:
        at = seen.get(name)
        if at is not None and at > s.started_at:
            return Decision("exit", f"{name} after the journey started")
    if step_index >= len(journey.steps):
        return Decision("exit", "all steps done")
    step = journey.steps[step_index]
    due = due_at(step, s, s.variant_after)
    if s.now < due:
        # also covers newer activity when timed from it: the clock restarts from the last action
        return Decision("wait", f"waiting for {step.id}", max(1, math.ceil(due - s.now)))
    return Decision("send", f"{step.id} due")


CONFIRMATION_SETTLE_S = 15 * 60  # how long to wait for the profile to record the consent request
CONFIRMATION_SETTLE_REAL_FLOOR_S = 60  # and at least this long on the wall clock (clock.settle_window)
CONFIRMATION_POLL_S = 300


def decide_confirmation(
    journey: Journey,
    step_index: int,
    profile: Profile | None,
    started_at: float,
    trigger: str | None,
    now: float,
    settle_s: float = CONFIRMATION_SETTLE_S,
) -> Decision:
    """The double opt-in journey: one email for the consent request that started it, while pending.

    `settle_s`: how long to wait for the profile to record that request (the caller stretches it
    when the emulator compresses time)."""
    consent = profile.consent.get("email") if profile else None
    ours = consent is not None and consent.message_id == trigger
    if not ours and (consent is None or consent.at < started_at) and now < started_at + settle_s:
        # the profile λ reads the same event from its own queue and may not have folded it yet
        return Decision("wait", "waiting for the consent request to reach the profile", CONFIRMATION_POLL_S)
    if consent is None or profile is None:
        return Decision("exit", "no email consent request recorded")
    if consent.status == "subscribed":
        return Decision("exit", "email consent already confirmed")
    if consent.status != "pending":
        return Decision("exit", "email consent withdrawn")
    if not ours:
        return Decision("exit", "a confirmation was already sent for this request")
    if step_index >= len(journey.steps):
        return Decision("exit", "all steps done")
    return Decision("send", f"{journey.steps[step_index].id} due")
