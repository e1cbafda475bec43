"""Retention metrics: one definition of each figure, as pure functions over plain records (no AWS).

The same functions run on the emulator's table and on a DynamoDB export at scale
(`shared/adapters/report_data.py` turns either into these records). Times are Unix seconds, periods are
UTC calendar months unless given otherwise, money is the order's own amount (a store reports in
one currency; mixed currencies are summed as they are and flagged by the report).

Definitions
-----------
- Order: counts unless cancelled; its revenue is ``total - refunded`` (refunds reduce revenue).
- Active at time t: the customer has a counted order in ``[t - W, t)``, the churn window W
  (default 90 days, the stores' at-risk minimum, ``RetentionPolicy``).
- Churn over a period ``[a, b)``: base = customers active at a; churned = those of the base not
  active at b. Customer churn = churned / base. Revenue churn = (revenue in ``[a - W, a)`` of the
  churned) / (revenue in ``[a - W, a)`` of the base). Broken down by buyer type at a (counted orders
  before a: 1 = first-time, 2+ = repeat) and tenure at a (whole days since the first counted
  order: short <= 90, medium 91-365, long > 365).
- Repeat-purchase rate as of t: customers with 2+ counted orders before t / customers with 1+.
- Average order value per period: mean revenue of new orders (the customer's first counted order
  ever) and of returning orders (every later one) placed in the period.
- Cohort retention: customers grouped by the UTC month of their first counted order; for k = 0..N
  the share of the cohort with a counted order in calendar month cohort + k (k = 0 is 100%).
- Journey results: a message is a history record ``type: sent``. A conversion is a counted order
  placed within the attribution window (default 5 days) after a marketing message to the same
  customer, credited to the last such message before it (last touch) with the order's revenue.
  Transactional messages (an order confirmation) are counted as sent but never credited: they
  follow the order rather than bring it. Lift compares the
  conversion rate of the journey's treatment and control (holdout) entries: an entry converts if
  the customer orders within the lift window (default: the attribution window) after entering.
  Lift = p_treatment - p_control, with Newcombe's hybrid score interval (his method 10, built from
  two Wilson score intervals) at 95%; relative lift = lift / p_control.
- Fulfilment speed, per partner, over the orders placed in the period that were forwarded to it
  (its ``create`` forward records): time to acceptance = ``accepted_at - order_at`` (the partner's
  first 2xx), time to shipment = ``shipped_at - order_at`` (its first shipping update; a partner
  that reports only delivery ships at delivery), time to delivery likewise; each as a median and
  p90 (linear interpolation between the closest ranks, numpy's default) over the forwards that
  have the time. Failures = forwards the partner refused or that found no success in 24 hours.
- Delivery speed of an order: from the order to its delivery: the last of the store's own
  delivery (an ``Order Delivered`` it sent) and of the parts partners accepted, known once each of
  those parts has been delivered. Bands: <= 2 d, 2-5 d, 5-10 d, > 10 d.
  Repeat-purchase rate by band: of the counted orders placed in the period with a known delivery
  speed, the share whose customer placed another counted order within the repeat window (default:
  the churn window) after the order; orders whose window has not ended by the report's end and
  that have no repeat yet are counted as ``open`` and left out of the rate (they may still repeat).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.orders import order_delivered_at

DAY = 86400.0
DEFAULT_CHURN_WINDOW_DAYS = 90  # RetentionPolicy's minimum at-risk interval
DEFAULT_ATTRIBUTION_DAYS = 5
Z95 = 1.959963984540054

BUYER_TYPES = ("first_time", "repeat")
TENURES = ("short", "medium", "long")


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRec:
    order_id: str
    customer_id: str
    at: float
    total: float
    refunded: float = 0.0
    status: str = "completed"  # completed | cancelled
    delivered_at: float | None = None  # the store's own delivery (Order Delivered without a partner)

    @property
    def counted(self) -> bool:
        return self.status != "cancelled"

    @property
    def revenue(self) -> float:
        return self.total - self.refunded if self.counted else 0.0


@dataclass(frozen=True)
class SentRec:
    """One message a journey sent (history ``type: sent``)."""

    customer_id: str
    journey: str
    at: float
    step_id: str | None = None
    variant: str | None = None
    channel: str | None = None
    message_id: str | None = None
    kind: str | None = None  # marketing | transactional (None: recorded before kinds were)


@dataclass(frozen=True)
class EntryRec:
    """A journey entry (history ``type: entered``); group is "treatment"/"control" with a holdout."""

    customer_id: str
    journey: str
    at: float
    group: str | None = None


@dataclass(frozen=True)
class EngagementRec:
    """What SES reported for one email (the feedback λ's per-message stats item)."""

    journey: str
    step_id: str
    delivered: bool = False
    opened: bool = False
    clicked: bool = False
    variant: str | None = None


@dataclass(frozen=True)
class ForwardRec:
    """One order part sent to a fulfilment partner (forward record ``FWD#<partner>#create``)."""

    order_id: str
    partner_id: str
    order_at: float
    status: str  # pending | retrying | accepted | rejected | failed | cancelled
    accepted_at: float | None = None
    shipped_at: float | None = None
    delivered_at: float | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_FORWARDS


FAILED_FORWARDS = ("rejected", "failed")  # refused by the partner; no success within 24 hours
SPEED_BANDS = ((2.0, "<= 2 d"), (5.0, "2-5 d"), (10.0, "5-10 d"), (math.inf, "> 10 d"))


# --- time ---------------------------------------------------------------------------------------


def month_start(t: float) -> float:
    d = datetime.fromtimestamp(t, tz=UTC)
    return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()


def add_months(t: float, n: int) -> float:
    d = datetime.fromtimestamp(month_start(t), tz=UTC)
    index = d.year * 12 + d.month - 1 + n
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp()


def month_label(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m")


def months(start: float, end: float) -> list[tuple[float, float]]:
    """Calendar months (UTC) covering [start, end): the first starts at start, the last ends at end."""
    out: list[tuple[float, float]] = []
    a = start
    while a < end:
        b = min(add_months(a, 1), end)
        out.append((a, b))
        a = b
    return out


# --- orders per customer ------------------------------------------------------------------------


def by_customer(orders: Iterable[OrderRec]) -> dict[str, list[OrderRec]]:
    """Counted orders per customer, oldest first (cancelled orders never count)."""
    out: dict[str, list[OrderRec]] = defaultdict(list)
    for o in orders:
        if o.counted:
            out[o.customer_id].append(o)
    for lst in out.values():
        lst.sort(key=lambda o: (o.at, o.order_id))
    return dict(out)


def _in(orders: Sequence[OrderRec], start: float, end: float) -> list[OrderRec]:
    return [o for o in orders if start <= o.at < end]


def is_active(orders: Sequence[OrderRec], t: float, window_days: float = DEFAULT_CHURN_WINDOW_DAYS) -> bool:
    """A counted order in [t - W, t)."""
    return bool(_in(orders, t - window_days * DAY, t))


def buyer_type(orders: Sequence[OrderRec], t: float) -> str | None:
    n = sum(1 for o in orders if o.at < t)
    return None if n == 0 else "first_time" if n == 1 else "repeat"


def tenure(orders: Sequence[OrderRec], t: float) -> str | None:
    before = [o.at for o in orders if o.at < t]
    if not before:
        return None
    days = math.floor((t - min(before)) / DAY)
    return "short" if days <= 90 else "medium" if days <= 365 else "long"


# --- churn --------------------------------------------------------------------------------------


@dataclass
class ChurnCell:
    base: int = 0
    churned: int = 0
    base_revenue: float = 0.0
    churned_revenue: float = 0.0

    @property
    def customer_churn(self) -> float | None:
        return self.churned / self.base if self.base else None

    @property
    def revenue_churn(self) -> float | None:
        return self.churned_revenue / self.base_revenue if self.base_revenue else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "churned": self.churned,
            "customer_churn": _r(self.customer_churn),
            "base_revenue": round(self.base_revenue, 2),
            "churned_revenue": round(self.churned_revenue, 2),
            "revenue_churn": _r(self.revenue_churn),
        }


@dataclass
class ChurnPeriod:
    start: float
    end: float
    all: ChurnCell = field(default_factory=ChurnCell)
    segments: dict[str, ChurnCell] = field(default_factory=dict)  # first_time, repeat, short, ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": month_label(self.start),
            "start": _iso(self.start),
            "end": _iso(self.end),
            **self.all.to_dict(),
            "segments": {k: v.to_dict() for k, v in self.segments.items()},
        }


