"""Journeys and the pure decision each step makes.

A journey execution (Step Functions) only waits and loops; every decision is made here, from the
journey definition and fresh state, so the rules are tested without AWS.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from shared.profiles import Cart, Profile


class JourneyStep(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    delay_s: int = Field(ge=0, description="seconds after the customer's last cart activity")
    # tried in order: a channel without address or consent, or that fails permanently, falls through
    channels: list[Literal["email", "sms", "push"]] = Field(default=["email"], min_length=1)
    template: str
    on_cap: Literal["defer", "skip"] = "defer"  # what a frequency-capped send does


class Journey(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    kind: Literal["marketing", "transactional"] = "marketing"
    category: str | None = None  # preferences-page category (reminders, offers, news)
    subject: Literal["cart", "customer"] = "cart"  # what an instance is: one cart, or one customer
    steps: list[JourneyStep] = Field(min_length=1)


CART_ABANDONMENT = Journey(
    id="cart-abandonment",
    category="reminders",
    steps=[
        JourneyStep(id="email-1", delay_s=3600, template="cart-abandoned"),
        # the day-after reminder goes where the customer reads first: app, then text, then email
        JourneyStep(
            id="reminder-2", delay_s=24 * 3600, channels=["push", "sms", "email"], template="cart-abandoned"
        ),
    ],
)

# Double opt-in: sent at once to a new email subscriber of a store that asks for confirmation.
EMAIL_CONFIRMATION = Journey(
    id="email-confirmation",
    kind="transactional",
    subject="customer",
    steps=[JourneyStep(id="confirm", delay_s=0, template="confirm-email")],
)

JOURNEYS = {j.id: j for j in (CART_ABANDONMENT, EMAIL_CONFIRMATION)}


def execution_name(store_id: str, journey: str, instance: str, generation: int = 0) -> str:
    """Deterministic and within Step Functions' 80-character name rules: one execution per instance
    and generation (a cart shopped again after its journey ended gets generation 1, 2, ...)."""
    digest = hashlib.sha256(f"{store_id}\n{journey}\n{instance}".encode()).hexdigest()[:28]
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", f"{store_id}-{journey}")[:44]
    return f"{readable}-{digest}" + (f"-g{generation}" if generation else "")


def record_instance(instance: str, generation: int) -> str:
    """The key a generation's send records and history live under; generation 0 keeps the plain id."""
    return instance if not generation else f"{instance}~g{generation}"


@dataclass(frozen=True)
class Decision:
    action: Literal["exit", "wait", "send"]
    reason: str
    wait_seconds: int = 0


def decide(
    journey: Journey, step_index: int, cart: Cart | None, profile: Profile | None, now: float
) -> Decision:
    """What the cart-abandonment journey does next, from fresh state."""
    if cart is None:
        return Decision("exit", "cart not found")
    if cart.status == "converted":
        return Decision("exit", f"customer bought (order {cart.order_id})")
    last_order = profile.orders.last_order_at if profile else None
    if last_order is not None and last_order >= cart.last_activity_at:
        return Decision("exit", "customer bought after the last cart activity")
    if not cart.items:
        return Decision("exit", "cart emptied")
    if step_index >= len(journey.steps):
        return Decision("exit", "all steps done")
    due = cart.last_activity_at + journey.steps[step_index].delay_s
    if now < due:
        # also covers newer cart activity: the clock restarts from the customer's last action
        return Decision("wait", f"waiting for {journey.steps[step_index].id}", max(1, math.ceil(due - now)))
    return Decision("send", f"{journey.steps[step_index].id} due")


CONFIRMATION_SETTLE_S = 15 * 60  # how long to wait for the profile to record the consent request
CONFIRMATION_POLL_S = 300


def decide_confirmation(
    journey: Journey,
    step_index: int,
    profile: Profile | None,
    started_at: float,
    trigger: str | None,
    now: float,
) -> Decision:
    """The double opt-in journey: one email for the consent request that started it, while pending."""
    consent = profile.consent.get("email") if profile else None
    ours = consent is not None and consent.message_id == trigger
    if not ours and (consent is None or consent.at < started_at) and now < started_at + CONFIRMATION_SETTLE_S:
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
    due = started_at + journey.steps[step_index].delay_s
    if now < due:
        return Decision("wait", f"waiting for {journey.steps[step_index].id}", max(1, math.ceil(due - now)))
    return Decision("send", f"{journey.steps[step_index].id} due")
