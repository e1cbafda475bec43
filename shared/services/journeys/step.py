"""Runs one journey step: read fresh state, decide, send at most once, record why.

This module decides (wait, send, exit) and records the instance's entry and exit; sending goes
through shared/services/journeys/deliver.py (policy, exactly-once claim, channel fallback).
Dependencies are injected so tests can pass moto-backed or in-memory ones; the λ builds the real
ones lazily (functions/journey_step/handler.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from shared.adapters.profile_store import ProfileStore
from shared.domain.carts import Cart
from shared.domain.delivery import customer_timezone
from shared.domain.events import PRODUCT_VIEWED
from shared.domain.fold import CONFIRM_LINK_LIFETIME_S, REPEAT_VIEW_S
from shared.domain.journey_decisions import (
    CONFIRMATION_SETTLE_REAL_FLOOR_S,
    CONFIRMATION_SETTLE_S,
    Decision,
    Situation,
    awaiting_confirmation,
    bucket,
    decide,
    decide_confirmation,
    entry_problem,
    in_holdout,
    record_instance,
)
from shared.domain.journeys import BUILT_IN, EMAIL_CONFIRMATION, Journey
from shared.domain.orders import order_delivered_at
from shared.domain.profiles import Profile
from shared.domain.segments import segment_problem
from shared.platform import clock
from shared.platform.keys import anon_customer_id, user_customer_id
from shared.services.journeys.context import Deps, Run, StepInput, StepOutput
from shared.services.journeys.deliver import deliver
from shared.services.journeys.effects import best_effort

# The profile λ folds the triggering event from its own queue, usually within a second; a backlog
# can make that much longer. Poll, backing off, for up to 6 h (and at least 2 real minutes: under
# the emulator's compressed clock 6 h can be 6 s, less than a backlog takes; clock.settle_window).
SETTLE_S = 6 * 3600
SETTLE_REAL_FLOOR_S = 120
ENTRY_RECHECK_S = 3600  # a customer who fails the entry conditions is looked at once more, an hour on
ENTRY_RECHECK_REAL_FLOOR_S = 10  # ... and never before the rest of their batch could be folded
# An occasion's message that SES parked on its day (daily quota used up) is owed, not stale: it still
# goes when the rolling 24 h has room, which comes within a day of the day's sends; the margin covers
# a park's jittered retry. Later (sending paused for days), the day has passed.
PARKED_GRACE_S = 2 * 86400


def _segment_check(deps: Deps, run: Run, profile: Profile | None, now: float) -> Callable[[str], str | None]:
    """segment id -> why the profile is not in it (None: it is), by the segment's definition."""

    def check(segment_id: str) -> str | None:
        if deps.segments is None or run.store is None:
            return "segment definitions are not available"
        segment = deps.segments.get(run.store.store_id, segment_id)
        if segment is None:
            return f"no segment {segment_id} in this store"
        return segment_problem(segment, profile, now, run.store.retention)

    return check


def _settle_poll(started_at: float, now: float) -> int:
    """Seconds until the next look for the trigger: 2 s at first, backing off to 15 min (never a
    busy loop of state transitions when the emulator compresses time)."""
    return math.ceil(clock.poll_interval(min(900, max(2, (now - started_at) / 4))))


def _confirmation_poll(pending_since: float, now: float) -> int:
    """Seconds until the next look for a confirmation: as long as it has been pending (a click soon
    after the request is seen soon), at least 5 min, at most 6 h (about 35 looks over a link's life)."""
    return int(
        min(6 * 3600, max(300, now - pending_since), pending_since + CONFIRM_LINK_LIFETIME_S - now + 1)
    )


def customer_for_cart(profiles: ProfileStore, cart: Cart) -> Profile | None:
    """The cart's customer now: by user id, else through the anonymous id's alias (a visitor who
    signed in since), else the anonymous profile."""
    if cart.user_id:
        return profiles.load_profile(cart.store_id, user_customer_id(cart.user_id))
    if cart.anonymous_id:
        customer_id = profiles.alias_target(cart.store_id, cart.anonymous_id) or anon_customer_id(
            cart.anonymous_id
        )
        return profiles.load_profile(cart.store_id, customer_id)
    return None


