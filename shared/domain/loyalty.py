"""Loyalty: points for orders, tiers by points, and the event a raised tier announces.

Points follow the orders that earned them: credited once when an order is counted, taken back in
proportion by refunds and entirely by a cancellation, so a tier can go down as well as up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from pydantic import BaseModel, Field, field_validator

from shared.domain.events import LOYALTY_TIER_REACHED, CanonicalEvent, customer_event
from shared.domain.orders import Order
from shared.domain.profiles import Profile

_TIER_NAME = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"


class LoyaltyPolicy(BaseModel):
    """Points for orders, and tiers by points."""

    enabled: bool = True
    # points per 1 unit of the order's currency, rounded down per order
    points_per_unit: Decimal = Field(default=Decimal(1), ge=0, le=Decimal(1000))
    # tier name -> minimum points; exactly one tier starts at 0
    tiers: dict[str, int] = Field(default_factory=lambda: {"bronze": 0, "silver": 500, "gold": 2000})

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: dict[str, int]) -> dict[str, int]:
        if not v or len(v) > 20:
            raise ValueError("between 1 and 20 tiers")
        for name, threshold in v.items():
            if len(name) > 32 or not re.fullmatch(_TIER_NAME, name):
                raise ValueError(f"tier name {name!r} must be lower-case letters, digits, '-' or '_'")
            if threshold < 0:
                raise ValueError(f"tier {name!r}: the minimum points must be 0 or more")
        if sorted(v.values()).count(0) != 1:
            raise ValueError("exactly one tier must start at 0 points")
        if len(set(v.values())) != len(v):
            raise ValueError("two tiers cannot start at the same number of points")
        return v


@dataclass(frozen=True)
class TierReached:
    """An order lifted the customer into a higher tier: announced as a Loyalty Tier Reached event."""

    tier: str
    previous_tier: str | None
    points: int
    order_id: str
    at: float


def points_for(total: Decimal, policy: LoyaltyPolicy) -> int:
    if not policy.enabled or total <= 0:
        return 0
    return int((total * policy.points_per_unit).to_integral_value(rounding=ROUND_FLOOR))


def tier_for(points: int, policy: LoyaltyPolicy) -> str | None:
    """The highest tier whose minimum is at most `points`."""
    reached = [(minimum, name) for name, minimum in policy.tiers.items() if minimum <= points]
    return max(reached)[1] if reached else None


def _rank(tier: str | None, policy: LoyaltyPolicy) -> int:
    return policy.tiers.get(tier, -1) if tier else -1


def refresh_tier(profile: Profile, policy: LoyaltyPolicy, at: float) -> None:
    """Settle the tier on the current points (it can go down after a refund)."""
    tier = tier_for(profile.loyalty.points, policy)
    if tier != profile.loyalty.tier:
        profile.loyalty.tier, profile.loyalty.tier_reached_at = tier, at


def credit_points(profile: Profile, order: Order, policy: LoyaltyPolicy) -> TierReached | None:
    """Credit a newly counted order's points (once per order_id: the caller counts it once).

    Returns the tier reached if the order raised it. Entering the base tier (the one at 0 points)
    with a first order is not a raise.
    """
    order.points = points_for(order.total, policy)
    if not policy.enabled:
        return None
    loyalty = profile.loyalty
    previous = loyalty.tier or tier_for(loyalty.points, policy)
    loyalty.points += order.points
    refresh_tier(profile, policy, order.at)
    if loyalty.tier is not None and _rank(loyalty.tier, policy) > _rank(previous, policy):
        return TierReached(loyalty.tier, previous, loyalty.points, order.order_id, order.at)
    return None


def reverse_points(profile: Profile, order: Order, policy: LoyaltyPolicy, at: float) -> int:
    """Take back an order's points after a refund (in proportion to the amount refunded so far,
    rounded down) or a cancellation (all that is left). Returns the points taken back."""
    if order.status == "cancelled":
        due = order.points
    elif order.total > 0:
        due = math.floor(Decimal(order.points) * min(order.refunded, order.total) / order.total)
    else:
        due = 0
    taken = max(0, min(due, order.points) - order.points_reversed)
    if taken:
        order.points_reversed += taken
        profile.loyalty.points = max(0, profile.loyalty.points - taken)
        refresh_tier(profile, policy, at)
    return taken


def tier_reached_event(store_id: str, customer_id: str, reached: TierReached) -> CanonicalEvent:
    """The Loyalty Tier Reached track event; the same order always gives the same messageId."""
    return customer_event(
        store_id,
        customer_id,
        LOYALTY_TIER_REACHED,
        {
            "tier": reached.tier,
            "previous_tier": reached.previous_tier,
            "points": reached.points,
            "order_id": reached.order_id,
        },
        reached.at,
        f"tier-{customer_id}-{reached.tier}-{reached.order_id}",
    )