def churn(
    orders: Iterable[OrderRec], start: float, end: float, window_days: float = DEFAULT_CHURN_WINDOW_DAYS
) -> ChurnPeriod:
    """Customer and revenue churn over [start, end) (definitions in the module docstring)."""
    result = ChurnPeriod(start, end, segments={k: ChurnCell() for k in (*BUYER_TYPES, *TENURES)})
    w = window_days * DAY
    for history in by_customer(orders).values():
        if not is_active(history, start, window_days):
            continue
        revenue = sum(o.revenue for o in _in(history, start - w, start))
        gone = not is_active(history, end, window_days)
        cells = [result.all, result.segments[str(buyer_type(history, start))]]
        cells.append(result.segments[str(tenure(history, start))])
        for cell in cells:
            cell.base += 1
            cell.base_revenue += revenue
            if gone:
                cell.churned += 1
                cell.churned_revenue += revenue
    return result


def churn_series(
    orders: Iterable[OrderRec], start: float, end: float, window_days: float = DEFAULT_CHURN_WINDOW_DAYS
) -> list[ChurnPeriod]:
    orders = list(orders)
    return [churn(orders, a, b, window_days) for a, b in months(start, end)]


# --- buyers and order values --------------------------------------------------------------------


@dataclass
class RepeatRate:
    buyers: int
    repeat_buyers: int

    @property
    def rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None

    def to_dict(self) -> dict[str, Any]:
        return {"buyers": self.buyers, "repeat_buyers": self.repeat_buyers, "rate": _r(self.rate)}


