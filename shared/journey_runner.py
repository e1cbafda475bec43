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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from shared import clock
from shared.delivery import CapEntry, cap_allows, cap_state, customer_timezone, eligibility, quiet_until
from shared.email import PermanentSendError, TransientSendError, build_mime, send_raw
from shared.events import customer_event
from shared.journey_store import CapConflict, JourneyStore
from shared.journeys import (
    JOURNEYS,
    Decision,
    Journey,
    JourneyStep,
    decide,
    decide_confirmation,
    record_instance,
)
from shared.keys import anon_customer_id, user_customer_id
from shared.profile_store import ProfileStore
from shared.profiles import Cart, Profile
from shared.push import Device, PushMessage, normalise_platform, send_push
from shared.sms import send_sms
from shared.stores import Store, StoreDirectory
from shared.templates import TemplateError, TemplateStore, render_email, render_push, render_sms
from shared.unsubscribe import confirm_url, unsubscribe_url


class StepInput(BaseModel):
    """The execution's state between steps; kept small (history lives in DynamoDB)."""

    store_id: str
    journey: str
    instance: str  # the cart id for cart journeys
    generation: int = Field(default=0, ge=0)  # > 0 when the cart was shopped again after a journey ended
    step: int = Field(default=0, ge=0)
    wait_seconds: int = 0
    started_at: float | None = None
    trigger: str | None = None  # messageId of the event that started the journey


class StepOutput(StepInput):
    action: str  # wait | exit
    reason: str
    events: list[dict[str, Any]] = Field(default_factory=list)  # what this invocation did
    decided_at: float = 0  # Boomerang time of this decision; the trigger compares events against it


@dataclass
class Deps:
    profiles: ProfileStore
    journeys: JourneyStore
    stores: StoreDirectory
    templates: TemplateStore
    ses: Any
    signing_keys: Any
    unsubscribe_base_url: str
    configuration_set: str | None = None
    sns: Any = None
    pinpoint: Any = None
    push_app_id: str = ""
    suppressions: Any = None  # shared.suppression.SuppressionList


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


def cart_variables(
    cart: Cart,
    profile: Profile,
    store: Store,
    journey: Journey,
    index: int,
    unsub: str,
    medium: str = "email",
) -> dict[str, Any]:
    currency = cart.currency or next((i.currency for i in cart.items if i.currency), None) or "USD"
    items = [
        {
            "name": line.name or line.sku or line.product_id,
            "quantity": line.quantity,
            "price": line.price if line.price is not None else Decimal(0),
            "currency": line.currency or currency,
            "image_url": line.image_url,
            "url": line.url,
            "line_total": (line.price or Decimal(0)) * line.quantity,
        }
        for line in sorted(cart.items, key=lambda x: -x.updated_at)
    ]
    return {
        "customer": {"first_name": profile.traits.get("first_name")},
        "store": {"name": store.name, "url": store.url},
        "cart": {
            "items": items,
            "value": cart.value,
            "currency": currency,
            "item_count": sum(i.quantity for i in cart.items),
        },
        "recovery_url": store.recovery_url(cart.cart_id, journey.id, medium),
        "unsubscribe_url": unsub,
        "step": {"id": journey.steps[index].id, "index": index, "is_last": index == len(journey.steps) - 1},
    }


def run_step(state: StepInput, deps: Deps) -> StepOutput:
    journey = JOURNEYS[state.journey]
    index = state.step
    happened: list[dict[str, Any]] = []
    while True:
        now = clock.now_ts()
        cart: Cart | None = None
        if journey.subject == "customer":
            profile = _load_customer(deps.profiles, state.store_id, state.instance)
            decision = decide_confirmation(
                journey, index, profile, state.started_at or now, state.trigger, now
            )
        else:
            cart = deps.profiles.load_cart(state.store_id, state.instance)
            profile = customer_for_cart(deps.profiles, cart) if cart else None
            decision = decide(journey, index, cart, profile, now)
        if decision.action == "send":
            outcome = _deliver(state, journey, journey.steps[index], index, cart, profile, deps, now)
            happened.append(outcome)
            if outcome["type"] == "deferred":
                # quiet hours or a frequency cap: the same step again at the allowed time, never dropped
                decision = Decision("wait", outcome["reason"], max(1, math.ceil(outcome["until"] - now)))
            else:
                index += 1
                continue
        entry = {"type": decision.action, "reason": decision.reason, "step": index}
        if decision.action == "wait":
            entry["wait_seconds"] = decision.wait_seconds
        else:
            deps.journeys.log(
                state.store_id,
                state.journey,
                record_instance(state.instance, state.generation),
                {"type": "exited", "reason": decision.reason},
            )
        happened.append(entry)
        return StepOutput(
            **{**state.model_dump(), "step": index, "wait_seconds": decision.wait_seconds},
            action=decision.action,
            reason=decision.reason,
            events=happened,
            decided_at=now,
        )


