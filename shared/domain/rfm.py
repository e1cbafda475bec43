"""RFM: recency, frequency and monetary scores against each store's quintile edges.

Recency is days since the last order, frequency the orders (net of cancellations), monetary the
revenue (net of cancellations and refunds); each is scored 1..5 against quintile edges the daily
run computes per store (`compute_edges`) and keeps on a store-level item. Equal values always get
equal scores, so a store where most customers ordered once has few frequency scores in use. R and
F name the customer's group on the common "RFM segments" grid (`RFM_GRID`).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from shared.domain.profiles import DAY_S, Profile, Rfm

RfmGroup = Literal["champions", "loyal", "new", "promising", "at-risk", "cant-lose", "hibernating", "lost"]
RFM_GROUPS: tuple[str, ...] = (
    "champions",
    "loyal",
    "new",
    "promising",
    "at-risk",
    "cant-lose",
    "hibernating",
    "lost",
)

# Rows: R score 5 (ordered most recently) .. 1; columns: F score 1 .. 5. Monetary is kept on the
# profile and usable in segment files (rfm: {m: {gte: 4}}) but, as in the common grid, does not
# name the group.
RFM_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new", "promising", "promising", "champions", "champions"),
    4: ("promising", "promising", "promising", "loyal", "champions"),
    3: ("hibernating", "hibernating", "loyal", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at-risk", "at-risk", "cant-lose"),
    1: ("lost", "lost", "at-risk", "at-risk", "cant-lose"),
}


class RfmEdges(BaseModel):
    """A store's quintile edges (4 ascending cut points per measure), from the daily run."""

    recency_days: list[float]
    frequency: list[float]
    monetary: list[float]
    computed_at: float
    buyers: int


def quintile_edges(values: list[float]) -> list[float]:
    """The 20th, 40th, 60th and 80th percentiles (nearest rank) of `values`: 4 ascending edges.

    With ties an edge repeats (e.g. [1, 1, 1, 2] when most customers ordered once).
    """
    if not values:
        return []
    ordered = sorted(values)
    n = len(ordered)
    return [ordered[max(0, math.ceil(k * n / 5) - 1)] for k in (1, 2, 3, 4)]


def score_high(value: float, edges: list[float]) -> int:
    """1..5, higher is better: 1 + the number of edges the value is above (equal values score equal)."""
    return 1 + sum(1 for e in edges if value > e)


def score_low(value: float, edges: list[float]) -> int:
    """1..5 where lower is better (recency: fewer days since the last order scores 5)."""
    return 5 - sum(1 for e in edges if value > e)


def rfm_group(r: int, f: int) -> str:
    return RFM_GRID[r][f - 1]


def rfm_values(profile: Profile, now: float) -> tuple[float, int, Decimal] | None:
    """(recency in days, frequency, monetary) of a buyer, or None for someone with no counted order."""
    o = profile.orders
    if o.count < 1 or o.last_order_at is None:
        return None
    return max(0.0, (now - o.last_order_at) / DAY_S), o.count, o.revenue - o.refunded


def scores(recency_days: float, frequency: float, monetary: float, edges: RfmEdges) -> tuple[int, int, int]:
    return (
        score_low(recency_days, edges.recency_days),
        score_high(frequency, edges.frequency),
        score_high(monetary, edges.monetary),
    )


def score(profile: Profile, edges: RfmEdges | None, now: float) -> Rfm | None:
    """The profile's RFM against the store's edges (None before the store's first daily run, or for
    a customer with no counted order)."""
    values = rfm_values(profile, now)
    if values is None or edges is None or not edges.recency_days:
        return None
    r, f, m = scores(values[0], values[1], float(values[2]), edges)
    return Rfm(r=r, f=f, m=m, group=rfm_group(r, f), scored_at=now, edges_at=edges.computed_at)


class BuyerRow(BaseModel):
    """One buyer as the `buyers` index holds them (shared/platform/indexes.py BUYERS)."""

    customer_id: str
    last_order_at: float
    frequency: int
    monetary: float
    score: str | None = None  # "RFM" digits as last scored


def compute_edges(rows: list[BuyerRow], now: float) -> RfmEdges | None:
    """A store's quintile edges from its buyers (None: no buyer yet)."""
    if not rows:
        return None
    return RfmEdges(
        recency_days=quintile_edges([max(0.0, (now - b.last_order_at) / DAY_S) for b in rows]),
        frequency=quintile_edges([float(b.frequency) for b in rows]),
        monetary=quintile_edges([b.monetary for b in rows]),
        computed_at=now,
        buyers=len(rows),
    )


def stale_scores(rows: list[BuyerRow], edges: RfmEdges, now: float) -> list[str]:
    """The buyers whose scores these edges (at `now`) change: the ones the daily run rescores."""
    out: list[str] = []
    for b in rows:
        fresh = scores(max(0.0, (now - b.last_order_at) / DAY_S), b.frequency, b.monetary, edges)
        if b.score != "".join(map(str, fresh)):
            out.append(b.customer_id)
    return out
