"""A journey step's message through the delivery policy, sent exactly once.

Who may be reached on which channel, when (quiet hours) and how often (the cap ledger); then the first
channel that works, falling back in the step's order. Every step leaves one send record, claimed
before anything goes out: a retried or duplicated invocation finds it and never sends again.
shared/services/journeys/claim.py keeps the send record; send.py renders and sends on one channel.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.adapters.channels.email import PermanentSendError, SendingParked
from shared.adapters.channels.webpush import MaybeSent, RetryLater
from shared.domain.carts import Cart
from shared.domain.delivery import (
    DeliveryPolicy,
    cap_allows,
    customer_timezone,
    eligibility,
    quiet_until,
)
from shared.domain.journey_decisions import record_instance
from shared.domain.journeys import Step
from shared.domain.offers import GivenOffer, Offer, give
from shared.domain.profiles import Profile
from shared.domain.reputation import marketing_pause
from shared.platform import clock
from shared.services.journeys.claim import Claim
from shared.services.journeys.context import Deps, Run, StepInput
from shared.services.journeys.effects import after_permanent, best_effort
from shared.services.journeys.send import Message, send_on
from shared.services.journeys.variables import products_for
from shared.templates.model import TemplateError


def deliver(
    state: StepInput,
    run: Run,
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
    variant = step.variant(run.bucket)
    base: dict[str, Any] = {"step": index, "step_id": step.id}
    if variant is not None:
        base["variant"] = variant.id  # recorded with the send, for the experiment's results
    kind = journey.step_kind(step)
    marketing = kind == "marketing"
    claim = Claim(
        deps,
        state,
        journey.id,
        record_instance(state.instance, state.generation, state.trigger),
        step.id,
        profile.customer_id if profile else run.customer_id,
        base,
        now,
    )
    if profile is None:
        return claim.skip("customer unknown")
    store = run.store
    if store is None:
        return claim.skip("store not configured")
    if (earlier := claim.resolve()) is not None:
        return earlier  # handled, held by a live attempt, or lost at the provider (claim.py's lease)
    if run.control and kind == "marketing":  # what a customer is owed (an order confirmation) always goes
        return claim.skip("control group: enters but receives nothing, so the journey's lift can be measured")

    checks = [
        eligibility(profile, ch, kind, journey.category, _suppressed(deps, state.store_id, profile, ch))
        for ch in step.channels
    ]
    # the account's bounce or complaint rate nears SES's review: marketing email waits it out
    paused = _reputation_pause(deps, step.channels, now) if marketing else None
    usable = [c.channel for c in checks if c.ok and not (paused and c.channel == "email")]
    if not usable:
        return claim.skip("; ".join([*(c.reason for c in checks if not c.ok), *([paused] if paused else [])]))
    policy = store.delivery
    tz = customer_timezone(profile, store.timezone)
    first = usable[0]
    if marketing and (quiet := _quiet_hours(base, first, policy, tz, now)) is not None:
        return quiet

    products: list[dict[str, Any]] = []
    if step.products and deps.products is not None:
        products = products_for(step.products, state, profile, deps)
        if not products:
            return claim.skip(f"no products to show ({step.products} is empty)")
    record = {**base, "customer_id": profile.customer_id, "channels": list(usable), "at": now}
    held = claim.take(record, profile.customer_id, marketing, first, policy, step.on_cap)
    if held is not None:
        return held

    # A unique code is drawn only once the step is sure to go (claimed, within the cap); the draw is
    # idempotent per step, so a retried step gets the same code back.
    offer = (variant.offer if variant and variant.offer else None) or step.offer
    given = _draw(offer, claim, deps) if offer is not None else None
    if offer is not None and given is None and offer.on_exhausted == "skip":
        return claim.give_up("skipped", f"offer pool {offer.pool} has no codes left", profile.customer_id)

    message = Message(
        state,
        run,
        step,
        variant,
        index,
        cart,
        profile,
        store,
        deps,
        now,
        given,
        products,
        handoff=claim.hand_off,
    )
    return _first_that_sends(message, claim, usable, policy, tz, kind, [f"email: {paused}"] if paused else [])


def _quiet_hours(
    base: dict[str, Any], first: str, policy: DeliveryPolicy, tz: ZoneInfo, now: float
) -> dict[str, Any] | None:
    """A marketing step whose first channel is in its quiet hours waits for them to end, unclaimed."""
    until = quiet_until(now, tz, policy.quiet_hours.get(first))
    if until is None:
        return None
    local = datetime.fromtimestamp(until, tz=UTC).astimezone(tz)
    return {
        **base,
        "type": "deferred",
        "until": until,
        "reason": f"quiet hours for {first} until {local:%H:%M} {tz.key}",
    }


def _draw(offer: Offer, claim: Claim, deps: Deps) -> GivenOffer | None:
    """The step's offer as its template shows it; None (and an error logged) when the pool ran out."""
    store_id = claim.state.store_id
    given = give(
        offer, deps.offers, store_id, f"{claim.journey_id}|{claim.instance}|{claim.step_id}", claim.now
    )
    if given is None:
        logging.getLogger("boomerang").error(
            "offer pool exhausted", extra={"store": store_id, "journey": claim.journey_id, "pool": offer.pool}
        )
    return given