def _load_customer(profiles: ProfileStore, store_id: str, customer_id: str) -> Profile | None:
    """A customer journey's profile; an anonymous profile since merged points to the known one."""
    kind, _, ident = customer_id.partition(":")
    if kind == "a":  # a visitor since linked to a known customer: the request was folded into that one
        customer_id = profiles.alias_target(store_id, ident) or customer_id
    profile = profiles.load_profile(store_id, customer_id)
    if profile is not None and profile.merged_into:
        return profiles.load_profile(store_id, profile.merged_into)
    return profile


def _journey(state: StepInput, deps: Deps) -> Journey | None:
    if state.journey in BUILT_IN:
        return BUILT_IN[state.journey]
    return deps.catalog.get(state.store_id, state.journey) if deps.catalog is not None else None


def run_step(state: StepInput, deps: Deps) -> StepOutput:
    """Decide on fresh state; each step that sends is followed at once by the next, until one waits or exits."""
    journey = _journey(state, deps)
    index = state.step
    if journey is not None and state.step_id:
        ids = [s.id for s in journey.steps]
        if state.step_id in ids:
            index = ids.index(state.step_id)
    happened: list[dict[str, Any]] = []
    instance = record_instance(state.instance, state.generation, state.trigger)
    if journey is None:
        return _finish(
            state, None, index, Decision("exit", "journey removed or turned off"), happened, clock.now_ts()
        )
    store = deps.stores.get(state.store_id)
    loaded: tuple[Cart | None, Profile | None, Run] | None = None  # what this invocation read last
    while True:
        now = clock.now_ts()
        cart: Cart | None = None
        if loaded is not None and index >= len(journey.steps) and journey.id != EMAIL_CONFIRMATION.id:
            # every step done, just now: the exit is decided on what this invocation read a moment
            # ago, not read again (the profile, the cart: a GetItem each per send)
            cart, profile, run = loaded
            decision = _decide(state, run, index, cart, profile, deps, now)
        elif journey.id == EMAIL_CONFIRMATION.id:
            profile = _load_customer(deps.profiles, state.store_id, state.instance)
            decision = decide_confirmation(
                journey,
                index,
                profile,
                state.started_at or now,
                state.trigger,
                now,
                settle_s=clock.settle_window(CONFIRMATION_SETTLE_S, CONFIRMATION_SETTLE_REAL_FLOOR_S),
            )
            run = Run(journey, store, profile.customer_id if profile else None, False, 0.0)
        else:
            if journey.per == "cart":
                cart = deps.profiles.load_cart(state.store_id, state.instance)
                profile = customer_for_cart(deps.profiles, cart) if cart else None
            else:
                profile = _load_customer(deps.profiles, state.store_id, state.customer_id or state.instance)
            customer_id = state.customer_id or (profile.customer_id if profile else None)
            run = Run(
                journey,
                store,
                profile.customer_id if profile else customer_id,
                bool(customer_id) and in_holdout(journey, customer_id or ""),
                bucket(journey.id, customer_id or state.instance),
            )
            decision = _decide(state, run, index, cart, profile, deps, now)
        loaded = (cart, profile, run)
        if index == 0 and decision.action != "wait" and not happened:
            if deps.journeys.mark_started(state.store_id, journey.id, state.instance, state.generation, now):
                entered: dict[str, Any] = {"type": "entered", "trigger": state.trigger}
                if journey.holdout:
                    entered["group"] = "control" if run.control else "treatment"
                deps.journeys.record(state.store_id, journey.id, instance, run.customer_id, entered)
        if index == 0 and decision.action == "exit" and decision.reason.startswith("not eligible"):
            if state.customer_id:
                # stopped at the door: did not really enter, so the re-entry rule does not count it
                deps.journeys.release_entry(
                    state.store_id, journey.id, state.customer_id, state.trigger or ""
                )
        if decision.action == "send":
            outcome = deliver(state, run, journey.steps[index], index, cart, profile, deps, now)
            happened.append(outcome)
            if outcome["type"] == "deferred":
                # quiet hours or a frequency cap: the same step again at the allowed time, never dropped
                decision = Decision("wait", outcome["reason"], max(1, math.ceil(outcome["until"] - now)))
                if outcome.get("parked") and state.parked_at is None:
                    state = state.model_copy(update={"parked_at": now})
            else:
                index += 1
                state = state.model_copy(update={"parked_at": None})  # the next step is on its own time
                continue
        if decision.action != "wait":
            deps.journeys.record(
                state.store_id,
                journey.id,
                instance,
                run.customer_id,
                {"type": "exited", "reason": decision.reason},
            )
            best_effort(
                deps.journeys.mark_ended,
                state.store_id,
                journey.id,
                state.instance,
                state.generation,
                decision.reason,
                _sent_now(happened),
            )
            if journey.per == "product" and state.customer_id:
                # the customer asked to be told once: the subscription leaves the by-SKU index, so
                # the next restock does not notify them again
                sku = str(
                    (state.context.get("product") or {}).get("sku") or state.instance.rsplit("|", 1)[-1]
                )
                best_effort(deps.profiles.end_back_in_stock, state.store_id, state.customer_id, sku)
        elif _sent_now(happened):
            # this run has messaged the customer (a journey yielding to it then stays out of the way)
            best_effort(deps.journeys.note_sent, state.store_id, journey.id, state.instance)
        return _finish(state, journey, index, decision, happened, now)


