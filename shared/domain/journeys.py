"""Journeys as data, and the pure decision each step makes.

A journey is a YAML file a marketer can edit (see infra/journeys/ for the shipped defaults and the
README for the format). This module is its schema and its semantics: which event starts it, who
may enter, when each step is due, what ends it. A journey execution (Step Functions) only waits and
loops; every decision is made here from the definition and fresh state, so it is tested without AWS.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain.events import KNOWN_EVENTS, canonical_event_name
from shared.domain.offers import Offer
from shared.domain.profiles import Cart, Profile

Channel = Literal["email", "sms", "push"]
SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SCHEDULES = ("birthday", "anniversary", "at-risk")
FAN_OUTS = ("back-in-stock-subscribers",)
_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists")


def parse_duration(value: Any) -> int:
    """'30m', '2h', '14d', '1w' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 30m, 2h, 14d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return int(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration: use e.g. 30m, 2h, 14d, 1w or seconds")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _known_event(value: str) -> str:
    name = canonical_event_name(value)
    if name not in KNOWN_EVENTS:
        close = difflib.get_close_matches(name, KNOWN_EVENTS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown event {value!r}; {hint}known events: {', '.join(sorted(KNOWN_EVENTS))}")
    return name


def format_duration(seconds: int) -> str:
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _Strict(BaseModel):
    # a typo in a journey file ("chanels") is an error naming the field, not a silently ignored key
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_where(where: dict[str, Any]) -> dict[str, Any]:
    for prop, test in where.items():
        if isinstance(test, dict):
            unknown = sorted(set(test) - set(_OPERATORS))
            if unknown:
                raise ValueError(
                    f"{prop}: unknown operator {', '.join(unknown)} (allowed: {', '.join(_OPERATORS)})"
                )
            if "in" in test and not isinstance(test["in"], list):
                raise ValueError(f"{prop}: 'in' takes a list")
    return where


class Broadcast(_Strict):
    """A one-off send to a segment's members on one day, in each customer's own time zone (a flash
    sale, a launch). The daily run of the day before starts it, so 10:00 local is still ahead even
    at UTC+14; the segment is read from its `by-segment` index and checked again on each profile."""

    segment: str = Field(pattern=SLUG)
    # `day`, not `on`: YAML reads a bare `on` key as the boolean true
    day: date

    @field_validator("day", mode="before")
    @classmethod
    def _iso_day(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return date.fromisoformat(v)
            except ValueError as exc:
                raise ValueError(f"{v!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-27") from exc
        return v


class Trigger(_Strict):
    """What starts the journey: a storefront event (optionally filtered), a daily audience, or a
    broadcast to a segment on a day."""

    event: str | None = None
    where: dict[str, Any] = Field(default_factory=dict)  # property -> value or {gte: 50, in: [...]}
    # a store-level event naming a SKU: everyone subscribed to it enters (in batches)
    fan_out: Literal["back-in-stock-subscribers"] | None = None
    # a daily run over an index: birthdays today, first-order anniversaries today, newly at risk
    schedule: Literal["birthday", "anniversary", "at-risk"] | None = None
    broadcast: Broadcast | None = None

    @field_validator("event")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is None:
            return v
        return _known_event(v)

    @field_validator("where")
    @classmethod
    def _where(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_where(v)

    @model_validator(mode="after")
    def _one_source(self) -> Trigger:
        given = [n for n in ("event", "schedule", "broadcast") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of trigger.event, trigger.schedule or trigger.broadcast"
                + (f" (got {' and '.join(given)})" if given else "")
            )
        if self.fan_out and not self.event:
            raise ValueError("trigger.fan_out needs trigger.event (the store event naming the SKU)")
        if self.where and not self.event:
            raise ValueError("trigger.where filters event properties; a schedule or broadcast has none")
        return self

    @property
    def on_a_day(self) -> bool:
        """Timed on an occasion's day itself, in the customer's time zone (started a day ahead)."""
        return self.schedule in ("birthday", "anniversary") or self.broadcast is not None

    def describe(self) -> str:
        if self.broadcast is not None:
            return f"broadcast to segment {self.broadcast.segment} on {self.broadcast.day.isoformat()}"
        return self.event or f"daily: {self.schedule}"


class Entry(_Strict):
    """Who may enter, checked against the profile when the journey starts."""

    known: bool | None = None  # identified (a user id or an email address), not an anonymous visitor
    has_ordered: bool | None = None
    min_orders: int | None = Field(default=None, ge=0)
    max_orders: int | None = Field(default=None, ge=0)
    consent: list[Channel] = Field(default_factory=list)  # consented to at least one of these
    traits: dict[str, Any] = Field(default_factory=dict)  # trait -> value, list (any of) or operators
    interests_any: list[str] = Field(default_factory=list)  # shares one with the `interests` trait
    loyalty_tiers: list[str] = Field(default_factory=list)
    # a segment file's id (segments/<store>/<id>.yaml): the customer must be in it / in any of these
    segment: str | None = Field(default=None, pattern=SLUG)
    segments_any: list[str] = Field(default_factory=list)

    @field_validator("traits")
    @classmethod
    def _traits(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_where(v)

    @field_validator("segments_any")
    @classmethod
    def _segment_ids(cls, v: list[str]) -> list[str]:
        for s in v:
            if not re.match(SLUG, s):
                raise ValueError(f"{s!r} is not a segment id (lowercase letters, digits and dashes)")
        return v


class OncePer(_Strict):
    once_per_days: int = Field(ge=1, le=3650)


ReEntry = Literal["once", "every-time"] | OncePer


class Variant(_Strict):
    """An experiment arm of a step: anything not given is the step's own."""

    id: str = Field(pattern=SLUG)
    weight: float = Field(gt=0)
    template: str | None = None
    after: int | None = None
    offer: Offer | None = None

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, v: Any) -> int | None:
        return None if v is None else parse_duration(v)


class Step(_Strict):
    id: str = Field(pattern=SLUG)
    # when it is due: `after` this long from the trigger (or the customer's last activity)...
    after: int = 0
    from_: Literal["trigger", "activity"] = Field(default="trigger", alias="from")
    # ...then at this local time of day in the customer's time zone (e.g. birthdays at 10:00)
    at: dtime | None = None
    # tried in order: a channel without address or consent, or that fails permanently, falls through
    channels: list[Channel] = Field(default_factory=lambda: list[Channel](["email"]), min_length=1)
    template: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    # a step may be transactional inside a marketing journey (the order confirmation after a purchase)
    kind: Literal["marketing", "transactional"] | None = None
    offer: Offer | None = None
    products: str | None = Field(default=None, pattern=SLUG)  # a catalog collection, or "complementary"
    on_cap: Literal["defer", "skip"] = "defer"  # what a frequency-capped send does
    variants: list[Variant] = Field(default_factory=list)

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, v: Any) -> int:
        return parse_duration(v)

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: Any) -> Any:
        # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600: take it as the time it was
        if isinstance(v, int) and not isinstance(v, bool):
            if not 0 <= v < 24 * 60:
                raise ValueError('write the time of day as "HH:MM", e.g. at: "10:00"')
            return dtime(v // 60, v % 60)
        return v

    @field_validator("channels")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a channel is listed twice")
        return v

    @field_validator("variants")
    @classmethod
    def _variant_ids(cls, v: list[Variant]) -> list[Variant]:
        ids = [x.id for x in v]
        if len(set(ids)) != len(ids):
            raise ValueError("variant ids must be distinct")
        return v

    def variant(self, bucket: float) -> Variant | None:
        """The arm a customer's stable bucket in [0, 1) falls into, by weight."""
        if not self.variants:
            return None
        total = sum(v.weight for v in self.variants)
        edge = 0.0
        for v in self.variants:
            edge += v.weight / total
            if bucket < edge:
                return v
        return self.variants[-1]


class Journey(_Strict):
    def step_kind(self, step: Step) -> Literal["marketing", "transactional"]:
        return step.kind or self.kind

    id: str = Field(pattern=SLUG)
    name: str = ""
    description: str = ""
    enabled: bool = True  # a store turns a default journey off with a file holding `enabled: false`
    kind: Literal["marketing", "transactional"] = "marketing"
    category: str | None = None  # preferences-page category (reminders, offers, news)
    # what one instance is: one cart, one order, one customer, one (customer, product) subscription
    per: Literal["cart", "order", "customer", "product"] = "customer"
    trigger: Trigger
    entry: Entry = Field(default_factory=Entry)
    re_entry: ReEntry = "every-time"
    exit_on: list[str] = Field(default_factory=list)  # events by the customer after the start end it
    yields_to: list[str] = Field(default_factory=list)  # journeys that take precedence on the same instance
    holdout: float = Field(default=0, ge=0, le=0.5)  # share that enters but receives nothing (control)
    steps: list[Step] = Field(min_length=1)

    @field_validator("exit_on")
    @classmethod
    def _exit_events(cls, v: list[str]) -> list[str]:
        return [_known_event(n) for n in v]

    @model_validator(mode="after")
    def _coherent(self) -> Journey:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be distinct (they key the exactly-once send records)")
        if self.trigger.broadcast is not None and self.per != "customer":
            raise ValueError("a broadcast goes to customers: use per: customer")
        if self.per == "cart" and self.trigger.event is None:
            raise ValueError("per: cart needs an event trigger carrying a cart (e.g. Product Added)")
        if self.per == "order" and self.trigger.event is None:
            raise ValueError("per: order needs an event trigger carrying an order (e.g. Order Completed)")
        if (self.per == "product") != (self.trigger.fan_out is not None):
            raise ValueError("per: product goes with trigger.fan_out (and only with it)")
        if self.trigger.event is None or self.trigger.fan_out:
            if self.re_entry != "every-time":
                raise ValueError(
                    "re_entry applies to journeys a customer's own event starts; a scheduled, fanned-out "
                    "or broadcast journey runs once per occasion (birthday, at-risk day, restock, broadcast day)"
                )
        if self.kind == "transactional" and any(s.kind == "marketing" for s in self.steps):
            raise ValueError("a transactional journey cannot hold marketing steps")
        if self.kind == "transactional" and (self.holdout or any(s.variants for s in self.steps)):
            raise ValueError("transactional messages are owed to the customer: no holdout or variants")
        if self.id in self.yields_to:
            raise ValueError("a journey cannot yield to itself")
        for s in self.steps:
            if s.from_ == "activity" and self.trigger.event is None:
                raise ValueError(
                    f"step {s.id}: a scheduled journey or broadcast has no activity to count from"
                )
        return self


# Double opt-in: sent at once to a new email subscriber of a store that asks for confirmation.
# Built in (not a file): it is part of consent handling, not marketing a store may edit.
EMAIL_CONFIRMATION = Journey(
    id="email-confirmation",
    kind="transactional",
    per="customer",
    trigger=Trigger(event="Consent Updated"),
    steps=[Step(id="confirm", template="confirm-email")],
)
BUILT_IN = {EMAIL_CONFIRMATION.id: EMAIL_CONFIRMATION}


# ---------------------------------------------------------------------------------------------
# Matching and entry


def _value_matches(actual: Any, test: Any) -> bool:
    if isinstance(test, dict):
        return all(_operator(actual, op, want) for op, want in test.items())
    if isinstance(test, list):
        return any(_value_matches(actual, t) for t in test)
    if isinstance(actual, str) and isinstance(test, str):
        return actual.strip().lower() == test.strip().lower()
    if isinstance(actual, list):
        return any(_value_matches(a, test) for a in actual)
    return bool(actual == test) if actual is not None else test is None


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _operator(actual: Any, op: str, want: Any) -> bool:
    if op == "exists":
        return (actual is not None) == bool(want)
    if op == "eq":
        return _value_matches(actual, want)
    if op == "ne":
        return not _value_matches(actual, want)
    if op == "in":
        return any(_value_matches(actual, w) for w in want)
    a, w = _num(actual), _num(want)
    if a is None or w is None:
        return False
    return {"gt": a > w, "gte": a >= w, "lt": a < w, "lte": a <= w}[op]


def _lookup(fields: dict[str, Any], path: str) -> Any:
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(trigger: Trigger, event_name: str | None, properties: dict[str, Any]) -> bool:
    if trigger.event is None or event_name != trigger.event:
        return False
    return all(_value_matches(_lookup(properties, p), t) for p, t in trigger.where.items())


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
        if not _value_matches(traits.get(name), test):
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


def due_at(step: Step, situation: Situation, after: int | None = None) -> float:
    base = situation.started_at
    if step.from_ == "activity" and situation.activity_at is not None:
        base = situation.activity_at  # the customer's latest action restarts the clock
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
    return Decision("send", f"{journey.steps[step_index].id} due")
