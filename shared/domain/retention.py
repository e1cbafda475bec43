"""Retention: when a customer counts as at risk, and the index attributes scheduled runs read.

The daily runs (birthdays, anniversaries, at-risk, RFM, segment re-checks) find profiles through
sparse indexes (shared/platform/indexes.py); the attributes are computed here from the profile so
the store writes them in the same item, and an index never disagrees with its profile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.domain.profiles import DAY_S, Profile
from shared.platform import indexes


class RetentionPolicy(BaseModel):
    """When a customer counts as at risk (the win-back journey's trigger)."""

    at_risk_min_days: int = Field(default=90, ge=1, le=3650)
    # at risk after this many of the customer's own average intervals between orders (if longer)
    interval_factor: float = Field(default=1.0, gt=0, le=100)
    # churned after this long without an order (lifecycle stage; see shared/domain/segments.py)
    churn_after_days: int = Field(default=365, ge=1, le=3650)


def _utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def update_retention(profile: Profile, policy: RetentionPolicy) -> None:
    """Expected interval between orders and the day the customer becomes at risk.

    threshold = max(at_risk_min_days, interval_factor * expected interval); at risk on the UTC day
    of last order + threshold. No order (or every order cancelled): not at risk.
    """
    o = profile.orders
    if o.count >= 2 and o.first_order_at is not None and o.last_order_at is not None:
        profile.expected_interval_days = (o.last_order_at - o.first_order_at) / (o.count - 1) / DAY_S
    else:
        profile.expected_interval_days = None
    if o.count < 1 or o.last_order_at is None:
        profile.at_risk_on = None
        return
    threshold = float(policy.at_risk_min_days)
    if profile.expected_interval_days is not None:
        threshold = max(threshold, policy.interval_factor * profile.expected_interval_days)
    profile.at_risk_on = _utc_day(o.last_order_at + threshold * DAY_S)


def index_attributes(profile: Profile) -> dict[str, Any]:
    """The sparse-index attributes the profile item carries (shared/platform/indexes.py). A profile merged
    into another carries none: it must not be found by any scheduled run."""
    if profile.merged_into is not None:
        return {}
    store, out = profile.store_id, dict[str, Any]()
    if profile.birthday_month_day:
        out[indexes.BY_BIRTHDAY.partition] = indexes.birthday_key(store, profile.birthday_month_day)
    if profile.orders.first_order_at is not None and profile.orders.count > 0:
        first = datetime.fromtimestamp(profile.orders.first_order_at, tz=UTC).strftime("%m-%d")
        out[indexes.BY_ANNIVERSARY.partition] = indexes.anniversary_key(store, first)
    if profile.at_risk_on:
        out[indexes.AT_RISK.partition] = indexes.at_risk_key(store, profile.at_risk_on)
    o = profile.orders
    if o.count > 0 and o.last_order_at is not None:
        # the daily RFM run reads every buyer's values from the index, never the profiles
        out[indexes.BUYERS.partition] = indexes.buyers_key(store, indexes.buyer_shard(profile.customer_id))
        out[indexes.RFM_LAST_ORDER] = o.last_order_at
        out[indexes.RFM_FREQUENCY] = o.count
        out[indexes.RFM_MONETARY] = o.revenue - o.refunded
        if profile.rfm is not None:
            out[indexes.RFM_SCORE] = f"{profile.rfm.r}{profile.rfm.f}{profile.rfm.m}"
    if profile.segments_due is not None:
        out[indexes.SEGMENTS_DUE.partition] = indexes.segments_due_key(store, _utc_day(profile.segments_due))
    return out
