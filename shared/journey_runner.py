"""Runs one journey step: read fresh state, decide, send at most once, record why.

Dependencies are injected so tests can pass moto-backed or in-memory ones; the λ builds the real
ones lazily (functions/journey_step/handler.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from shared import clock
from shared.email import PermanentSendError, build_mime, send_raw
from shared.journey_store import JourneyStore
from shared.journeys import JOURNEYS, Journey, JourneyStep, decide, record_instance
from shared.profile_store import ProfileStore
from shared.profiles import Cart, Profile
from shared.stores import Store, StoreDirectory
from shared.templates import TemplateError, TemplateStore, render_email
from shared.unsubscribe import unsubscribe_url


class StepInput(BaseModel):
    """The execution's state between steps; kept small (history lives in DynamoDB)."""

    store_id: str
    journey: str
    instance: str  # the cart id for cart journeys
    generation: int = Field(default=0, ge=0)  # > 0 when the cart was shopped again after a journey ended
    step: int = Field(default=0, ge=0)
    wait_seconds: int = 0
    started_at: float | None = None


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


def customer_for_cart(profiles: ProfileStore, cart: Cart) -> Profile | None:
    if cart.user_id:
        from shared.keys import user_customer_id

        return profiles.load_profile(cart.store_id, user_customer_id(cart.user_id))
    if cart.anonymous_id:
        from shared.events import CanonicalEvent

        probe = CanonicalEvent(
            message_id="-",
            store_id=cart.store_id,
            type="track",
            anonymous_id=cart.anonymous_id,
            received_at=0,
        )
        customer_id, _ = profiles.resolve_customer(probe)
        return profiles.load_profile(cart.store_id, customer_id)
    return None


def cart_variables(
    cart: Cart, profile: Profile, store: Store, journey: Journey, index: int, unsub: str
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
        "recovery_url": store.recovery_url(cart.cart_id, journey.id),
        "unsubscribe_url": unsub,
        "step": {"id": journey.steps[index].id, "index": index, "is_last": index == len(journey.steps) - 1},
    }


def run_step(state: StepInput, deps: Deps) -> StepOutput:
    journey = JOURNEYS[state.journey]
    index = state.step
    happened: list[dict[str, Any]] = []
    while True:
        now = clock.now_ts()
        cart = deps.profiles.load_cart(state.store_id, state.instance)
        profile = customer_for_cart(deps.profiles, cart) if cart else None
        decision = decide(journey, index, cart, profile, now)
        if decision.action == "send":
            assert cart is not None
            outcome = _send(state, journey, journey.steps[index], index, cart, profile, deps, now)
            happened.append(outcome)
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


def _send(
    state: StepInput,
    journey: Journey,
    step: JourneyStep,
    index: int,
    cart: Cart,
    profile: Profile | None,
    deps: Deps,
    now: float,
) -> dict[str, Any]:
    store_id, jid, instance = state.store_id, journey.id, record_instance(state.instance, state.generation)
    base = {"step": index, "step_id": step.id, "channel": step.channel}

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
    allowed, why = profile.can_email()
    if not allowed:
        return skipped(why)
    store = deps.stores.get(store_id)
    if store is None:
        return skipped("store not configured")
    token = deps.journeys.claim_send(
        store_id,
        jid,
        instance,
        step.id,
        {"customer_id": profile.customer_id, "channel": step.channel, "at": now},
    )
    if token is None:
        return {**base, "type": "already-handled", "reason": "send record exists; never sent twice"}
    try:
        unsub = unsubscribe_url(
            deps.unsubscribe_base_url, deps.signing_keys.key(), store_id, profile.customer_id, "email", now
        )
        rendered = render_email(
            deps.templates.email(store_id, step.template),
            cart_variables(cart, profile, store, journey, index, unsub),
        )
        assert profile.email is not None
        raw = build_mime(
            sender=store.sender,
            to=profile.email,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            unsubscribe_url=unsub,
            unsubscribe_mailto=store.unsubscribe_mailto,
            headers={"X-Boomerang-Journey": jid, "X-Boomerang-Step": step.id},
        )
        message_id = send_raw(
            deps.ses,
            sender=store.sender,
            to=profile.email,
            raw=raw,
            configuration_set=deps.configuration_set,
            tags={"journey": jid, "step": step.id, "store": store_id},
        )
    except (TemplateError, PermanentSendError) as exc:
        deps.journeys.finish_send(
            store_id, jid, instance, step.id, token, {"status": "failed", "reason": str(exc)[:500]}
        )
        deps.journeys.log(
            store_id, jid, instance, {"type": "failed", "step_id": step.id, "reason": str(exc)[:500]}
        )
        return {**base, "type": "failed", "reason": str(exc)[:200]}
    except Exception:
        # Throttled, or failed before SES accepted the message (S3, Secrets Manager, MIME...):
        # nothing went out, so give the claim back and let Step Functions' retry send it.
        deps.journeys.release_send(store_id, jid, instance, step.id, token)
        raise
    sent_at = clock.now_ts()
    deps.journeys.finish_send(
        store_id,
        jid,
        instance,
        step.id,
        token,
        {"status": "sent", "message_id": message_id, "sent_at": sent_at},
    )
    deps.journeys.log(store_id, jid, instance, {"type": "sent", "step_id": step.id, "message_id": message_id})
    return {
        **base,
        "type": "sent",
        "message_id": message_id,
        "customer_id": profile.customer_id,
        "sent_at": sent_at,
        "reason": "sent",
    }