def _deliver(
    state: StepInput,
    journey: Journey,
    step: JourneyStep,
    index: int,
    cart: Cart | None,
    profile: Profile | None,
    deps: Deps,
    now: float,
) -> dict[str, Any]:
    """One step through the delivery policy: who may be reached where, when, how often; then send on
    the first channel that works, falling back in the step's order. Exactly once per step."""
    store_id, jid = state.store_id, journey.id
    instance = record_instance(state.instance, state.generation)
    base = {"step": index, "step_id": step.id}
    marketing = journey.kind == "marketing"

    def skipped(reason: str) -> dict[str, Any]:
        # recorded with the same exactly-once claim, so the history says why once
        token = deps.journeys.claim_send(store_id, jid, instance, step.id, {"reason": reason, "at": now})
        if token is not None:
            deps.journeys.finish_send(store_id, jid, instance, step.id, token, {"status": "skipped"})
            deps.journeys.log(
                store_id, jid, instance, {"type": "skipped", "step_id": step.id, "reason": reason}
            )
        return {**base, "type": "skipped", "reason": reason}

    if profile is None:
        return skipped("customer unknown")
    store = deps.stores.get(store_id)
    if store is None:
        return skipped("store not configured")
    if deps.journeys.get_send(store_id, jid, instance, step.id) is not None:
        return {**base, "type": "already-handled", "reason": "send record exists; never sent twice"}

    checks = [
        eligibility(profile, ch, journey.kind, journey.category, _suppressed(deps, store_id, profile, ch))
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

    send_id = hashlib.sha256(f"{store_id}|{jid}|{instance}|{step.id}".encode()).hexdigest()[:20]
    record = {"customer_id": profile.customer_id, "channels": list(usable), "at": now}
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
            provider_id = _send_on(channel, state, journey, step, index, cart, profile, store, deps, now)
        except (TemplateError, PermanentSendError) as exc:
            tried.append(f"{channel}: {str(exc)[:200]}")
            _best_effort(_after_permanent, channel, exc, profile, deps, now)
            continue
        except Exception:
            # Throttled, or failed before the provider accepted the message (S3, Secrets Manager...):
            # nothing went out, so give the claim and the cap place back for Step Functions' retry.
            deps.journeys.release_send(store_id, jid, instance, step.id, token)
            deps.journeys.release_cap(store_id, profile.customer_id, send_id)
            raise
        sent_at = clock.now_ts()
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
            },
        )
        deps.journeys.log(
            store_id,
            jid,
            instance,
            {
                "type": "sent",
                "step_id": step.id,
                "channel": channel,
                "message_id": provider_id,
                "fallbacks": tried,
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
    deps.journeys.log(store_id, jid, instance, {"type": "failed", "step_id": step.id, "reason": reason[:500]})
    return {**base, "type": "failed", "reason": reason[:300]}


def _suppressed(deps: Deps, store_id: str, profile: Profile, channel: str) -> str | None:
    address = {"email": profile.email, "sms": profile.phone}.get(channel)
    if deps.suppressions is None or not address:
        return None
    found = deps.suppressions.get(store_id, channel, address)
    return found.kind if found else None


def _send_on(
    channel: str,
    state: StepInput,
    journey: Journey,
    step: JourneyStep,
    index: int,
    cart: Cart | None,
    profile: Profile,
    store: Store,
    deps: Deps,
    now: float,
) -> str:
    """Render the step's template for one channel and hand it to the provider; returns its id."""
    store_id, marketing = state.store_id, journey.kind == "marketing"
    unsub = unsubscribe_url(
        deps.unsubscribe_base_url, deps.signing_keys.key(), store_id, profile.customer_id, channel, now
    )
    if cart is not None:
        variables = cart_variables(cart, profile, store, journey, index, unsub, medium=channel)
    else:
        variables = {
            "customer": {"first_name": profile.traits.get("first_name")},
            "store": {"name": store.name, "url": store.url},
            "confirm_url": confirm_url(
                deps.unsubscribe_base_url, deps.signing_keys.key(), store_id, profile.customer_id, now
            ),
            "unsubscribe_url": unsub,
            "step": {"id": step.id, "index": index, "is_last": index == len(journey.steps) - 1},
        }
    if channel == "sms":
        assert profile.phone is not None
        template = deps.templates.sms(store_id, step.template)
        return send_sms(
            deps.sns,
            to=profile.phone,
            body=render_sms(template, variables),
            transactional=not marketing,
            max_segments=template.max_segments,
            sender_id=store.sms_sender_id,
        )
    if channel == "push":
        rendered = render_push(deps.templates.push(store_id, step.template), variables)
        devices = [
            Device(token=d.token, platform=normalise_platform(d.platform)) for d in profile.devices.values()
        ]
        result = send_push(
            deps.pinpoint,
            app_id=deps.push_app_id,
            devices=devices,
            message=PushMessage(
                title=rendered.title,
                body=rendered.body,
                deep_link=rendered.link,
                # a rich notification shows the newest cart item's picture
                image_url=next(
                    (i["image_url"] for i in variables.get("cart", {}).get("items", []) if i["image_url"]),
                    None,
                ),
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
    rendered_email = render_email(deps.templates.email(store_id, step.template), variables)
    if marketing and unsub not in rendered_email.html:
        # Gmail/Yahoo bulk-sender rules: a visible unsubscribe link in every marketing email
        raise TemplateError("marketing email has no visible unsubscribe link", template=step.template)
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
        tags={"journey": journey.id, "step": step.id, "store": store_id},
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


def _best_effort(fn: Callable[..., None], *args: Any) -> None:
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
