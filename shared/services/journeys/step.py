"""Runs one journey step: read fresh state, decide, send at most once, record why.

Dependencies are injected so tests can pass moto-backed or in-memory ones; the λ builds the real
ones lazily (functions/journey_step/handler.py).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from shared.adapters.channels.email import PermanentSendError, TransientSendError, build_mime, send_raw
from shared.adapters.channels.push import Device, PushMessage, send_push
from shared.adapters.channels.sms import send_sms
from shared.adapters.journey_store import CapConflict
from shared.adapters.profile_store import ProfileStore
from shared.domain.carts import Cart
from shared.domain.contacts import normalise_platform
from shared.domain.delivery import (
    CapEntry,
    cap_allows,
    cap_state,
    customer_timezone,
    eligibility,
    quiet_until,
)
from shared.domain.events import customer_event
from shared.domain.journey_decisions import (
    Decision,
    Situation,
    bucket,
    decide,
    decide_confirmation,
    entry_problem,
    in_holdout,
    record_instance,
)
from shared.domain.journeys import BUILT_IN, EMAIL_CONFIRMATION, Journey, Step, Variant
from shared.domain.offers import GivenOffer, give
from shared.domain.profiles import Profile
from shared.domain.segments import segment_problem
from shared.domain.stores import Store
from shared.platform import clock
from shared.platform.keys import anon_customer_id, user_customer_id
from shared.services.consent.preferences import preferences_url
from shared.services.consent.unsubscribe import confirm_url, unsubscribe_url
from shared.services.journeys.context import Deps, StepInput, StepOutput
from shared.services.journeys.variables import products_for, template_variables
from shared.templates.model import TemplateError
from shared.templates.render import render_email, render_push, render_sms, shows_address

# The profile λ folds the triggering event from its own queue, usually within a second; a backlog
# (or the emulator's compressed clock) can make that much longer. Poll, backing off, for up to 6 h.
SETTLE_S = 6 * 3600
ENTRY_RECHECK_S = 3600  # a customer who fails the entry conditions is looked at once more, an hour on


def _segment_check(deps: Deps, run: _Run, profile: Profile | None, now: float) -> Any:
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
    return int(min(900, max(2, (now - started_at) / 4)))


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


@dataclass
class _Run:
    """What one invocation knows about the instance besides the state machine's input."""

    journey: Journey
    store: Store | None
    customer_id: str | None
    control: bool
    bucket: float


def run_step(state: StepInput, deps: Deps) -> StepOutput:
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
    while True:
        now = clock.now_ts()
        cart: Cart | None = None
        if journey.id == EMAIL_CONFIRMATION.id:
            profile = _load_customer(deps.profiles, state.store_id, state.instance)
            decision = decide_confirmation(
                journey, index, profile, state.started_at or now, state.trigger, now
            )
            run = _Run(journey, store, profile.customer_id if profile else None, False, 0.0)
        else:
            if journey.per == "cart":
                cart = deps.profiles.load_cart(state.store_id, state.instance)
                profile = customer_for_cart(deps.profiles, cart) if cart else None
            else:
                profile = _load_customer(deps.profiles, state.store_id, state.customer_id or state.instance)
            customer_id = state.customer_id or (profile.customer_id if profile else None)
            run = _Run(
                journey,
                store,
                profile.customer_id if profile else customer_id,
                bool(customer_id) and in_holdout(journey, customer_id or ""),
                bucket(journey.id, customer_id or state.instance),
            )
            decision = _decide(state, run, index, cart, profile, deps, now)
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
            outcome = _deliver(state, run, journey.steps[index], index, cart, profile, deps, now)
            happened.append(outcome)
            if outcome["type"] == "deferred":
                # quiet hours or a frequency cap: the same step again at the allowed time, never dropped
                decision = Decision("wait", outcome["reason"], max(1, math.ceil(outcome["until"] - now)))
            else:
                index += 1
                continue
        if decision.action != "wait":
            deps.journeys.record(
                state.store_id,
                journey.id,
                instance,
                run.customer_id,
                {"type": "exited", "reason": decision.reason},
            )
            _best_effort(
                deps.journeys.mark_ended,
                state.store_id,
                journey.id,
                state.instance,
                state.generation,
                decision.reason,
            )
            if journey.per == "product" and state.customer_id:
                # the customer asked to be told once: the subscription leaves the by-SKU index, so
                # the next restock does not notify them again
                sku = str(
                    (state.context.get("product") or {}).get("sku") or state.instance.rsplit("|", 1)[-1]
                )
                _best_effort(deps.profiles.end_back_in_stock, state.store_id, state.customer_id, sku)
        return _finish(state, journey, index, decision, happened, now)


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
    run: _Run,
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
        if seen < started_at and now < started_at + SETTLE_S:
            # the profile λ folds the same event from its own queue: decide on the profile that has it
            return Decision(
                "wait", "waiting for the profile to record the trigger", _settle_poll(started_at, now)
            )
    if journey.per == "cart" and cart is None and now < started_at + SETTLE_S:
        return Decision("wait", "waiting for the profile to record the cart", _settle_poll(started_at, now))
    if index == 0:
        in_segment = _segment_check(deps, run, profile, now)
        problem = entry_problem(journey.entry, profile, in_segment)
        broadcast = journey.trigger.broadcast
        if not problem and broadcast is not None:
            # the index can be a day behind a segment that changes with time: the definition decides
            left = in_segment(broadcast.segment)
            problem = f"not in segment {broadcast.segment}: {left}" if left else None
        if problem and now < started_at + ENTRY_RECHECK_S:
            # events of one batch can be folded out of order (the consent in an identify sent with the
            # sign-up): look once more before turning the customer away
            return Decision(
                "wait",
                f"not eligible yet ({problem}); checking once more",
                math.ceil(started_at + ENTRY_RECHECK_S - now),
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
    order_status = None
    if journey.per == "order":
        order = deps.journeys.load_order(state.store_id, state.instance)
        order_status = order.get("status") if order else None
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
    )
    decision = decide(journey, index, situation)
    if decision.action == "send" and occasion_end is not None and now >= occasion_end:
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
        span = max(s.after for s in definition.steps) + SETTLE_S + 86400
        return bool(now < since + span)
    return bool(held.get("sent_any")) and since >= started_at


