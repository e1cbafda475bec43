"""RFM scoring, groups, lifecycle stages and segment definitions, on hand-computed data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from shared.adapters.journey_catalog import parse as parse_journey
from shared.adapters.segment_catalog import SegmentFileError, parse, problems
from shared.domain.journey_decisions import entry_problem
from shared.domain.journeys import Entry
from shared.domain.orders import Order, cancel_order, record_order, refund_order
from shared.domain.profiles import DAY_S, Consent, Profile
from shared.domain.retention import RetentionPolicy, index_attributes, update_retention
from shared.domain.rfm import (
    RFM_GRID,
    RFM_GROUPS,
    BuyerRow,
    RfmEdges,
    compute_edges,
    quintile_edges,
    rfm_group,
    score,
    score_high,
    score_low,
    stale_scores,
)
from shared.domain.segments import Segment, lifecycle_stage, memberships, next_change, segment_problem
from shared.platform import indexes

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()
POLICY = RetentionPolicy()


def at(days: float) -> float:
    return T0 + days * DAY_S


def buyer(*order_days: float, totals: tuple[str, ...] = (), customer: str = "u:ada") -> Profile:
    p = Profile(store_id="shop-1", customer_id=customer, user_id=customer[2:])
    for i, day in enumerate(order_days):
        total = Decimal(totals[i]) if i < len(totals) else Decimal(50)
        record_order(
            p, Order(store_id="shop-1", order_id=f"o{i}", customer_id=customer, total=total, at=at(day))
        )
    update_retention(p, POLICY)
    return p


# ---------------------------------------------------------------------------------------------
# quintile edges and scores


def test_quintile_edges_of_ten_distinct_values_split_them_in_fifths() -> None:
    values = [float(v) for v in range(1, 11)]
    edges = quintile_edges(values)
    assert edges == [2, 4, 6, 8]
    assert [score_high(v, edges) for v in values] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_quintile_edges_with_ties_give_equal_values_equal_scores() -> None:
    # most customers ordered once: 7 ones, then 2, 3 and 5 orders
    values = [1.0] * 7 + [2.0, 3.0, 5.0]
    edges = quintile_edges(values)
    assert edges == [1, 1, 1, 2]  # ranks 2, 4, 6, 8 of the sorted values
    assert {v: score_high(v, edges) for v in values} == {1.0: 1, 2.0: 4, 3.0: 5, 5.0: 5}
    # order of input never matters
    assert quintile_edges(list(reversed(values))) == edges


def test_quintile_edges_of_few_buyers() -> None:
    assert quintile_edges([]) == []
    assert quintile_edges([7.0]) == [7, 7, 7, 7]
    assert score_high(7.0, [7, 7, 7, 7]) == 1  # one buyer: nothing to be above
    assert quintile_edges([5.0, 10.0, 20.0]) == [5, 10, 10, 20]
    assert [score_high(v, [5, 10, 10, 20]) for v in (5.0, 10.0, 20.0)] == [1, 2, 4]


def test_recency_scores_fewer_days_higher() -> None:
    edges = [10.0, 30.0, 60.0, 120.0]
    assert [score_low(d, edges) for d in (0, 10, 10.5, 30, 31, 60, 61, 120, 121, 900)] == [
        5, 5, 4, 4, 3, 3, 2, 2, 1, 1,
    ]  # fmt: skip


def test_compute_edges_and_scores_from_buyers() -> None:
    # five buyers, last orders 1, 5, 20, 50, 100 days ago; 1..5 orders; 10..500 net revenue
    now = at(200)
    rows = [
        BuyerRow(customer_id=f"u:{i}", last_order_at=now - d * DAY_S, frequency=f, monetary=m)
        for i, (d, f, m) in enumerate([(1, 5, 500), (5, 4, 200), (20, 3, 80), (50, 2, 30), (100, 1, 10)])
    ]
    edges = compute_edges(rows, now)
    assert edges is not None
    assert edges.recency_days == [1, 5, 20, 50]
    assert edges.frequency == [1, 2, 3, 4]
    assert edges.monetary == [10, 30, 80, 200]
    assert edges.buyers == 5 and edges.computed_at == now
    # never scored: everyone is stale; scored right: nobody
    assert stale_scores(rows, edges, now) == [r.customer_id for r in rows]
    scored = [
        r.model_copy(update={"score": s})
        for r, s in zip(rows, ["555", "444", "333", "222", "111"], strict=True)
    ]
    assert stale_scores(scored, edges, now) == []
    # a day later everyone sitting on a recency edge drops one R score; R1 cannot drop
    assert stale_scores(scored, edges, now + DAY_S) == ["u:0", "u:1", "u:2", "u:3"]
    assert compute_edges([], now) is None


def test_profile_score_uses_net_revenue_and_counted_orders() -> None:
    edges = RfmEdges(
        recency_days=[10, 30, 60, 120],
        frequency=[1, 1, 2, 3],
        monetary=[20, 50, 100, 200],
        computed_at=at(0),
        buyers=50,
    )
    p = buyer(0, 40, 80, totals=("100", "100", "100"))  # 3 orders, 300
    rfm = score(p, edges, at(85))  # 5 days since the last order
    assert rfm is not None and (rfm.r, rfm.f, rfm.m, rfm.group) == (5, 4, 5, "champions")
    refund_order(p, Decimal("150"))  # monetary 150 -> above 100, not above 200
    cancel_order(
        p, Order(store_id="shop-1", order_id="o2", customer_id="u:ada", total=Decimal(100), at=at(80))
    )
    rfm = score(p, edges, at(85))  # 2 orders now, 200 - 150 = 50 net
    assert rfm is not None and (rfm.f, rfm.m) == (3, 2)
    assert score(Profile(store_id="shop-1", customer_id="u:x"), edges, at(85)) is None  # no order
    assert score(p, None, at(85)) is None  # before the store's first daily run


# ---------------------------------------------------------------------------------------------
# named groups


@pytest.mark.parametrize(
    ("r", "f", "group"),
    [
        (5, 1, "new"),
        (5, 5, "champions"),
        (4, 5, "champions"),
        (5, 4, "champions"),
        (4, 4, "loyal"),
        (3, 3, "loyal"),
        (4, 1, "promising"),
        (5, 2, "promising"),
        (2, 3, "at-risk"),
        (1, 4, "at-risk"),
        (1, 5, "cant-lose"),
        (2, 5, "cant-lose"),
        (3, 1, "hibernating"),
        (2, 2, "hibernating"),
        (1, 1, "lost"),
        (1, 2, "lost"),
    ],
)
def test_rfm_group_grid(r: int, f: int, group: str) -> None:
    assert rfm_group(r, f) == group


def test_the_grid_covers_every_score_with_the_eight_groups() -> None:
    assert sorted(RFM_GRID) == [1, 2, 3, 4, 5]
    used = {g for row in RFM_GRID.values() for g in row}
    assert used == set(RFM_GROUPS) and len(RFM_GROUPS) == 8


# ---------------------------------------------------------------------------------------------
# lifecycle


def test_lifecycle_prospect_first_time_repeat() -> None:
    assert lifecycle_stage(Profile(store_id="shop-1", customer_id="a:v"), at(0), POLICY) == "prospect"
    assert lifecycle_stage(buyer(0), at(10), POLICY) == "first-time-buyer"
    assert lifecycle_stage(buyer(0, 20), at(30), POLICY) == "repeat-buyer"


def test_lifecycle_at_risk_is_the_win_back_day_and_churn_follows() -> None:
    # one order on day 0: at risk from day 90 (the store minimum), churned after 365 days
    p = buyer(0)
    assert p.at_risk_on == datetime.fromtimestamp(at(90), tz=UTC).date().isoformat()
    day90 = datetime.fromisoformat(p.at_risk_on).replace(tzinfo=UTC).timestamp()
    assert lifecycle_stage(p, day90 - 1, POLICY) == "first-time-buyer"
    assert lifecycle_stage(p, day90, POLICY) == "at-risk"  # from the start of the UTC day
    assert lifecycle_stage(p, at(365) - 1, POLICY) == "at-risk"
    assert lifecycle_stage(p, at(365), POLICY) == "churned"


def test_a_yearly_customer_is_at_risk_for_30_days_before_churning() -> None:
    # orders 400 days apart: expected interval 400 d > the 365 d churn window
    p = buyer(0, 400)
    assert p.at_risk_on == datetime.fromtimestamp(at(800), tz=UTC).date().isoformat()
    assert lifecycle_stage(p, at(400 + 380), POLICY) == "repeat-buyer"  # past 365 d, not yet due
    assert lifecycle_stage(p, at(800), POLICY) == "at-risk"
    assert lifecycle_stage(p, at(829), POLICY) == "at-risk"
    assert lifecycle_stage(p, at(830.5), POLICY) == "churned"


def test_churn_window_is_a_store_setting() -> None:
    p = buyer(0)
    assert lifecycle_stage(p, at(200), RetentionPolicy(churn_after_days=180)) == "churned"
    assert lifecycle_stage(p, at(200), POLICY) == "at-risk"


# ---------------------------------------------------------------------------------------------
# segment definitions


def seg(**fields: object) -> Segment:
    return Segment.model_validate({"id": "s", **fields})


def test_aggregate_filters_orders_revenue_and_aov() -> None:
    p = buyer(0, 10, 20, totals=("40", "60", "50"))  # 3 orders, 150, AOV 50
    now = at(25)
    assert segment_problem(seg(orders={"gte": 3}), p, now, POLICY) is None
    assert segment_problem(seg(orders={"gt": 3}), p, now, POLICY) == "orders 3 is not > 3"
    assert segment_problem(seg(revenue={"gte": 100, "lt": 200}), p, now, POLICY) is None
    refund_order(p, Decimal(60))  # net 90
    assert segment_problem(seg(revenue={"gte": 100}), p, now, POLICY) == "revenue 90 is not >= 100"
    assert segment_problem(seg(aov={"eq": 30}), p, now, POLICY) is None
    assert segment_problem(seg(aov={"gte": 50}), p, now, POLICY) == "aov 30 is not >= 50"


def test_rfm_group_scores_and_lifecycle_filters() -> None:
    edges = RfmEdges(
        recency_days=[10, 30, 60, 120],
        frequency=[1, 1, 2, 3],
        monetary=[20, 50, 100, 200],
        computed_at=0,
        buyers=9,
    )
    p = buyer(0, 40, 80, totals=("100", "100", "100"))
    now = at(85)
    p.rfm = score(p, edges, now)
    assert segment_problem(seg(rfm_groups=["champions", "loyal"]), p, now, POLICY) is None
    assert segment_problem(seg(rfm_groups=["lost"]), p, now, POLICY) == "RFM group champions not in lost"
    assert segment_problem(seg(rfm={"m": {"gte": 4}}), p, now, POLICY) is None
    assert segment_problem(seg(rfm={"r": {"lte": 2}}), p, now, POLICY) == "RFM R 5 is not <= 2"
    assert segment_problem(seg(lifecycle=["repeat-buyer"]), p, now, POLICY) is None
    assert (
        segment_problem(seg(lifecycle=["at-risk", "churned"]), p, now, POLICY)
        == "lifecycle repeat-buyer not in at-risk, churned"
    )
    unscored = buyer(0)
    assert segment_problem(seg(rfm_groups=["new"]), unscored, at(1), POLICY) == "RFM group none not in new"
    assert segment_problem(seg(rfm={"f": {"gte": 1}}), unscored, at(1), POLICY) == "no RFM score yet"


def test_consent_traits_known_and_loyalty_filters() -> None:
    p = Profile(
        store_id="shop-1",
        customer_id="u:ada",
        user_id="ada",
        traits={"country": "FR", "age": 34},
        consent={
            "email": Consent(status="subscribed", at=at(0)),
            "sms": Consent(status="unsubscribed", at=at(0)),
        },
    )
    now = at(1)
    assert segment_problem(seg(consent=["email"]), p, now, POLICY) is None
    assert segment_problem(seg(consent=["sms", "push"]), p, now, POLICY) == "no sms or push consent"
    assert segment_problem(seg(traits={"country": ["fr", "be"], "age": {"gte": 18}}), p, now, POLICY) is None
    assert segment_problem(seg(traits={"age": {"lt": 30}}), p, now, POLICY) == "trait age does not match"
    assert segment_problem(seg(known=True), p, now, POLICY) is None
    visitor = Profile(store_id="shop-1", customer_id="a:v")
    assert segment_problem(seg(known=True), visitor, now, POLICY) == "an anonymous visitor"
    assert segment_problem(seg(loyalty_tiers=["gold"]), p, now, POLICY) == "loyalty tier none not in gold"
    assert segment_problem(seg(known=True), None, now, POLICY) == "no profile"


def test_events_in_a_window_and_when_that_changes() -> None:
    p = Profile(store_id="shop-1", customer_id="u:ada", last_event_at={"Product Viewed": at(0)})
    browsing = seg(events={"product viewed": {"within_days": 7}})  # names are canonicalised
    quiet = seg(events={"Product Viewed": {"not_within_days": 30}})
    assert segment_problem(browsing, p, at(7), POLICY) is None
    assert segment_problem(browsing, p, at(7.01), POLICY) == "no Product Viewed in the last 7 days"
    assert segment_problem(quiet, p, at(30), POLICY) == "Product Viewed in the last 30 days"
    assert segment_problem(quiet, p, at(30.01), POLICY) is None
    never = Profile(store_id="shop-1", customer_id="u:bo")
    assert segment_problem(quiet, never, at(1), POLICY) is None  # never viewed: not in the last 30 days
    assert next_change([browsing, quiet], p, at(1), POLICY) == at(7) + 1
    assert next_change([browsing, quiet], p, at(8), POLICY) == at(30) + 1
    assert next_change([browsing, quiet], p, at(31), POLICY) is None


def test_next_change_includes_the_at_risk_day_and_churn() -> None:
    p = buyer(0)
    risk_day = datetime.fromisoformat(str(p.at_risk_on)).replace(tzinfo=UTC).timestamp()
    assert next_change([], p, at(1), POLICY) == risk_day
    assert next_change([], p, risk_day, POLICY) == at(365)


def test_memberships_are_sorted_and_a_merged_profile_has_none() -> None:
    p = buyer(0)
    defs = [
        seg(lifecycle=["first-time-buyer"]).model_copy(update={"id": "b"}),
        seg(orders={"gte": 1}).model_copy(update={"id": "a"}),
        seg(orders={"gte": 2}).model_copy(update={"id": "c"}),
    ]
    assert memberships(defs, p, at(1), POLICY) == ["a", "b"]
    p.merged_into = "u:other"
    assert memberships(defs, p, at(1), POLICY) == []


def test_index_attributes_list_buyers_with_rfm_values_and_the_due_day() -> None:
    p = buyer(0, 10, totals=("40", "60"))
    refund_order(p, Decimal(10))
    p.segments_due = at(90)
    attrs = index_attributes(p)
    assert attrs[indexes.BUYERS.partition] == indexes.buyers_key("shop-1", indexes.buyer_shard("u:ada"))
    assert attrs[indexes.RFM_FREQUENCY] == 2 and attrs[indexes.RFM_MONETARY] == Decimal(90)
    assert attrs[indexes.RFM_LAST_ORDER] == at(10)
    assert indexes.RFM_SCORE not in attrs  # not scored yet
    day = datetime.fromtimestamp(at(90), tz=UTC).date().isoformat()
    assert attrs[indexes.SEGMENTS_DUE.partition] == f"STORE#shop-1#SEGDUE#{day}"
    assert indexes.BUYERS.partition not in index_attributes(Profile(store_id="shop-1", customer_id="a:v"))


# ---------------------------------------------------------------------------------------------
# segment files


def test_segment_file_problems_carry_their_lines() -> None:
    text = "name: VIPs\nlifecycle: [repeat-buyer, vip]\nrevenu: {gte: 500}\nevents:\n  Order Complted: {within_days: 30}\n"
    found = problems(text, "segments/shop-1/vips.yaml")
    lines = {line for line, _ in found}
    assert lines == {2, 3, 5}, found
    messages = " | ".join(m for _, m in found)
    assert "lifecycle[1]" in messages and "revenu: unknown field" in messages
    assert "did you mean 'Order Completed'" in messages


def test_segment_file_needs_a_condition_and_its_own_name() -> None:
    with pytest.raises(SegmentFileError, match="at least one condition"):
        parse("name: Everyone\n", "x", expected_id="everyone")
    with pytest.raises(SegmentFileError, match="file is named vips.yaml"):
        parse("id: other\norders: {gte: 1}\n", "x", expected_id="vips")
    with pytest.raises(SegmentFileError, match="exactly one of within_days or not_within_days"):
        parse("events:\n  Signed Up: {}\n", "x", expected_id="s")
    assert parse("enabled: false\n", "x", expected_id="champions").enabled is False
    with pytest.raises(SegmentFileError, match="line 2: not valid YAML"):
        parse("orders: {gte: 1\n", "x")


def test_shipped_segments_parse() -> None:
    files = sorted((ROOT / "infra/segments").glob("*.yaml"))
    ids = {p.stem for p in files}
    assert {"champions", "at-risk", "lapsed-vips", "new-subscribers"} <= ids
    for path in files:
        assert problems(path.read_bytes(), f"segments/_default/{path.name}") == [], path


# ---------------------------------------------------------------------------------------------
# journeys: segment entry conditions, and the one at-risk definition


def test_entry_segment_and_segments_any() -> None:
    p = buyer(0)
    inside = {"champions": None, "loyal": "RFM group new not in loyal", "at-risk": "lifecycle x"}

    def check(segment_id: str) -> str | None:
        return inside.get(segment_id, "no such segment")

    assert entry_problem(Entry(segment="champions"), p, check) is None
    assert (
        entry_problem(Entry(segment="loyal"), p, check) == "not in segment loyal: RFM group new not in loyal"
    )
    assert entry_problem(Entry(segments_any=["loyal", "champions"]), p, check) is None
    assert (
        entry_problem(Entry(segments_any=["loyal", "at-risk"]), p, check)
        == "in none of the segments loyal, at-risk"
    )
    assert (
        entry_problem(Entry(segment="champions"), p)
        == "not in segment champions: segments cannot be checked here"
    )
    with pytest.raises(ValueError, match="not a segment id"):
        Entry(segments_any=["Bad Id"])


def test_win_back_and_the_at_risk_segment_share_one_definition() -> None:
    win_back = parse_journey((ROOT / "infra/journeys/win-back.yaml").read_text(), expected_id="win-back")
    at_risk = parse((ROOT / "infra/segments/at-risk.yaml").read_text(), expected_id="at-risk")
    assert win_back.trigger.schedule == "at-risk"
    assert win_back.entry.segment == "at-risk"
    assert at_risk.lifecycle == ["at-risk"]
    # whoever the daily at-risk run finds on day D (their at_risk_on) is in the segment on D and the
    # next day, when win-back's first step is due at 10:00 local; and nobody is in it before D
    for orders in ([0], [0, 30], [0, 200], [0, 10, 20, 400], [0, 400]):
        p = buyer(*orders)
        day = datetime.fromisoformat(str(p.at_risk_on)).replace(tzinfo=UTC)
        key = index_attributes(p)[indexes.AT_RISK.partition]
        assert key == indexes.at_risk_key("shop-1", day.date().isoformat())
        run = (day + timedelta(hours=12)).timestamp()  # the daily run, 12:00 UTC
        for when in (run, run + DAY_S):
            assert segment_problem(at_risk, p, when, POLICY) is None, (orders, when)
        assert segment_problem(at_risk, p, day.timestamp() - 1, POLICY) is not None


def test_segments_lint_cli_prints_problems_with_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.local.cli import main

    good, bad = tmp_path / "vips.yaml", tmp_path / "broken.yaml"
    good.write_text("orders: {gte: 3}\n")
    bad.write_text("name: Broken\nlifecycle: [vip]\n")
    assert main(["segments", "lint", str(good)]) == 0
    assert "vips.yaml: ok (conditions: orders)" in capsys.readouterr().out
    assert main(["segments", "lint", str(good), str(bad)]) == 1
    assert f"{bad}:2: lifecycle[0]: Input should be 'prospect'" in capsys.readouterr().err
