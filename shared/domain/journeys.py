"""Journeys as data: the schema of a journey file and what each field means.

A journey is a YAML file a marketer can edit (see infra/journeys/ for the shipped defaults and the
README for the format). This module is its schema: which event starts it, who may enter, when each
step is due, what ends it. The decisions made from it at run time are in
shared/domain/journey_decisions.py.
"""

from __future__ import annotations

import re
from datetime import date
from datetime import time as dtime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain.conditions import check_where
from shared.domain.events import known_event
from shared.domain.offers import Offer

Channel = Literal["email", "sms", "push", "webpush"]
SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SCHEDULES = ("birthday", "anniversary", "at-risk")
FAN_OUTS = ("back-in-stock-subscribers",)


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


def format_duration(seconds: int) -> str:
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _Strict(BaseModel):
    # a typo in a journey file ("chanels") is an error naming the field, not a silently ignored key
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
        return known_event(v)

    @field_validator("where")
    @classmethod
    def _where(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_where(v)

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
        return check_where(v)

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
    # when it is due: `after` this long from the trigger (or the customer's last activity, or the
    # order's delivery when known: per-order journeys, falling back to the trigger)...
    after: int = 0
    from_: Literal["trigger", "activity", "delivery"] = Field(default="trigger", alias="from")
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
    # shipment: one per (order, shipment), so each partner's parcel of an order gets its own update
    per: Literal["cart", "order", "shipment", "customer", "product"] = "customer"
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
        return [known_event(n) for n in v]

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
        if self.per == "shipment" and self.trigger.event not in ("Order Shipped", "Order Delivered"):
            raise ValueError("per: shipment needs trigger event Order Shipped or Order Delivered")
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
            if s.from_ == "delivery" and self.per != "order":
                raise ValueError(
                    f"step {s.id}: from: delivery counts from an order's delivery: use per: order"
                )
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