def _last_event_at(profile: Profile | None) -> dict[str, float]:
    return dict(getattr(profile, "last_event_at", None) or {})


def _years_since(first_order_at: float, day: date, tz: ZoneInfo) -> int:
    first = datetime.fromtimestamp(first_order_at, tz=UTC).astimezone(tz).date()
    return day.year - first.year


def _deliver(
    state: StepInput,
    run: _Run,
    step: Step,
    index: int,
    cart: Cart | None,
    profile: Profile | None,
    deps: Deps,
    now: float,
) -> dict[str, Any]:
    """One step through the delivery policy: who may be reached where, when, how often; then send on
    the first channel that works, falling back in the step's order. Exactly once per step."""
    journey = run.journey
    store_id, jid = state.store_id, journey.id
    instance = record_instance(state.instance, state.generation, state.trigger)
    variant = step.variant(run.bucket)
    base: dict[str, Any] = {"step": index, "step_id": step.id}
    if variant is not None:
        base["variant"] = variant.id  # recorded with the send, for the experiment's results
    kind = journey.step_kind(step)
    marketing = kind == "marketing"
    customer_id = profile.customer_id if profile else run.customer_id

    def skipped(reason: str) -> dict[str, Any]:
        # recorded with the same exactly-once claim, so the history says why once
        token = deps.journeys.claim_send(
            store_id,
            jid,
            instance,
            step.id,
            {"reason": reason, "at": now, "customer_id": customer_id, **base},
        )
        if token is not None:
            deps.journeys.finish_send(store_id, jid, instance, step.id, token, {"status": "skipped"})
            deps.journeys.record(
                store_id, jid, instance, customer_id, {**base, "type": "skipped", "reason": reason}
            )
        return {**base, "type": "skipped", "reason": reason}

    if profile is None:
        return skipped("customer unknown")
    store = run.store
    if store is None:
        return skipped("store not configured")
    if deps.journeys.get_send(store_id, jid, instance, step.id) is not None:
        return {**base, "type": "already-handled", "reason": "send record exists; never sent twice"}
    if run.control and kind == "marketing":  # what a customer is owed (an order confirmation) always goes
        return skipped("control group: enters but receives nothing, so the journey's lift can be measured")

    checks = [
        eligibility(profile, ch, kind, journey.category, _suppressed(deps, store_id, profile, ch))
        for ch in step.channels
    ]
    usable = [c.channel for c in checks if c.ok]
    if not usable:
        return skipped("; ".join(c.reason for c in checks))
    policy = store.delivery
    tz = customer_timezone(profile, store.timezone)
    first = usable[0]
    if marketing:
        until = quiet_until(now, tz, policy.quiet_hours.get(first))
        if until is not None:
            local = datetime.fromtimestamp(until, tz=UTC).astimezone(tz)
            return {
                **base,
                "type": "deferred",
                "until": until,
                "reason": f"quiet hours for {first} until {local:%H:%M} {tz.key}",
            }

    products: list[dict[str, Any]] = []
    if step.products and deps.products is not None:
        products = products_for(step.products, state, profile, deps)
        if not products:
            return skipped(f"no products to show ({step.products} is empty)")
    send_id = hashlib.sha256(f"{store_id}|{jid}|{instance}|{step.id}".encode()).hexdigest()[:20]
    record = {**base, "customer_id": profile.customer_id, "channels": list(usable), "at": now}
    token: str | None = None
    ledger: list[CapEntry] = []
    for _ in range(5):
        cap = None
        if marketing:
            entries, version = deps.journeys.cap_ledger(store_id, profile.customer_id)
            ledger = [CapEntry.model_validate(e) for e in entries]
            fits_at = cap_allows(ledger, first, policy, now)
            if fits_at is not None:
                if fits_at == math.inf:
                    return skipped(f"marketing {first} disabled (cap of 0)")
                if step.on_cap == "defer":
                    return {**base, "type": "deferred", "until": fits_at, "reason": "frequency cap reached"}
                return skipped("frequency cap reached")
            live = [*cap_state(ledger, now), CapEntry(at=now, channel=first, send_id=send_id)]
            cap = (profile.customer_id, [e.model_dump() for e in live], version)
        try:
            token = deps.journeys.claim_send(store_id, jid, instance, step.id, record, cap=cap)
            break
        except CapConflict:
            # another journey just messaged this customer: read the ledger again, a moment later
            time.sleep(random.uniform(0, 0.05))
            continue
    else:
        raise CapConflict("cap ledger kept changing")
    if token is None:
        return {**base, "type": "already-handled", "reason": "send record exists; never sent twice"}

    # A unique code is drawn only once the step is sure to go (claimed, within the cap); the draw is
    # idempotent per step, so a retried step gets the same code back.
    offer = (variant.offer if variant and variant.offer else None) or step.offer
    given: GivenOffer | None = None
    if offer is not None:
        given = give(offer, deps.offers, store_id, f"{jid}|{instance}|{step.id}", now)
        if given is None:
            logging.getLogger("boomerang").error(
                "offer pool exhausted", extra={"store": store_id, "journey": jid, "pool": offer.pool}
            )
            if offer.on_exhausted == "skip":
                reason = f"offer pool {offer.pool} has no codes left"
                deps.journeys.finish_send(
                    store_id, jid, instance, step.id, token, {"status": "skipped", "reason": reason}
                )
                deps.journeys.release_cap(store_id, profile.customer_id, send_id)
                deps.journeys.record(
                    store_id, jid, instance, customer_id, {**base, "type": "skipped", "reason": reason}
                )
                return {**base, "type": "skipped", "reason": reason}

    tried: list[str] = []
    quiet_ends: list[float] = []
    for channel in usable:
        if marketing and channel != first:
            ends = quiet_until(now, tz, policy.quiet_hours.get(channel))
            if ends is not None:
                tried.append(f"{channel}: quiet hours")
                quiet_ends.append(ends)
                continue
            others = [e for e in ledger if e.send_id != send_id]
            if channel in policy.channel_caps and cap_allows(others, channel, policy, now) is not None:
                tried.append(f"{channel}: frequency cap reached")
                continue
        try:
            provider_id = _send_on(
                channel, state, run, step, variant, index, cart, profile, store, deps, now, given, products
            )
        except (TemplateError, PermanentSendError) as exc:
            tried.append(f"{channel}: {str(exc)[:200]}")
            _best_effort(_after_permanent, channel, exc, profile, deps, now)
            continue
        except Exception as exc:
            if _ambiguous(exc):
                # The provider may have accepted it (no answer after the request went out): never
                # retried, so the customer cannot get it twice; recorded for support to look into.
                reason = f"{channel}: provider did not answer ({type(exc).__name__}); not sent again"
                deps.journeys.finish_send(
                    store_id, jid, instance, step.id, token, {"status": "unknown", "reason": reason}
                )
                deps.journeys.record(
                    store_id,
                    jid,
                    instance,
                    profile.customer_id,
                    {**base, "type": "unknown", "reason": reason},
                )
                return {**base, "type": "unknown", "reason": reason}
            # Throttled, or failed before the provider accepted the message (S3, Secrets Manager...):
            # nothing went out, so give the claim and the cap place back for Step Functions' retry.
            deps.journeys.release_send(store_id, jid, instance, step.id, token)
            deps.journeys.release_cap(store_id, profile.customer_id, send_id)
            raise
        sent_at = clock.now_ts()
        _best_effort(deps.journeys.note_sent, store_id, jid, state.instance)
        if marketing:
            _best_effort(deps.journeys.confirm_cap, store_id, profile.customer_id, send_id, sent_at, channel)
        deps.journeys.finish_send(
            store_id,
            jid,
            instance,
            step.id,
            token,
            {
                "status": "sent",
                "channel": channel,
                "message_id": provider_id,
                "sent_at": sent_at,
                "tried": tried,
                **({"offer_code": given.code} if given else {}),
            },
        )
        deps.journeys.record(
            store_id,
            jid,
            instance,
            profile.customer_id,
            {
                **base,
                "type": "sent",
                "kind": kind,  # the report credits conversions to marketing messages only
                "channel": channel,
                "message_id": provider_id,
                "fallbacks": tried,
                **({"offer_code": given.code} if given else {}),
            },
        )
        return {
            **base,
            "type": "sent",
            "channel": channel,
            "message_id": provider_id,
            "customer_id": profile.customer_id,
            "sent_at": sent_at,
            "reason": "; ".join(tried) or "sent",
        }
    if quiet_ends:
        # the channels that failed went first; one still to try is in quiet hours: later, not never
        deps.journeys.release_send(store_id, jid, instance, step.id, token)
        deps.journeys.release_cap(store_id, profile.customer_id, send_id)
        until = min(quiet_ends)
        return {**base, "type": "deferred", "until": until, "reason": "; ".join(tried)}
    reason = "; ".join(tried)
    deps.journeys.finish_send(
        store_id, jid, instance, step.id, token, {"status": "failed", "reason": reason[:500]}
    )
    deps.journeys.release_cap(store_id, profile.customer_id, send_id)
    deps.journeys.record(
        store_id, jid, instance, profile.customer_id, {**base, "type": "failed", "reason": reason[:500]}
    )
    return {**base, "type": "failed", "reason": reason[:300]}