def _first_that_sends(
    m: Message,
    claim: Claim,
    usable: list[str],
    policy: DeliveryPolicy,
    tz: ZoneInfo,
    kind: str,
    passed_over: list[str],
) -> dict[str, Any]:
    """Each usable channel in the step's order until one sends. For marketing, a fallback channel in
    its quiet hours or over its own cap is passed over (quiet hours: the step is deferred if nothing
    else sends)."""
    marketing, customer_id, first = kind == "marketing", m.profile.customer_id, usable[0]
    tried: list[str] = list(passed_over)
    quiet_ends: list[float] = []
    for channel in usable:
        if marketing and channel != first:
            ends = quiet_until(m.now, tz, policy.quiet_hours.get(channel))
            if ends is not None:
                tried.append(f"{channel}: quiet hours")
                quiet_ends.append(ends)
                continue
            others = [e for e in claim.ledger if e.send_id != claim.send_id]
            if channel in policy.channel_caps and cap_allows(others, channel, policy, m.now) is not None:
                tried.append(f"{channel}: frequency cap reached")
                continue
        try:
            provider_id = send_on(channel, m)
        except RetryLater as exc:
            # the push service asked for a pause (429 Retry-After): nothing went out, come back then
            claim.release(customer_id)
            return {**claim.base, "type": "deferred", "until": m.now + exc.retry_after, "reason": str(exc)}
        except SendingParked as exc:
            # the account's quota is used up or sending paused: the message waits for it, unsent and
            # unclaimed (never failed, never sent twice); the history shows why in the step's events
            claim.release(customer_id)
            until = m.now + exc.park_s + random.uniform(0, exc.park_s / 3)
            reason = f"{channel}: parked, {exc}"
            return {**claim.base, "type": "deferred", "until": until, "reason": reason, "parked": True}
        except (TemplateError, PermanentSendError) as exc:
            tried.append(f"{channel}: {str(exc)[:200]}")
            best_effort(after_permanent, channel, exc, m.profile, m.deps, m.now)
            continue
        except Exception as exc:
            if _ambiguous(exc):
                # The provider may have accepted it (no answer after the request went out): never
                # retried, so the customer cannot get it twice; recorded for support to look into.
                reason = f"{channel}: provider did not answer ({type(exc).__name__}); not sent again"
                claim.finish({"status": "unknown", "reason": reason})
                claim.record({**claim.base, "type": "unknown", "reason": reason})
                return {**claim.base, "type": "unknown", "reason": reason}
            # Throttled, or failed before the provider accepted the message (S3, Secrets Manager...):
            # nothing went out, so give the claim and the cap place back for Step Functions' retry.
            claim.release(customer_id)
            raise
        return _sent(m, claim, channel, provider_id, [*tried, *m.notes], kind)
    if quiet_ends:
        # the channels that failed went first; one still to try is in quiet hours: later, not never
        claim.release(customer_id)
        return {**claim.base, "type": "deferred", "until": min(quiet_ends), "reason": "; ".join(tried)}
    reason = "; ".join(tried)
    claim.give_up("failed", reason[:500], customer_id)
    return {**claim.base, "type": "failed", "reason": reason[:300]}


def _sent(
    m: Message, claim: Claim, channel: str, provider_id: str, tried: list[str], kind: str
) -> dict[str, Any]:
    """The provider took it: the send record, the cap place and the history say so."""
    store_id, customer_id, given = m.state.store_id, m.profile.customer_id, m.offer
    sent_at = clock.now_ts()
    # (the instance's "sent_any" flag is noted by run_step, with its end when the run ends now)
    if kind == "marketing":
        best_effort(
            m.deps.journeys.confirm_cap, store_id, customer_id, claim.send_id, sent_at, channel, claim.written
        )
    claim.finish(
        {
            "status": "sent",
            "channel": channel,
            "message_id": provider_id,
            "sent_at": sent_at,
            "tried": tried,
            **({"offer_code": given.code} if given else {}),
        }
    )
    claim.record(
        {
            **claim.base,
            "type": "sent",
            "kind": kind,  # the report credits conversions to marketing messages only
            "channel": channel,
            "message_id": provider_id,
            "fallbacks": tried,
            **({"subject": m.shown["subject"][:200]} if m.shown.get("subject") else {}),
            **({"offer_code": given.code} if given else {}),
        }
    )
    return {
        **claim.base,
        "type": "sent",
        "channel": channel,
        "message_id": provider_id,
        "customer_id": customer_id,
        "sent_at": sent_at,
        "reason": "; ".join(tried) or "sent",
    }


def _ambiguous(exc: BaseException) -> bool:
    """A read timeout or a connection dropped after the request was sent: it may have been delivered."""
    from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ReadTimeoutError | ConnectionClosedError | MaybeSent):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reputation_pause(deps: Deps, channels: Sequence[str], now: float) -> str | None:
    if "email" not in channels or deps.reputation is None:
        return None
    return marketing_pause(deps.reputation.window(now))


def _suppressed(deps: Deps, store_id: str, profile: Profile, channel: str) -> str | None:
    """Why the address is on the store's suppression list (bounce, complaint...), if it is."""
    address = {"email": profile.email, "sms": profile.phone}.get(channel)
    if deps.suppressions is None or not address:
        return None
    found = deps.suppressions.get(store_id, channel, address)
    return found.kind if found else None