def repeat_purchase_rate(orders: Iterable[OrderRec], as_of: float) -> RepeatRate:
    """Customers with 2+ counted orders before `as_of` / customers with 1+."""
    counts = [sum(1 for o in h if o.at < as_of) for h in by_customer(orders).values()]
    return RepeatRate(sum(1 for n in counts if n >= 1), sum(1 for n in counts if n >= 2))


@dataclass
class OrderValues:
    start: float
    end: float
    new_orders: int = 0
    new_revenue: float = 0.0
    returning_orders: int = 0
    returning_revenue: float = 0.0

    @property
    def new_aov(self) -> float | None:
        return self.new_revenue / self.new_orders if self.new_orders else None

    @property
    def returning_aov(self) -> float | None:
        return self.returning_revenue / self.returning_orders if self.returning_orders else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": month_label(self.start),
            "new_orders": self.new_orders,
            "new_revenue": round(self.new_revenue, 2),
            "new_aov": _r(self.new_aov, 2),
            "returning_orders": self.returning_orders,
            "returning_revenue": round(self.returning_revenue, 2),
            "returning_aov": _r(self.returning_aov, 2),
        }


def order_values(orders: Iterable[OrderRec], start: float, end: float) -> list[OrderValues]:
    """Per month of [start, end): AOV of new (first counted order ever) vs returning orders."""
    out = [OrderValues(a, b) for a, b in months(start, end)]
    for history in by_customer(orders).values():
        for i, o in enumerate(history):
            for cell in out:
                if cell.start <= o.at < cell.end:
                    if i == 0:
                        cell.new_orders += 1
                        cell.new_revenue += o.revenue
                    else:
                        cell.returning_orders += 1
                        cell.returning_revenue += o.revenue
    return out


@dataclass
class Cohort:
    month: str
    size: int
    retention: list[float | None]  # k = 0..N; None where month k has not started by the report's end

    def to_dict(self) -> dict[str, Any]:
        return {"month": self.month, "size": self.size, "retention": [_r(x) for x in self.retention]}