def _ambiguous(exc: BaseException) -> bool:
    """A read timeout or a connection dropped after the request was sent: it may have been delivered."""
    from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ReadTimeoutError | ConnectionClosedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _suppressed(deps: Deps, store_id: str, profile: Profile, channel: str) -> str | None:
    address = {"email": profile.email, "sms": profile.phone}.get(channel)
    if deps.suppressions is None or not address:
        return None
    found = deps.suppressions.get(store_id, channel, address)
    return found.kind if found else None


def _send_on(
    channel: str,
    state: StepInput,
    run: _Run,
    step: Step,
    variant: Variant | None,
    index: int,
    cart: Cart | None,
    profile: Profile,
    store: Store,
    deps: Deps,
    now: float,
    offer: GivenOffer | None,
    products: list[dict[str, Any]],
) -> str:
    """Render the step's template for one channel and hand it to the provider; returns its id."""
    journey = run.journey
    store_id, marketing = state.store_id, journey.step_kind(step) == "marketing"
    template_name = (variant.template if variant and variant.template else None) or step.template
    signing_key = deps.signing_keys.key()
    unsub = unsubscribe_url(
        deps.unsubscribe_base_url, signing_key, store_id, profile.customer_id, channel, now
    )
    variables = template_variables(
        state, journey, step, index, cart, profile, store, channel, unsub, offer, products
    )
    # the same signed token as the unsubscribe link, on the page where every channel can be chosen
    variables["preferences_url"] = preferences_url(
        deps.unsubscribe_base_url, signing_key, store_id, profile.customer_id, channel, now
    )
    if journey.id == EMAIL_CONFIRMATION.id:
        variables["confirm_url"] = confirm_url(
            deps.unsubscribe_base_url, signing_key, store_id, profile.customer_id, now
        )
    # the customer's locale folder (pl/, pt-BR/...), else the store's default (the folder root)
    locale = profile.traits.get("locale") or getattr(store, "locale", None)
    if channel == "sms":
        assert profile.phone is not None
        template = deps.templates.sms(store_id, template_name, locale=locale)
        return send_sms(
            deps.sns,
            to=profile.phone,
            body=render_sms(template, variables),
            transactional=not marketing,
            max_segments=template.max_segments,
            sender_id=store.sms_sender_id,
        )
    if channel == "push":
        rendered = render_push(deps.templates.push(store_id, template_name, locale=locale), variables)
        devices = [
            Device(token=d.token, platform=normalise_platform(d.platform)) for d in profile.devices.values()
        ]
        shown = [
            *variables.get("cart", {}).get("items", []),
            *variables.get("viewed", []),
            variables.get("product") or {},
        ]
        result = send_push(
            deps.pinpoint,
            app_id=deps.push_app_id,
            devices=devices,
            message=PushMessage(
                title=rendered.title,
                body=rendered.body,
                deep_link=rendered.link,
                # a rich notification shows the first product's picture (the newest cart item)
                image_url=next((i["image_url"] for i in shown if i.get("image_url")), None),
                data={"journey": journey.id, "step": step.id},
            ),
            transactional=not marketing,
        )
        if result.rejected:
            _best_effort(_unregister, profile, result.rejected, deps, now)
        if result.delivered:
            return next(iter(result.delivered.values()))
        if result.transient:
            raise TransientSendError("push provider busy", code="TEMPORARY_FAILURE")
        raise PermanentSendError("every registered device was rejected", code="NoValidDevice")
    if marketing and store.address is None:
        # CAN-SPAM: commercial email must carry the sender's valid physical postal address
        raise TemplateError(
            "marketing email needs the store's postal address (Store.address), which is not set",
            template=template_name,
        )
    rendered_email = render_email(deps.templates.email(store_id, template_name, locale=locale), variables)
    if marketing and unsub not in rendered_email.html:
        # Gmail/Yahoo bulk-sender rules: a visible unsubscribe link in every marketing email
        raise TemplateError("marketing email has no visible unsubscribe link", template=template_name)
    if (
        marketing
        and store.address
        and not shows_address(rendered_email.html, store.address.formatted_lines())
    ):
        raise TemplateError(
            "marketing email does not show the store's postal address", template=template_name
        )
    assert profile.email is not None
    raw = build_mime(
        sender=store.sender,
        to=profile.email,
        subject=rendered_email.subject,
        html=rendered_email.html,
        text=rendered_email.text,
        unsubscribe_url=unsub,
        unsubscribe_mailto=store.unsubscribe_mailto,
        headers={"X-Boomerang-Journey": journey.id, "X-Boomerang-Step": step.id},
    )
    return send_raw(
        deps.ses,
        sender=store.sender,
        to=profile.email,
        raw=raw,
        configuration_set=deps.configuration_set,
        # SES copies these into its delivery/open/click events: the report's per step and variant counts
        tags={
            "journey": journey.id,
            "step": step.id,
            "store": store_id,
            **({"variant": variant.id} if variant else {}),
        },
    )