def _sent_now(happened: list[dict[str, Any]]) -> bool:
    return any(o.get("type") == "sent" for o in happened)


def _finish(
    state: StepInput,
    journey: Journey | None,
    index: int,
    decision: Decision,
    happened: list[dict[str, Any]],
    now: float,
) -> StepOutput:
    entry: dict[str, Any] = {"type": decision.action, "reason": decision.reason, "step": index}
    if decision.action == "wait":
        entry["wait_seconds"] = decision.wait_seconds
    happened.append(entry)
    next_id = journey.steps[index].id if journey is not None and index < len(journey.steps) else None
    return StepOutput(
        **{**state.model_dump(), "step": index, "step_id": next_id, "wait_seconds": decision.wait_seconds},
        action=decision.action,
        reason=decision.reason,
        events=happened,
        decided_at=now,
    )


def _decide(
    state: StepInput,
    run: Run,
    index: int,
    cart: Cart | None,
    profile: Profile | None,
    deps: Deps,
    now: float,
) -> Decision:
    journey = run.journey
    tz = customer_timezone(profile, run.store.timezone) if profile and run.store else ZoneInfo("UTC")
    started_at = state.started_at or now
    trigger_event = journey.trigger.event
    if index == 0 and trigger_event and journey.per in ("customer", "order") and not journey.trigger.fan_out:
        seen = _last_event_at(profile).get(trigger_event, float("-inf"))
        # a repeat view is not recorded (fold.REPEAT_VIEW_S): the view just before it stands for it
        slack = REPEAT_VIEW_S if trigger_event == PRODUCT_VIEWED else 0.0
        if seen < started_at - slack and now < started_at + clock.settle_window(
            SETTLE_S, SETTLE_REAL_FLOOR_S
        ):
            # the profile λ folds the same event from its own queue: decide on the profile that has it
            return Decision(
                "wait", "waiting for the profile to record the trigger", _settle_poll(started_at, now)
            )
    if (
        journey.per == "cart"
        and cart is None
        and now < started_at + clock.settle_window(SETTLE_S, SETTLE_REAL_FLOOR_S)
    ):
        return Decision("wait", "waiting for the profile to record the cart", _settle_poll(started_at, now))
    if index == 0:
        in_segment = _segment_check(deps, run, profile, now)
        problem = entry_problem(journey.entry, profile, in_segment)
        broadcast = journey.trigger.broadcast
        if not problem and broadcast is not None:
            # the index can be a day behind a segment that changes with time: the definition decides
            left = in_segment(broadcast.segment)
            problem = f"not in segment {broadcast.segment}: {left}" if left else None
        waiting = problem and broadcast is None
        pending_since = awaiting_confirmation(journey.entry, profile, in_segment, now) if waiting else None
        if pending_since is not None:
            # only the double opt-in click is missing (a signup form's welcome): wait for it rather
            # than turn away a subscriber who has not opened the confirmation email yet
            return Decision(
                "wait",
                "waiting for the email confirmation (double opt-in)",
                _confirmation_poll(pending_since, now),
            )
        recheck_at = started_at + clock.settle_window(ENTRY_RECHECK_S, ENTRY_RECHECK_REAL_FLOOR_S)
        if problem and now < recheck_at:
            # events of one batch can be folded out of order (the consent in an identify sent with the
            # sign-up): look once more before turning the customer away
            return Decision(
                "wait",
                f"not eligible yet ({problem}); checking once more",
                math.ceil(recheck_at - now),
            )
        if problem:
            return Decision("exit", f"not eligible: {problem}")
    occasion_end: float | None = None
    if state.occasion and journey.trigger.on_a_day:
        # timed on the day itself, in the customer's time zone (the run started it a day ahead)
        day = date.fromisoformat(state.occasion)
        started_at = datetime.combine(day, dtime(0), tzinfo=tz).timestamp()
        occasion_end = datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=tz).timestamp()
        if journey.trigger.schedule == "anniversary" and profile and profile.orders.first_order_at:
            if _years_since(profile.orders.first_order_at, day, tz) < 1:
                return Decision("exit", "first order less than a year ago")
    yielded = None
    for other in journey.yields_to:
        if _taken_over(state, other, started_at, deps, now):
            yielded = other
            break
    order_status = delivered_at = None
    if journey.per == "order":
        order = deps.journeys.load_order(state.store_id, state.instance)
        order_status = order.get("status") if order else None
        if index < len(journey.steps) and journey.steps[index].from_ == "delivery":
            delivered_at = _delivered_at(deps, state.store_id, state.instance, order)
    activity = None
    if journey.per != "cart" and trigger_event and profile is not None:
        activity = _last_event_at(profile).get(trigger_event)
    elif cart is not None:
        activity = cart.last_activity_at
    variant = journey.steps[index].variant(run.bucket) if index < len(journey.steps) else None
    situation = Situation(
        now=now,
        started_at=started_at,
        tz=tz,
        profile=profile,
        cart=cart,
        order_status=order_status,
        activity_at=activity if activity is not None else (cart.last_activity_at if cart else None),
        yielded_to=yielded,
        variant_after=variant.after if variant else None,
        delivered_at=delivered_at,
    )
    decision = decide(journey, index, situation)
    if decision.action == "send" and occasion_end is not None and now >= occasion_end:
        parked_on_the_day = state.parked_at is not None and state.parked_at < occasion_end
        if not parked_on_the_day or now >= occasion_end + PARKED_GRACE_S:
            return Decision("exit", "the day has passed")
    return decision