def cohort_retention(orders: Iterable[OrderRec], start: float, end: float, max_k: int = 12) -> list[Cohort]:
    """Cohorts of customers whose first counted order falls in [start, end), by UTC month."""
    members: dict[float, list[list[OrderRec]]] = defaultdict(list)
    for history in by_customer(orders).values():
        first = history[0].at
        if start <= first < end:
            members[month_start(first)].append(history)
    out: list[Cohort] = []
    for m in sorted(members):
        group = members[m]
        shares: list[float | None] = []
        for k in range(max_k + 1):
            a, b = add_months(m, k), add_months(m, k + 1)
            if a >= end:
                shares.append(None)
                continue
            shares.append(sum(1 for h in group if _in(h, a, min(b, end))) / len(group))
        out.append(Cohort(month_label(m), len(group), shares))
    return out


# --- journeys -----------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_diff(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score interval (method 10, Statistics in Medicine 1998)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass
class SendStats:
    sent: int = 0
    conversions: int = 0
    revenue: float = 0.0
    delivered: int | None = None  # None: not reported by the channel
    opened: int | None = None
    clicked: int | None = None
    channels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "channels": dict(sorted(self.channels.items())),
            "delivered": self.delivered,
            "opened": self.opened,
            "clicked": self.clicked,
            "conversions": self.conversions,
            "revenue": round(self.revenue, 2),
        }


@dataclass
class Lift:
    treatment_entries: int
    treatment_conversions: int
    control_entries: int
    control_conversions: int
    lift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    relative: float | None = None

    def to_dict(self) -> dict[str, Any]:
        n_t, n_c = self.treatment_entries, self.control_entries
        return {
            "treatment": {
                "entries": n_t,
                "conversions": self.treatment_conversions,
                "rate": _r(self.treatment_conversions / n_t if n_t else None),
            },
            "control": {
                "entries": n_c,
                "conversions": self.control_conversions,
                "rate": _r(self.control_conversions / n_c if n_c else None),
            },
            "lift": _r(self.lift),
            "ci95": None if self.ci_low is None else [_r(self.ci_low), _r(self.ci_high)],
            "ci_method": "Newcombe hybrid score (Wilson), 95%",
            "relative_lift": _r(self.relative),
        }


@dataclass
class JourneyResult:
    journey: str
    entered: int = 0  # entries (treatment and control alike)
    total: SendStats = field(default_factory=SendStats)
    steps: dict[str, SendStats] = field(default_factory=dict)
    variants: dict[str, SendStats] = field(default_factory=dict)
    lift: Lift | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "entered": self.entered,
            **self.total.to_dict(),
            "steps": {k: v.to_dict() for k, v in sorted(self.steps.items())},
            "variants": {k: v.to_dict() for k, v in sorted(self.variants.items())},
            "lift": self.lift.to_dict() if self.lift else None,
        }


def attribute(
    orders: Iterable[OrderRec], sends: Iterable[SentRec], window_days: float = DEFAULT_ATTRIBUTION_DAYS
) -> list[tuple[OrderRec, SentRec]]:
    """Last touch: each counted order placed in (sent, sent + window] after a marketing message to
    the same customer is credited to the latest such message (transactional ones never are)."""
    per: dict[str, list[SentRec]] = defaultdict(list)
    for s in sends:
        if s.kind != "transactional":
            per[s.customer_id].append(s)
    for lst in per.values():
        lst.sort(key=lambda s: s.at)
    w = window_days * DAY
    out: list[tuple[OrderRec, SentRec]] = []
    for o in orders:
        if not o.counted:
            continue
        touches = [s for s in per.get(o.customer_id, []) if s.at < o.at <= s.at + w]
        if touches:
            out.append((o, touches[-1]))
    return out


