"""Retention metrics on small data sets whose answers are worked out by hand in the comments."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.domain import metrics as m
from shared.domain.metrics import EngagementRec, EntryRec, OrderRec, SentRec

DAY = 86400.0


def ts(day: str) -> float:
    return datetime.fromisoformat(day + "T00:00:00+00:00").timestamp()


def order(
    customer: str, day: str, total: float, refunded: float = 0.0, status: str = "completed"
) -> OrderRec:
    return OrderRec(f"{customer}-{day}", customer, ts(day), total, refunded, status)


# Period [2026-04-01, 2026-05-01), churn window W = 90 days:
#   active at a = 2026-04-01: an order in [2026-01-01, 2026-04-01)
#   active at b = 2026-05-01: an order in [2026-01-31, 2026-05-01)
CHURN_ORDERS = [
    # four small first-time buyers, 10 each on 15 Jan: active at a, not at b -> churned.
    # Tenure at a: 1 Apr - 15 Jan = 76 days -> short.
    *(order(f"small{i}", "2026-01-15", 10) for i in range(4)),
    # one big repeat buyer: 400 on 1 Mar 2025 (outside the window before a) and 500 on 10 Mar 2026,
    # 200 more on 20 Apr (after a: not in the trailing revenue). Active at b -> stays.
    # Tenure at a: 1 Apr 2026 - 1 Mar 2025 = 396 days -> long. Trailing revenue before a: 500.
    order("big", "2025-03-01", 400),
    order("big", "2026-03-10", 500),
    order("big", "2026-04-20", 200),
    # a repeat buyer: 100 on 1 Dec 2025, 60 on 20 Feb refunded 20 (revenue 40). Active at b -> stays.
    # Tenure at a: 121 days -> medium. Trailing revenue before a: only the 20 Feb order -> 40.
    order("mid", "2025-12-01", 100),
    order("mid", "2026-02-20", 60, refunded=20),
    # a cancelled order counts for nothing: never in the base
    order("cancel", "2026-01-20", 1000, status="cancelled"),
    # a new customer in April (not active at a) and a lapsed one (inactive at a)
    order("new", "2026-04-10", 50, refunded=20),
    order("old", "2025-06-01", 70),
]


def test_customer_churn_and_revenue_churn_disagree() -> None:
    result = m.churn(CHURN_ORDERS, ts("2026-04-01"), ts("2026-05-01"), window_days=90)
    # base = small0..3, big, mid = 6; churned = the four smalls
    assert (result.all.base, result.all.churned) == (6, 4)
    assert result.all.customer_churn == pytest.approx(4 / 6)  # 66.7% of customers gone ...
    # base revenue = 4 x 10 + 500 + 40 = 580; churned revenue = 40
    assert result.all.base_revenue == pytest.approx(580)
    assert result.all.churned_revenue == pytest.approx(40)
    assert result.all.revenue_churn == pytest.approx(40 / 580)  # ... but only 6.9% of revenue
    seg = result.segments
    assert (seg["first_time"].base, seg["first_time"].churned, seg["first_time"].revenue_churn) == (4, 4, 1.0)
    assert (seg["repeat"].base, seg["repeat"].churned, seg["repeat"].base_revenue) == (2, 0, 540)
    assert (seg["short"].base, seg["short"].churned) == (4, 4)
    assert (seg["medium"].base, seg["medium"].churned, seg["medium"].base_revenue) == (1, 0, 40)
    assert (seg["long"].base, seg["long"].churned, seg["long"].base_revenue) == (1, 0, 500)


def test_churn_window_is_a_parameter() -> None:
    # With W = 120 days, b's window is [2026-01-01, 2026-05-01): the smalls (15 Jan) stay active.
    result = m.churn(CHURN_ORDERS, ts("2026-04-01"), ts("2026-05-01"), window_days=120)
    # a's window [2025-12-02, 2026-04-01): mid's 1 Dec order is just outside; base is the same 6
    assert (result.all.base, result.all.churned) == (6, 0)
    assert result.all.revenue_churn == 0


def test_tenure_boundaries_in_whole_days() -> None:
    a = ts("2026-04-01")
    assert m.tenure([order("x", "2026-01-01", 1)], a) == "short"  # 90 days
    assert m.tenure([order("x", "2025-12-31", 1)], a) == "medium"  # 91 days
    assert m.tenure([order("x", "2025-04-01", 1)], a) == "medium"  # 365 days
    assert m.tenure([order("x", "2025-03-31", 1)], a) == "long"  # 366 days


def test_churn_series_is_one_period_per_calendar_month_clipped_at_the_end() -> None:
    series = m.churn_series(CHURN_ORDERS, ts("2026-03-01"), ts("2026-04-15"))
    assert [(p.start, p.end) for p in series] == [
        (ts("2026-03-01"), ts("2026-04-01")),
        (ts("2026-04-01"), ts("2026-04-15")),
    ]
    # March: a = 1 Mar, window [2025-12-01, 2026-03-01): smalls, mid (1 Dec and 20 Feb) = 5;
    # big's 10 Mar order is not before a. At b = 1 Apr ([2026-01-01, 2026-04-01)) all five are active.
    assert (series[0].all.base, series[0].all.churned) == (5, 0)


def test_repeat_purchase_rate() -> None:
    # buyers before 1 May: small0..3, big, mid, new, old = 8 (cancel has no counted order);
    # 2+ orders: big, mid -> 2 / 8
    rate = m.repeat_purchase_rate(CHURN_ORDERS, ts("2026-05-01"))
    assert (rate.buyers, rate.repeat_buyers, rate.rate) == (8, 2, 0.25)
    # before 1 Mar 2026: big (1), mid (2), smalls (1 each), old (1) -> buyers 7, repeat 1
    earlier = m.repeat_purchase_rate(CHURN_ORDERS, ts("2026-03-01"))
    assert (earlier.buyers, earlier.repeat_buyers) == (7, 1)


def test_average_order_value_of_new_and_returning_orders() -> None:
    march, april = m.order_values(CHURN_ORDERS, ts("2026-03-01"), ts("2026-05-01"))
    # March: big's 500 on 10 Mar is a returning order; no first orders
    assert (march.new_orders, march.returning_orders, march.returning_aov) == (0, 1, 500)
    assert march.new_aov is None
    # April: new's first order 50 - 20 refunded = 30; big's 200 is returning
    assert (april.new_orders, april.new_aov) == (1, 30)
    assert (april.returning_orders, april.returning_aov) == (1, 200)


def test_cohort_retention_by_first_order_month() -> None:
    orders = [
        order("A", "2026-01-05", 1),
        order("A", "2026-02-10", 1),
        order("A", "2026-03-03", 1),
        order("B", "2026-01-20", 1),
        order("B", "2026-03-25", 1),
        order("C", "2026-01-31", 1),
        order("C", "2026-02-01", 1, status="cancelled"),  # does not count as a return
        order("D", "2026-02-02", 1),
        order("D", "2026-02-20", 1),  # same month as the first order: k = 0 only
        order("D", "2026-04-01", 1),
        order("Z", "2025-12-30", 1),  # first order before the report: no cohort
        order("Z", "2026-01-02", 1),
    ]
    jan, feb = m.cohort_retention(orders, ts("2026-01-01"), ts("2026-04-15"), max_k=3)
    # January cohort A, B, C: Feb A (1/3), Mar A and B (2/3), Apr (to the 15th) nobody
    assert (jan.month, jan.size) == ("2026-01", 3)
    assert jan.retention == pytest.approx([1.0, 1 / 3, 2 / 3, 0.0])
    # February cohort D: Mar none, Apr yes, May has not started by the report's end -> None
    assert (feb.month, feb.size) == ("2026-02", 1)
    assert feb.retention[:3] == [1.0, 0.0, 1.0]
    assert feb.retention[3] is None


T0 = ts("2026-06-01")


def sent(customer: str, journey: str, at: float, step: str, variant: str | None = None) -> SentRec:
    return SentRec(customer, journey, at, step_id=step, variant=variant, channel="email")


def test_journey_results_last_touch_within_the_attribution_window() -> None:
    sends = [
        sent("c1", "cart-abandonment", T0, "email-1"),
        sent("c1", "cart-abandonment", T0 + DAY, "email-2"),
        sent("c2", "welcome", T0, "welcome-1", "a"),
        sent("c3", "welcome", T0, "welcome-1", "b"),
        sent("c4", "win-back", T0, "reactivate"),
        sent("c4", "cart-abandonment", T0 + 3600, "email-1"),
        sent("c5", "win-back", T0, "reactivate"),
    ]
    orders = [
        OrderRec("o1", "c1", T0 + 2 * DAY, 80),  # last touch: cart email-2
        OrderRec("o2", "c2", T0 + 6 * DAY, 99),  # 6 days after: outside the 5-day window
        OrderRec("o3", "c3", T0 + 3 * DAY, 50, status="cancelled"),  # cancelled: no conversion
        OrderRec("o4", "c3", T0 + 4 * DAY, 40, refunded=10),  # welcome variant b, revenue 30
        OrderRec("o5", "c4", T0 + 7200, 100),  # cart email-1 (sent after the win-back email)
        OrderRec("o6", "c5", T0 + 5 * DAY, 20),  # exactly at the window's end: counts
        OrderRec("o7", "c9", T0 + DAY, 500),  # never messaged
    ]
    results = {r.journey: r for r in m.journey_results(orders, sends, [], window_days=5)}
    cart, welcome, winback = results["cart-abandonment"], results["welcome"], results["win-back"]
    # cart: 3 sent (c1 x2, c4), converted o1 (80) and o5 (100)
    assert (cart.total.sent, cart.total.conversions, cart.total.revenue) == (3, 2, 180)
    assert (cart.steps["email-1"].sent, cart.steps["email-1"].conversions) == (2, 1)
    assert cart.steps["email-1"].revenue == 100
    assert (cart.steps["email-2"].sent, cart.steps["email-2"].revenue) == (1, 80)
    assert cart.total.channels == {"email": 3}
    # welcome: 2 sent, one conversion (c3's refunded order: 30) on variant b
    assert (welcome.total.sent, welcome.total.conversions, welcome.total.revenue) == (2, 1, 30)
    assert (welcome.variants["a"].sent, welcome.variants["a"].conversions) == (1, 0)
    assert (welcome.variants["b"].conversions, welcome.variants["b"].revenue) == (1, 30)
    # win-back: c4's order went to the later cart email; c5's at exactly +5 d counts (20)
    assert (winback.total.sent, winback.total.conversions, winback.total.revenue) == (2, 1, 20)
    # nothing reported by the channel: delivered/opened/clicked are None, not 0
    assert cart.total.delivered is None and cart.to_dict()["opened"] is None
    assert cart.lift is None


def test_engagement_counts_per_journey_and_step() -> None:
    sends = [sent("c1", "welcome", T0, "welcome-1"), sent("c2", "welcome", T0, "welcome-1")]
    engagement = [
        EngagementRec("welcome", "welcome-1", delivered=True, opened=True, clicked=True),
        EngagementRec("welcome", "welcome-1", delivered=True),
        EngagementRec("welcome", "brand-story", delivered=True, opened=True),
    ]
    (welcome,) = m.journey_results([], sends, [], engagement)
    assert (welcome.total.delivered, welcome.total.opened, welcome.total.clicked) == (3, 2, 1)
    assert (welcome.steps["welcome-1"].delivered, welcome.steps["welcome-1"].opened) == (2, 1)
    assert welcome.steps["brand-story"].sent == 0


def test_wilson_and_newcombe_match_the_published_example() -> None:
    # Newcombe (1998), example (a): 56/70 vs 48/80, difference 0.2000, method 10: 0.0524 to 0.3339
    d, low, high = m.newcombe_diff(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    # Wilson 95% for 0/10: (0, 0.2775) (Newcombe 1998a, example "0/10")
    low, high = m.wilson(0, 10)
    assert low == 0 and round(high, 4) == 0.2775


def test_lift_against_the_holdout() -> None:
    entries = [
        # treatment: 4 entries, t1..t3 order within 5 days of entering -> 3/4
        *(EntryRec(f"t{i}", "cart-abandonment", T0, "treatment") for i in range(4)),
        # control: 4 entries, c0 orders within the window -> 1/4; c1 orders after 6 days -> no
        *(EntryRec(f"c{i}", "cart-abandonment", T0, "control") for i in range(4)),
    ]
    orders = [
        OrderRec("a", "t1", T0 + DAY, 10),
        OrderRec("b", "t2", T0 + 2 * DAY, 10),
        OrderRec("c", "t3", T0 + 4 * DAY, 10),
        OrderRec("d", "t0", T0 - DAY, 10),  # before entering: not a conversion
        OrderRec("e", "c0", T0 + DAY, 10),
        OrderRec("f", "c1", T0 + 6 * DAY, 10),
    ]
    (cart,) = m.journey_results(orders, [], entries, window_days=5)
    assert cart.lift is not None
    lift = cart.lift
    assert (lift.treatment_entries, lift.treatment_conversions) == (4, 3)
    assert (lift.control_entries, lift.control_conversions) == (4, 1)
    # lift = 3/4 - 1/4 = 0.5; relative = 0.5 / 0.25 = 2.0
    assert lift.lift == pytest.approx(0.5)
    assert lift.relative == pytest.approx(2.0)
    # the interval is Newcombe's for 3/4 - 1/4, and this small a test cannot exclude zero
    assert (lift.ci_low, lift.ci_high) == pytest.approx(m.newcombe_diff(3, 4, 1, 4)[1:])
    assert lift.ci_low is not None and lift.ci_low < 0 < lift.ci_high  # type: ignore[operator]


def test_a_journey_without_holdout_has_no_lift() -> None:
    entries = [EntryRec("x", "welcome", T0, None)]
    (welcome,) = m.journey_results([], [], entries)
    assert welcome.entered == 1
    assert welcome.lift is None


def test_months_cross_the_year() -> None:
    spans = m.months(ts("2025-11-15"), ts("2026-02-01"))
    assert [m.month_label(a) for a, _ in spans] == ["2025-11", "2025-12", "2026-01"]
    assert spans[0] == (ts("2025-11-15"), ts("2025-12-01"))


def test_transactional_messages_are_sent_but_never_credited() -> None:
    sends = [
        sent("c1", "cart-abandonment", T0, "email-1"),
        # the first order's confirmation, 1 h after the cart email: transactional
        SentRec("c1", "post-purchase", T0 + 3600, "confirmation", channel="email", kind="transactional"),
    ]
    orders = [OrderRec("o1", "c1", T0 + 2 * 3600, 70)]  # after both: last touch is the cart email
    results = {r.journey: r for r in m.journey_results(orders, sends, [])}
    assert (results["cart-abandonment"].total.conversions, results["cart-abandonment"].total.revenue) == (
        1,
        70,
    )
    assert (results["post-purchase"].total.sent, results["post-purchase"].total.conversions) == (1, 0)


def test_engagement_per_variant() -> None:
    sends = [sent("c1", "welcome", T0, "welcome-1", "a"), sent("c2", "welcome", T0, "welcome-1", "b")]
    engagement = [
        EngagementRec("welcome", "welcome-1", delivered=True, opened=True, variant="a"),
        EngagementRec("welcome", "welcome-1", delivered=True, variant="b"),
    ]
    (welcome,) = m.journey_results([], sends, [], engagement)
    assert (welcome.variants["a"].delivered, welcome.variants["a"].opened) == (1, 1)
    assert (welcome.variants["b"].delivered, welcome.variants["b"].opened) == (1, 0)


# --- fulfilment -----------------------------------------------------------------------------------

HOUR = 3600.0


def fwd(
    order_id: str,
    partner: str,
    day: str,
    status: str = "accepted",
    accepted_h: float | None = None,
    shipped_h: float | None = None,
    delivered_d: float | None = None,
) -> m.ForwardRec:
    at = ts(day)
    return m.ForwardRec(
        order_id,
        partner,
        at,
        status,
        None if accepted_h is None else at + accepted_h * HOUR,
        None if shipped_h is None else at + shipped_h * HOUR,
        None if delivered_d is None else at + delivered_d * DAY,
    )


def test_percentile_interpolates_between_the_closest_ranks() -> None:
    assert m.percentile([], 0.5) is None
    assert m.percentile([5.0], 0.9) == 5.0
    assert m.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5  # even count: the mean of the middle two
    # ten values 1..10: p90 at rank 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9) = 9.1
    assert m.percentile([float(x) for x in range(10, 0, -1)], 0.9) == pytest.approx(9.1)


def test_fulfilment_speed_per_partner() -> None:
    forwards = [
        # acme: accepted after 1, 2, 3 and 10 h; shipped after 24 and 48 h; one refused, one retrying
        fwd("o1", "acme", "2026-04-02", accepted_h=1, shipped_h=24),
        fwd("o2", "acme", "2026-04-03", accepted_h=2, shipped_h=48, delivered_d=3),
        fwd("o3", "acme", "2026-04-04", accepted_h=3),
        fwd("o4", "acme", "2026-04-05", accepted_h=10),
        fwd("o5", "acme", "2026-04-06", status="rejected"),
        fwd("o6", "acme", "2026-04-07", status="retrying"),
        # ship-it: one failed after 24 h, one stopped by a cancel; one accepted before the period
        fwd("o7", "ship-it", "2026-04-08", status="failed"),
        fwd("o8", "ship-it", "2026-04-09", status="cancelled"),
        fwd("o0", "ship-it", "2026-03-31", accepted_h=100),
    ]
    acme, ship_it = m.fulfilment_speed(forwards, ts("2026-04-01"), ts("2026-05-01"))
    assert (acme.partner, acme.forwarded, acme.accepted, acme.failed, acme.open) == ("acme", 6, 4, 1, 1)
    assert acme.to_dict()["failure_rate"] == 0.1667
    # acceptance 1, 2, 3, 10 h: median 2.5; p90 at rank 2.7 -> 3 + 0.7 * 7 = 7.9
    assert acme.to_dict()["to_acceptance"] == {"count": 4, "median_hours": 2.5, "p90_hours": 7.9}
    # shipment 24, 48 h: median 36; p90 at rank 0.9 -> 24 + 0.9 * 24 = 45.6
    assert acme.to_dict()["to_shipment"] == {"count": 2, "median_hours": 36.0, "p90_hours": 45.6}
    assert acme.to_dict()["to_delivery"]["median_hours"] == 72.0
    assert (ship_it.forwarded, ship_it.accepted, ship_it.failed, ship_it.cancelled) == (2, 0, 1, 1)
    assert ship_it.to_dict()["to_acceptance"] == {"count": 0, "median_hours": None, "p90_hours": None}


def test_delivery_speed_of_an_order_is_its_last_accepted_part() -> None:
    forwards = [
        fwd("split", "acme", "2026-04-01", accepted_h=1, delivered_d=1.5),
        fwd("split", "ship-it", "2026-04-01", accepted_h=1, delivered_d=4),
        fwd("half", "acme", "2026-04-01", accepted_h=1, delivered_d=1),
        fwd("half", "ship-it", "2026-04-01", accepted_h=1),  # not delivered yet: speed unknown
        fwd("refused-part", "acme", "2026-04-01", accepted_h=1, delivered_d=2),
        fwd("refused-part", "ship-it", "2026-04-01", status="rejected"),  # never ships: ignored
    ]
    assert m.delivery_days(forwards) == {"split": 4.0, "refused-part": 2.0}
    assert [m.speed_band(d) for d in (0.5, 2.0, 2.01, 5.0, 7, 10.0, 10.5)] == [
        "<= 2 d", "<= 2 d", "2-5 d", "2-5 d", "5-10 d", "5-10 d", "> 10 d",
    ]  # fmt: skip


def test_repeat_purchase_rate_by_delivery_speed() -> None:
    # Period April 2026, report end 1 May, repeat window 20 days.
    orders = [
        order("fast1", "2026-04-01", 10),  # delivered in 1 d; orders again 10 Apr -> repeated
        order("fast1", "2026-04-10", 10),  # not forwarded: no speed, not counted itself
        order("fast2", "2026-04-02", 10),  # delivered in 2 d; no repeat, window ended 22 Apr -> no
        order("slow1", "2026-04-03", 10),  # delivered in 12 d; repeat on 30 Apr is after 20 d -> no
        order("slow1", "2026-04-30", 10),
        order("slow2", "2026-04-25", 10),  # delivered in 4 d; window open at 1 May, no repeat -> open
        order("gone", "2026-04-04", 10, status="cancelled"),  # cancelled: never counted
    ]
    forwards = [
        fwd("fast1-2026-04-01", "acme", "2026-04-01", accepted_h=1, delivered_d=1),
        fwd("fast2-2026-04-02", "acme", "2026-04-02", accepted_h=1, delivered_d=2),
        fwd("slow1-2026-04-03", "acme", "2026-04-03", accepted_h=1, delivered_d=12),
        fwd("slow2-2026-04-25", "acme", "2026-04-25", accepted_h=1, delivered_d=4),
        fwd("gone-2026-04-04", "acme", "2026-04-04", accepted_h=1, delivered_d=1),
    ]
    bands = m.repeat_by_delivery_speed(orders, forwards, ts("2026-04-01"), ts("2026-05-01"), window_days=20)
    got = {b.band: (b.orders, b.repeated, b.open) for b in bands}
    assert got == {"<= 2 d": (2, 1, 0), "2-5 d": (0, 0, 1), "5-10 d": (0, 0, 0), "> 10 d": (1, 0, 0)}
    assert bands[0].to_dict()["rate"] == 0.5 and bands[1].rate is None


def test_an_order_is_delivered_when_its_own_delivery_and_every_accepted_part_are() -> None:
    from shared.domain.orders import order_delivered_at

    assert order_delivered_at(None, []) is None
    assert order_delivered_at(5.0, []) == 5.0  # the store shipped it itself
    assert order_delivered_at(5.0, [(1.0, 9.0), (None, None)]) == 9.0  # a refused part never ships
    assert order_delivered_at(5.0, [(1.0, None)]) is None  # a part still on its way
    # the report uses the same definition: a store-delivered order gets its band from it
    own = OrderRec("own", "c", ts("2026-04-01"), 10, delivered_at=ts("2026-04-04"))
    assert m.delivery_days([], [own]) == {"own": 3.0}