def _taken_over(state: StepInput, other: str, started_at: float, deps: Deps, now: float) -> bool:
    """Does journey `other` have this instance (the checkout journey the cart)? While it runs, or if
    it messaged the customer since this journey started; not if it died or went quiet."""
    held = deps.journeys.state(state.store_id, other, state.instance)
    definition = deps.catalog.get(state.store_id, other) if deps.catalog is not None else None
    if not held or definition is None:
        return False
    since = float(held.get("started_at", 0))
    if held.get("status") == "active":
        # an execution that failed never marks itself ended: past its longest step, it holds nothing
        span = (
            max(s.after for s in definition.steps)
            + clock.settle_window(SETTLE_S, SETTLE_REAL_FLOOR_S)
            + 86400
        )
        return bool(now < since + span)
    return bool(held.get("sent_any")) and since >= started_at


def _delivered_at(deps: Deps, store: str, order_id: str, order: dict[str, Any] | None) -> float | None:
    """The order's delivery as the fold (the store's own Order Delivered) and the partners' shipment
    updates on its forward records know it; None while unknown or a part is still on its way."""
    own = order.get("delivered_at") if order else None
    forwards = deps.fulfilment.for_order(store, order_id) if deps.fulfilment is not None else []
    parts = [
        (_num(f.get("accepted_at")), _num(f.get("delivered_at")))
        for f in forwards
        if f.get("action") == "create"
    ]
    return order_delivered_at(_num(own), parts)


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def _last_event_at(profile: Profile | None) -> dict[str, float]:
    return dict(getattr(profile, "last_event_at", None) or {})


def _years_since(first_order_at: float, day: date, tz: ZoneInfo) -> int:
    first = datetime.fromtimestamp(first_order_at, tz=UTC).astimezone(tz).date()
    return day.year - first.year