def _after_permanent(channel: str, exc: Exception, profile: Profile, deps: Deps, now: float) -> None:
    """A carrier STOP withdraws SMS consent through the same exactly-once fold as any event."""
    if channel == "sms" and getattr(exc, "code", None) == "OptedOut":
        _fold(
            deps,
            profile,
            "Consent Updated",
            now,
            f"sms-optout-{profile.customer_id}-{int(now) // 3600}",
            {
                "consent": {"sms": "unsubscribed"},
                "consent_source": "carrier-opt-out",
                "consent_text": "Replied STOP (number on the SMS opt-out list)",
            },
        )


def _best_effort(fn: Callable[..., object], *args: Any) -> None:
    """Bookkeeping after a send (STOP, dead tokens, the cap's timestamp) must never undo or repeat the send:
    if it fails, it is logged and happens again the next time the provider says the same."""
    try:
        fn(*args)
    except Exception:
        logging.getLogger("boomerang").warning("profile clean-up failed", exc_info=True)


def _unregister(profile: Profile, tokens: list[str], deps: Deps, now: float) -> None:
    by_token = {d.token: d for d in profile.devices.values()}
    for token in tokens:
        device = by_token.get(token)
        if device is not None:
            mid = "push-rejected-" + hashlib.sha256(f"{token}|{device.at}".encode()).hexdigest()[:24]
            _fold(
                deps, profile, "Device Unregistered", now, mid, {"token": token, "platform": device.platform}
            )


def _fold(
    deps: Deps, profile: Profile, event: str, now: float, message_id: str, props: dict[str, Any]
) -> None:
    deps.profiles.apply(customer_event(profile.store_id, profile.customer_id, event, props, now, message_id))