def lift(
    orders: Iterable[OrderRec], entries: Iterable[EntryRec], window_days: float = DEFAULT_ATTRIBUTION_DAYS
) -> Lift | None:
    """Treatment vs control conversion from entry, over the same window (None without both groups)."""
    mine = by_customer(orders)
    w = window_days * DAY
    counts = {"treatment": [0, 0], "control": [0, 0]}
    for e in entries:
        if e.group not in counts:
            continue
        counts[e.group][0] += 1
        if any(e.at < o.at <= e.at + w for o in mine.get(e.customer_id, [])):
            counts[e.group][1] += 1
    (n_t, x_t), (n_c, x_c) = counts["treatment"], counts["control"]
    result = Lift(n_t, x_t, n_c, x_c)
    if n_t and n_c:
        result.lift, result.ci_low, result.ci_high = newcombe_diff(x_t, n_t, x_c, n_c)
        p_c = x_c / n_c
        result.relative = result.lift / p_c if p_c else None
    return result if (n_t or n_c) else None


def journey_results(
    orders: Iterable[OrderRec],
    sends: Iterable[SentRec],
    entries: Iterable[EntryRec],
    engagement: Iterable[EngagementRec] | None = None,
    window_days: float = DEFAULT_ATTRIBUTION_DAYS,
    lift_window_days: float | None = None,
) -> list[JourneyResult]:
    """Per journey (and per step and variant): messages sent, SES engagement where reported
    (`engagement` None = the channel reported nothing: delivered/opened/clicked stay None),
    last-touch conversions and revenue, and lift against the holdout."""
    orders, sends, entries = list(orders), list(sends), list(entries)
    results: dict[str, JourneyResult] = {}

    def result(journey: str) -> JourneyResult:
        return results.setdefault(journey, JourneyResult(journey))

    def cells(s: SentRec) -> list[SendStats]:
        r = result(s.journey)
        out = [r.total, r.steps.setdefault(s.step_id or "?", SendStats())]
        if s.variant:
            out.append(r.variants.setdefault(s.variant, SendStats()))
        return out

    for s in sends:
        for cell in cells(s):
            cell.sent += 1
            channel = s.channel or "?"
            cell.channels[channel] = cell.channels.get(channel, 0) + 1
    for o, s in attribute(orders, sends, window_days):
        for cell in cells(s):
            cell.conversions += 1
            cell.revenue += o.revenue
    if engagement is not None:
        for r in results.values():
            for cell in (r.total, *r.steps.values(), *r.variants.values()):
                cell.delivered = cell.opened = cell.clicked = 0
        for e in engagement:
            r = result(e.journey)
            targets = [r.total, r.steps.setdefault(e.step_id, SendStats())]
            if e.variant:
                targets.append(r.variants.setdefault(e.variant, SendStats()))
            for cell in targets:
                for name in ("delivered", "opened", "clicked"):
                    if getattr(e, name):
                        setattr(cell, name, (getattr(cell, name) or 0) + 1)
    per_journey: dict[str, list[EntryRec]] = defaultdict(list)
    for entry in entries:
        per_journey[entry.journey].append(entry)
    for journey, group in per_journey.items():
        result(journey).entered = len(group)
        if any(e.group for e in group):
            result(journey).lift = lift(orders, group, lift_window_days or window_days)
    return [results[k] for k in sorted(results)]


# --- fulfilment ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Durations:
    """Median and p90 of a set of durations, in hours."""

    values: list[float] = field(default_factory=list)  # seconds

    def to_dict(self) -> dict[str, Any]:
        med, p90 = percentile(self.values, 0.5), percentile(self.values, 0.9)
        return {
            "count": len(self.values),
            "median_hours": _r(None if med is None else med / 3600, 2),
            "p90_hours": _r(None if p90 is None else p90 / 3600, 2),
        }


@dataclass
class PartnerSpeed:
    partner: str
    forwarded: int = 0
    accepted: int = 0
    failed: int = 0
    open: int = 0  # still pending or retrying
    cancelled: int = 0  # stopped before the partner accepted (the order was cancelled)
    to_acceptance: Durations = field(default_factory=Durations)
    to_shipment: Durations = field(default_factory=Durations)
    to_delivery: Durations = field(default_factory=Durations)

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.forwarded if self.forwarded else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "forwarded": self.forwarded,
            "accepted": self.accepted,
            "failed": self.failed,
            "failure_rate": _r(self.failure_rate),
            "open": self.open,
            "cancelled": self.cancelled,
            "to_acceptance": self.to_acceptance.to_dict(),
            "to_shipment": self.to_shipment.to_dict(),
            "to_delivery": self.to_delivery.to_dict(),
        }


