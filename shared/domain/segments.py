"""Segments: lifecycle stages and segment definitions, as pure functions.

- Lifecycle stage: prospect, first-time buyer, repeat buyer, at-risk (past the customer's own
  expected interval, at least the store's minimum: the same day the win-back journey uses),
  churned (no order for longer than the churn window).
- Segment definitions are data (YAML, see infra/segments/ and the README): conditions over traits,
  aggregates, RFM group and scores (shared/domain/rfm.py), lifecycle stage, consent and events in
  a time window; every condition must hold. `segment_problem` says why a profile is not a member
  (None: it is), and `next_change` when time alone could change that, so the daily run re-checks
  exactly then. `restate` applies all of it to one profile, for the fold and the daily run alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain.conditions import check_where, value_matches
from shared.domain.events import known_event
from shared.domain.profiles import DAY_S, Profile
from shared.domain.retention import RetentionPolicy
from shared.domain.rfm import RfmEdges, RfmGroup, score

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_SEGMENTS = 20  # per store: a fold writes every membership change in its one transaction
CHURN_GRACE_DAYS = 30  # at least this long at risk (win-back's window) before counting as churned

Stage = Literal["prospect", "first-time-buyer", "repeat-buyer", "at-risk", "churned"]
STAGES: tuple[str, ...] = ("prospect", "first-time-buyer", "repeat-buyer", "at-risk", "churned")
Channel = Literal["email", "sms", "push", "webpush"]


# ---------------------------------------------------------------------------------------------
# Lifecycle


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, tz=UTC).date()


def _midnight(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def churn_at(profile: Profile, policy: RetentionPolicy) -> float | None:
    """When a buyer counts as churned: the churn window after the last order, but never before
    CHURN_GRACE_DAYS past their at-risk day (so a customer who orders once a year is at risk, and
    reachable by win-back, before being written off)."""
    last = profile.orders.last_order_at
    if profile.orders.count < 1 or last is None:
        return None
    at = last + policy.churn_after_days * DAY_S
    if profile.at_risk_on:
        at = max(at, _midnight(date.fromisoformat(profile.at_risk_on) + timedelta(days=CHURN_GRACE_DAYS)))
    return at


def lifecycle_stage(profile: Profile, now: float, policy: RetentionPolicy) -> str:
    """prospect | first-time-buyer | repeat-buyer | at-risk | churned.

    at-risk is the win-back journey's definition: from the UTC day `Profile.at_risk_on` (last order
    + the customer's own expected interval, at least `RetentionPolicy.at_risk_min_days`).
    """
    if profile.orders.count < 1:
        return "prospect"
    churned = churn_at(profile, policy)
    if churned is not None and now >= churned:
        return "churned"
    if profile.at_risk_on and _day(now) >= date.fromisoformat(profile.at_risk_on):
        return "at-risk"
    return "first-time-buyer" if profile.orders.count == 1 else "repeat-buyer"


def lifecycle_changes(profile: Profile, now: float, policy: RetentionPolicy) -> list[float]:
    """The instants after `now` at which the stage changes with time alone."""
    out: list[float] = []
    if profile.at_risk_on:
        out.append(_midnight(date.fromisoformat(profile.at_risk_on)))
    churned = churn_at(profile, policy)
    if churned is not None:
        out.append(churned)
    return [t for t in out if t > now]


# ---------------------------------------------------------------------------------------------
# Segment definitions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Strict):
    """A numeric test: any of gt, gte, lt, lte, eq (all given must hold)."""

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    eq: float | None = None

    @model_validator(mode="after")
    def _some(self) -> Range:
        if all(v is None for v in (self.gt, self.gte, self.lt, self.lte, self.eq)):
            raise ValueError("give at least one of gt, gte, lt, lte, eq")
        return self

    def holds(self, value: float) -> bool:
        return (
            (self.gt is None or value > self.gt)
            and (self.gte is None or value >= self.gte)
            and (self.lt is None or value < self.lt)
            and (self.lte is None or value <= self.lte)
            and (self.eq is None or value == self.eq)
        )

    def describe(self) -> str:
        parts = [
            f"{sym} {_num(v)}"
            for sym, v in ((">", self.gt), (">=", self.gte), ("<", self.lt), ("<=", self.lte), ("=", self.eq))
            if v is not None
        ]
        return " and ".join(parts)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


class RfmScores(_Strict):
    r: Range | None = None
    f: Range | None = None
    m: Range | None = None

    @model_validator(mode="after")
    def _scores(self) -> RfmScores:
        # a test no quintile score can pass is a typo (gte: 40 for gte: 4), not an empty segment
        for name in ("r", "f", "m"):
            test = getattr(self, name)
            if test is not None and not any(test.holds(score) for score in range(1, 6)):
                raise ValueError(f"{name}: no score is {test.describe()} (RFM scores are 1 to 5)")
        return self


class EventWindow(_Strict):
    """The event happened within the last N days, or did not (never counts as not within)."""

    within_days: int | None = Field(default=None, ge=1, le=3650)
    not_within_days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _one(self) -> EventWindow:
        if (self.within_days is None) == (self.not_within_days is None):
            raise ValueError("give exactly one of within_days or not_within_days")
        return self


class Segment(_Strict):
    id: str = Field(pattern=SLUG)
    name: str = ""
    description: str = ""
    enabled: bool = True  # a store turns a default segment off with a file holding `enabled: false`
    known: bool | None = None  # identified (user id or email), not an anonymous visitor
    lifecycle: list[Stage] = Field(default_factory=list)  # any of
    rfm_groups: list[RfmGroup] = Field(default_factory=list)  # any of
    rfm: RfmScores | None = None
    orders: Range | None = None  # counted orders (net of cancellations)
    revenue: Range | None = None  # net of cancellations and refunds
    aov: Range | None = None  # revenue / orders
    consent: list[Channel] = Field(default_factory=list)  # subscribed on at least one of
    traits: dict[str, Any] = Field(default_factory=dict)  # as in journey entry: value, list or operators
    loyalty_tiers: list[str] = Field(default_factory=list)
    events: dict[str, EventWindow] = Field(default_factory=dict)  # event name -> time window

    @field_validator("traits")
    @classmethod
    def _traits(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_where(v)

    @field_validator("events")
    @classmethod
    def _events(cls, v: dict[str, EventWindow]) -> dict[str, EventWindow]:
        out: dict[str, EventWindow] = {}
        for name, window in v.items():
            out[known_event(name)] = window  # raises with "did you mean" for an unknown name
        return out

    @model_validator(mode="after")
    def _not_empty(self) -> Segment:
        conditions = (
            self.known is not None
            or self.lifecycle
            or self.rfm_groups
            or self.rfm is not None
            or self.orders is not None
            or self.revenue is not None
            or self.aov is not None
            or self.consent
            or self.traits
            or self.loyalty_tiers
            or self.events
        )
        if self.enabled and not conditions:
            raise ValueError("a segment needs at least one condition (it would hold every profile)")
        return self


def segment_problem(
    segment: Segment, profile: Profile | None, now: float, policy: RetentionPolicy
) -> str | None:
    """Why this profile is not in the segment, or None when it is. Pure: the fold, the daily run
    and journey entry all decide membership with this one function."""
    if profile is None:
        return "no profile"
    if segment.known is not None:
        known = bool(profile.user_id or profile.email)
        if known != segment.known:
            return "an anonymous visitor" if segment.known else "identified"
    if segment.lifecycle:
        stage = lifecycle_stage(profile, now, policy)
        if stage not in segment.lifecycle:
            return f"lifecycle {stage} not in {', '.join(segment.lifecycle)}"
    rfm = profile.rfm
    if segment.rfm_groups:
        group = rfm.group if rfm else None
        if group not in segment.rfm_groups:
            return f"RFM group {group or 'none'} not in {', '.join(segment.rfm_groups)}"
    if segment.rfm is not None:
        for name in ("r", "f", "m"):
            test = getattr(segment.rfm, name)
            if test is None:
                continue
            if rfm is None:
                return "no RFM score yet"
            if not test.holds(getattr(rfm, name)):
                return f"RFM {name.upper()} {getattr(rfm, name)} is not {test.describe()}"
    o = profile.orders
    revenue = float(o.revenue - o.refunded)
    for label, test, value in (
        ("orders", segment.orders, float(o.count)),
        ("revenue", segment.revenue, revenue),
        ("aov", segment.aov, revenue / o.count if o.count else 0.0),
    ):
        if test is not None and not test.holds(value):
            return f"{label} {_num(round(value, 2))} is not {test.describe()}"
    if segment.consent:
        if not any(
            c in profile.consent and profile.consent[c].status == "subscribed" for c in segment.consent
        ):
            return f"no {' or '.join(segment.consent)} consent"
    for name, test in segment.traits.items():
        if not value_matches(profile.traits.get(name), test):
            return f"trait {name} does not match"
    if segment.loyalty_tiers and profile.loyalty.tier not in segment.loyalty_tiers:
        return f"loyalty tier {profile.loyalty.tier or 'none'} not in {', '.join(segment.loyalty_tiers)}"
    for name, window in segment.events.items():
        at = profile.last_event_at.get(name)
        if window.within_days is not None:
            if at is None or now - at > window.within_days * DAY_S:
                return f"no {name} in the last {window.within_days} days"
        elif at is not None and now - at <= (window.not_within_days or 0) * DAY_S:
            return f"{name} in the last {window.not_within_days} days"
    return None


def next_change(
    segments: list[Segment], profile: Profile, now: float, policy: RetentionPolicy
) -> float | None:
    """The first instant after `now` at which time alone could change a membership or the lifecycle
    stage (an event window closing, the at-risk day, churn). Conservative: a re-check then may find
    nothing changed."""
    out = lifecycle_changes(profile, now, policy)
    for segment in segments:
        for name, window in segment.events.items():
            at = profile.last_event_at.get(name)
            days = window.within_days or window.not_within_days or 0
            if at is not None:
                out.append(at + days * DAY_S + 1)
    later = [t for t in out if t > now]
    return min(later) if later else None


def memberships(segments: list[Segment], profile: Profile, now: float, policy: RetentionPolicy) -> list[str]:
    """The ids of the segments the profile is in (none for a profile merged into another)."""
    if profile.merged_into is not None:
        return []
    return sorted(s.id for s in segments if s.enabled and segment_problem(s, profile, now, policy) is None)


# ---------------------------------------------------------------------------------------------
# Restating one profile (a fold, or the daily run)


@dataclass
class Restated:
    """What `restate` changed: the lines for the history, and the memberships joined and left."""

    changes: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def _day_of(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def restate(
    profile: Profile,
    edges: RfmEdges | None,
    definitions: list[Segment] | None,
    policy: RetentionPolicy,
    now: float,
) -> Restated:
    """Rescore, restage and re-evaluate the profile in place. `definitions` None: the store's segment
    files are not at hand, so memberships stay as they are. Nothing changed: the profile is as it was."""
    out = Restated()
    if profile.merged_into is not None:
        return out
    changes = out.changes
    rfm = score(profile, edges, now)
    held = profile.rfm
    if (rfm and (rfm.r, rfm.f, rfm.m, rfm.group)) != (held and (held.r, held.f, held.m, held.group)):
        changes.append(f"RFM {rfm.r}{rfm.f}{rfm.m} {rfm.group}" if rfm else "RFM cleared")
        profile.rfm = rfm
    stage = lifecycle_stage(profile, now, policy)
    if stage != profile.lifecycle:
        changes.append(f"lifecycle {stage}")
        profile.lifecycle = stage
    if definitions is not None:
        members = memberships(definitions, profile, now, policy)
        if members != profile.segments:
            out.joined = sorted(set(members) - set(profile.segments))
            out.left = sorted(set(profile.segments) - set(members))
            changes += [f"joined segment {i}" for i in out.joined] + [f"left segment {i}" for i in out.left]
            profile.segments = members
    # recency needs no re-check date: the daily run rescores every buyer whose scores its new
    # edges change, recency included (segment_store.stale_scores on the buyers index)
    next_due = next_change(definitions or [], profile, now, policy)
    if _day_of(next_due) != _day_of(profile.segments_due):
        changes.append("segments re-check " + (_day_of(next_due) or "none"))
        profile.segments_due = next_due
    if changes:
        profile.segments_at = now
    return out
