"""Loyalty points and tiers, retention (at risk) and the lifecycle index attributes: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.domain.fold import apply_traits, merge_profiles
from shared.domain.loyalty import (
    LoyaltyPolicy,
    TierReached,
    credit_points,
    points_for,
    refresh_tier,
    reverse_points,
    tier_for,
    tier_reached_event,
)
from shared.domain.orders import Order, cancel_order, record_order, refund_order
from shared.domain.profiles import Profile
from shared.domain.retention import RetentionPolicy, index_attributes, update_retention
from shared.platform import indexes

STORE = "shop-1"
DAY = 86400
POLICY = LoyaltyPolicy()  # 1 point per unit; bronze 0, silver 500, gold 2000
T1 = datetime(2026, 1, 10, 9, 30, tzinfo=UTC).timestamp()


def profile(customer_id: str = "u:ada") -> Profile:
    return Profile(store_id=STORE, customer_id=customer_id)


def order(order_id: str, total: str, at: float = T1) -> Order:
    return Order(store_id=STORE, order_id=order_id, customer_id="u:ada", total=Decimal(total), at=at)


def place(p: Profile, o: Order, policy: LoyaltyPolicy = POLICY) -> TierReached | None:
    """What the fold does for a newly counted order."""
    record_order(p, o)
    return credit_points(p, o, policy)


def refund(p: Profile, o: Order, amount: str, at: float) -> int:
    """What the fold does for Order Refunded (the amount is capped at what is left to refund)."""
    value = min(Decimal(amount), o.total - o.refunded)
    refund_order(p, value)
    o.refunded += value
    return reverse_points(p, o, POLICY, at)


# --- points -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "per_unit", "points"),
    [
        ("101.50", "1", 101),  # rounded down
        ("0.99", "1", 0),
        ("10.99", "2.5", 27),  # 27.475
        ("450.99", "0.1", 45),
        ("0", "1", 0),
    ],
)
def test_points_are_per_unit_of_the_order_rounded_down(total: str, per_unit: str, points: int) -> None:
    assert points_for(Decimal(total), LoyaltyPolicy(points_per_unit=Decimal(per_unit))) == points


def test_disabled_loyalty_credits_nothing() -> None:
    p = profile()
    o = order("o1", "900")
    assert place(p, o, LoyaltyPolicy(enabled=False)) is None
    assert (o.points, p.loyalty.points, p.loyalty.tier) == (0, 0, None)


def test_first_order_enters_the_base_tier_without_an_announcement() -> None:
    p = profile()
    o = order("o1", "101.50")
    assert place(p, o) is None  # bronze is where everyone starts: not a raise
    assert (o.points, p.loyalty.points, p.loyalty.tier, p.loyalty.tier_reached_at) == (101, 101, "bronze", T1)


def test_an_order_that_raises_the_tier_says_so() -> None:
    # Given a bronze customer with 101 points
    p = profile()
    place(p, order("o1", "101.50"))

    # When an order of 450.99 takes them to 551 points
    reached = place(p, order("o2", "450.99", at=T1 + DAY))

    # Then they are silver, and the fold says which order did it
    assert reached == TierReached("silver", "bronze", 551, "o2", T1 + DAY)
    assert (p.loyalty.points, p.loyalty.tier, p.loyalty.tier_reached_at) == (551, "silver", T1 + DAY)

    # And a further order within silver raises nothing
    assert place(p, order("o3", "10", at=T1 + 2 * DAY)) is None


def test_a_big_first_order_jumps_straight_to_gold() -> None:
    p = profile()
    assert place(p, order("o1", "2500")) == TierReached("gold", "bronze", 2500, "o1", T1)


def test_partial_refund_takes_back_points_in_proportion_and_the_tier_can_drop() -> None:
    # Given 101 + 450 points (silver); the second order's total is 450.99
    p = profile()
    place(p, order("o1", "101.50"))
    o2 = order("o2", "450.99", at=T1 + DAY)
    place(p, o2)

    # When 100.00 of the second order is refunded: floor(450 * 100 / 450.99) = floor(99.78) = 99
    assert refund(p, o2, "100", at=T1 + 2 * DAY) == 99

    # Then 452 points are left, below silver: back to bronze (no announcement for a drop)
    assert (p.loyalty.points, p.loyalty.tier, p.loyalty.tier_reached_at) == (452, "bronze", T1 + 2 * DAY)
    assert (o2.points, o2.points_reversed) == (450, 99)

    # And a second 100.00 refund: 200 refunded so far -> floor(450 * 200 / 450.99) = 199 in all, 100 more
    assert refund(p, o2, "100", at=T1 + 3 * DAY) == 100
    assert (p.loyalty.points, o2.points_reversed) == (352, 199)

    # And refunding the rest takes back exactly what is left of the order's points, never more
    assert refund(p, o2, "1000", at=T1 + 4 * DAY) == 251
    assert (p.loyalty.points, o2.points_reversed) == (101, 450)
    assert refund(p, o2, "1", at=T1 + 5 * DAY) == 0


def test_cancellation_takes_back_what_is_left_of_the_order() -> None:
    p = profile()
    place(p, order("o1", "101.50"))
    o2 = order("o2", "450.99", at=T1 + DAY)
    place(p, o2)
    refund(p, o2, "100", at=T1 + 2 * DAY)  # 99 taken back already

    cancel_order(p, o2)
    o2.status = "cancelled"
    assert reverse_points(p, o2, POLICY, T1 + 3 * DAY) == 351  # 450 - 99
    assert (p.loyalty.points, p.loyalty.tier) == (101, "bronze")
    # a replayed cancellation takes nothing more
    assert reverse_points(p, o2, POLICY, T1 + 4 * DAY) == 0


def test_balance_never_goes_negative() -> None:
    p = profile()
    o = order("o1", "300")
    place(p, o)
    p.loyalty.points = 100  # e.g. points of a merged visitor that were counted elsewhere
    o.status = "cancelled"
    assert reverse_points(p, o, POLICY, T1 + DAY) == 300
    assert (p.loyalty.points, p.loyalty.tier) == (0, "bronze")


def test_refund_of_a_zero_total_order_takes_nothing() -> None:
    p = profile()
    o = order("o1", "0")
    place(p, o)
    o.refunded = Decimal(0)
    assert reverse_points(p, o, POLICY, T1) == 0


@pytest.mark.parametrize(
    ("points", "tier"), [(0, "bronze"), (499, "bronze"), (500, "silver"), (1999, "silver"), (2000, "gold")]
)
def test_tier_is_the_highest_whose_minimum_is_reached(points: int, tier: str) -> None:
    assert tier_for(points, POLICY) == tier


def test_tiers_follow_the_stores_own_thresholds() -> None:
    policy = LoyaltyPolicy(points_per_unit=Decimal(10), tiers={"member": 0, "vip": 1000})
    p = profile()
    assert place(p, order("o1", "99.99"), policy) is None  # 999 points
    assert place(p, order("o2", "0.10", at=T1 + 1), policy) == TierReached(
        "vip", "member", 1000, "o2", T1 + 1
    )


def test_a_changed_policy_settles_on_the_next_refresh() -> None:
    p = profile()
    place(p, order("o1", "600"))
    assert p.loyalty.tier == "silver"
    refresh_tier(p, LoyaltyPolicy(tiers={"bronze": 0, "silver": 1000}), T1 + DAY)
    assert (p.loyalty.tier, p.loyalty.tier_reached_at) == ("bronze", T1 + DAY)


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"silver": 500}, "exactly one tier must start at 0 points"),
        ({"a": 0, "b": 0}, "exactly one tier must start at 0 points"),
        ({"a": 0, "b": -5}, "tier 'b': the minimum points must be 0 or more"),
        ({"a": 0, "Gold Tier": 5}, "tier name 'Gold Tier' must be lower-case letters, digits, '-' or '_'"),
        ({"a": 0, "b": 5, "c": 5}, "two tiers cannot start at the same number of points"),
        ({}, "between 1 and 20 tiers"),
    ],
)
def test_loyalty_policy_is_validated(tiers: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LoyaltyPolicy(tiers=tiers)


def test_tier_event_is_a_deterministic_customer_event() -> None:
    reached = TierReached("silver", "bronze", 551, "o2", T1)
    event = tier_reached_event(STORE, "u:ada", reached)
    assert (event.type, event.event, event.user_id, event.anonymous_id) == (
        "track",
        "Loyalty Tier Reached",
        "ada",
        None,
    )
    assert event.properties == {"tier": "silver", "previous_tier": "bronze", "points": 551, "order_id": "o2"}
    assert (event.message_id, event.received_at) == ("tier-u:ada-silver-o2", T1)
    assert tier_reached_event(STORE, "u:ada", reached) == event  # a replay gives the same event


def test_merge_brings_the_visitors_points() -> None:
    known, visitor = profile(), profile("a:anon-1")
    place(known, order("o1", "300"))
    place(visitor, order("o2", "250"))
    merge_profiles(known, visitor)
    refresh_tier(known, POLICY, T1 + DAY)
    assert (known.loyalty.points, known.loyalty.tier) == (550, "silver")


# --- retention ----------------------------------------------------------------------------------------


def with_orders(*days: float) -> Profile:
    p = profile()
    for i, d in enumerate(days):
        record_order(p, order(f"o{i}", "10", at=T1 + d * DAY))
    return p


def test_one_order_is_at_risk_after_the_minimum_days() -> None:
    p = with_orders(0)
    update_retention(p, RetentionPolicy())
    assert (p.expected_interval_days, p.at_risk_on) == (None, "2026-04-10")  # 10 Jan + 90 days


def test_regular_customer_uses_the_minimum_when_their_interval_is_shorter() -> None:
    # orders on day 0, 60 and 120: (120 - 0) / (3 - 1) = 60 days expected; max(90, 60) = 90
    p = with_orders(0, 60, 120)
    update_retention(p, RetentionPolicy())
    assert p.expected_interval_days == 60
    assert p.at_risk_on == "2026-08-08"  # 10 May + 90 days


def test_interval_factor_stretches_the_customers_own_interval() -> None:
    # 2 x 60 = 120 days > 90: at risk 120 days after 10 May
    p = with_orders(0, 60, 120)
    update_retention(p, RetentionPolicy(interval_factor=2.0))
    assert p.at_risk_on == "2026-09-07"


def test_slow_buyer_is_judged_by_their_own_rhythm() -> None:
    p = with_orders(0, 200)  # one interval of 200 days
    update_retention(p, RetentionPolicy(at_risk_min_days=30))
    assert (p.expected_interval_days, p.at_risk_on) == (200, "2027-02-14")  # 29 Jul 2026 + 200 days


def test_late_order_recomputes_from_first_and_last() -> None:
    p = with_orders(120, 0, 60)  # folded out of order: same answer
    update_retention(p, RetentionPolicy())
    assert (p.expected_interval_days, p.at_risk_on) == (60, "2026-08-08")


def test_no_orders_left_is_not_at_risk() -> None:
    p = with_orders(0)
    cancel_order(p, order("o0", "10"))
    update_retention(p, RetentionPolicy())
    assert (p.expected_interval_days, p.at_risk_on) == (None, None)


# --- index attributes -------------------------------------------------------------------------------


def test_profile_carries_an_attribute_per_lifecycle_index() -> None:
    p = with_orders(0, 60, 120)
    apply_traits(p, {"birthday": "1990-04-23"}, T1)
    update_retention(p, RetentionPolicy())
    assert p.birthday_month_day == "04-23"
    lifecycle = {"bday", "anniv", "risk"}
    assert {k: v for k, v in index_attributes(p).items() if k in lifecycle} == {
        "bday": indexes.birthday_key(STORE, "04-23"),
        "anniv": indexes.anniversary_key(STORE, "01-10"),
        "risk": indexes.at_risk_key(STORE, "2026-08-08"),
    }
    # a buyer is also in the store's buyers index (the daily RFM run; tests/unit/test_segments.py)
    assert indexes.BUYERS.partition in index_attributes(p)


def test_a_profile_without_orders_or_birthday_is_in_no_index() -> None:
    assert index_attributes(profile()) == {}


def test_anniversary_is_the_utc_day_of_the_first_order() -> None:
    # 23:30 in New York on 9 January is already 10 January in UTC
    p = profile()
    record_order(p, order("o1", "10", at=datetime(2026, 1, 10, 4, 30, tzinfo=UTC).timestamp()))
    assert index_attributes(p)["anniv"] == indexes.anniversary_key(STORE, "01-10")


@pytest.mark.parametrize(("sent", "month_day"), [("04-23", "04-23"), ("2000-02-29", "02-29")])
def test_birthday_month_day(sent: str, month_day: str) -> None:
    p = profile()
    apply_traits(p, {"birthday": sent}, T1)
    assert index_attributes(p) == {"bday": indexes.birthday_key(STORE, month_day)}


def test_clearing_the_birthday_leaves_the_index_and_a_late_value_does_not_return() -> None:
    p = profile()
    apply_traits(p, {"birthday": "04-23"}, T1)
    apply_traits(p, {"birthday": None}, T1 + 10)
    assert (p.birthday_month_day, index_attributes(p)) == (None, {})
    apply_traits(p, {"birthday": "05-01"}, T1 + 5)  # older than the clearing
    assert p.birthday_month_day is None


def test_a_merged_profile_is_in_no_index() -> None:
    known, visitor = profile(), with_orders(0)
    apply_traits(visitor, {"birthday": "04-23"}, T1)
    update_retention(visitor, RetentionPolicy())
    assert {"bday", "anniv", "risk", "buyer"} <= set(index_attributes(visitor))

    merge_profiles(known, visitor)
    update_retention(known, RetentionPolicy())

    assert index_attributes(visitor) == {}
    lifecycle = {"bday", "anniv", "risk"}
    assert {k: v for k, v in index_attributes(known).items() if k in lifecycle} == {
        "bday": indexes.birthday_key(STORE, "04-23"),
        "anniv": indexes.anniversary_key(STORE, "01-10"),
        "risk": indexes.at_risk_key(STORE, "2026-04-10"),
    }