def fulfilment_speed(forwards: Iterable[ForwardRec], start: float, end: float) -> list[PartnerSpeed]:
    """Per partner, for orders placed in [start, end): acceptance, shipment and delivery times, failures."""
    out: dict[str, PartnerSpeed] = {}
    for f in forwards:
        if not start <= f.order_at < end:
            continue
        cell = out.setdefault(f.partner_id, PartnerSpeed(f.partner_id))
        cell.forwarded += 1
        cell.accepted += f.accepted_at is not None
        cell.failed += f.failed
        cell.open += f.status in ("pending", "retrying")
        cell.cancelled += f.status == "cancelled"
        for at, durations in (
            (f.accepted_at, cell.to_acceptance),
            (f.shipped_at, cell.to_shipment),
            (f.delivered_at, cell.to_delivery),
        ):
            if at is not None:
                durations.values.append(max(0.0, at - f.order_at))
    return [out[k] for k in sorted(out)]


def delivery_days(forwards: Iterable[ForwardRec], orders: Iterable[OrderRec] = ()) -> dict[str, float]:
    """order id -> days from the order to its delivery (shared/domain/orders.py
    `order_delivered_at`: the last of the store's own delivery and its accepted parts'), for the
    orders whose delivery is known."""
    parts: dict[str, list[ForwardRec]] = defaultdict(list)
    for f in forwards:
        parts[f.order_id].append(f)
    placed = {o.order_id: o for o in orders}
    out: dict[str, float] = {}
    for order_id in set(parts) | {o for o, rec in placed.items() if rec.delivered_at is not None}:
        group = parts.get(order_id, [])
        own = placed[order_id] if order_id in placed else None
        at = order_delivered_at(
            own.delivered_at if own else None, [(f.accepted_at, f.delivered_at) for f in group]
        )
        start = own.at if own else min(f.order_at for f in group)
        if at is not None:
            out[order_id] = max(0.0, at - start) / DAY
    return out


def speed_band(days: float) -> str:
    return next(label for edge, label in SPEED_BANDS if days <= edge)


@dataclass
class BandRepeat:
    band: str
    orders: int = 0  # counted orders with a known delivery speed whose repeat window is decided
    repeated: int = 0
    open: int = 0  # window still running, no repeat yet: left out of the rate

    @property
    def rate(self) -> float | None:
        return self.repeated / self.orders if self.orders else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "orders": self.orders,
            "repeated": self.repeated,
            "rate": _r(self.rate),
            "open": self.open,
        }


def repeat_by_delivery_speed(
    orders: Iterable[OrderRec],
    forwards: Iterable[ForwardRec],
    start: float,
    end: float,
    window_days: float = DEFAULT_CHURN_WINDOW_DAYS,
) -> list[BandRepeat]:
    """Repeat-purchase rate of the orders placed in [start, end) by delivery speed band."""
    orders = list(orders)
    speed = delivery_days(forwards, orders)
    out = {label: BandRepeat(label) for _, label in SPEED_BANDS}
    w = window_days * DAY
    for history in by_customer(orders).values():
        for o in history:
            if not start <= o.at < end or o.order_id not in speed:
                continue
            cell = out[speed_band(speed[o.order_id])]
            if any(o.at < later.at <= o.at + w and later.at < end for later in history if later is not o):
                cell.orders += 1
                cell.repeated += 1
            elif o.at + w <= end:
                cell.orders += 1
            else:
                cell.open += 1
    return list(out.values())


# --- helpers ------------------------------------------------------------------------------------


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_dict(obj: Any) -> Any:
    return obj.to_dict() if hasattr(obj, "to_dict") else asdict(obj)
