"""The report's figures and page, without AWS: escaping, self-containment, charts present."""

from __future__ import annotations

import json
import re

from shared.adapters.report_data import ReportData
from shared.services.analytics.report import build
from shared.services.analytics.report_html import render_html
from shared.services.analytics.report_text import summary_lines
from tests.report_sample import END, START, sample_data

HOSTILE = '<script>alert("x")</script>&"'


def test_every_text_is_escaped_and_nothing_is_fetched() -> None:
    # journey ids come from store-uploaded files and the store id from the directory: treat as hostile
    data = sample_data(store=HOSTILE, journey_names=(HOSTILE, "win-back"))
    page = render_html(build(data, START, END))
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;" in page
    # self-contained: no URL to load anything from (the only scheme is the empty data: favicon)
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "http://" not in page and "https://" not in page and "@import" not in page


def test_the_page_has_the_three_charts_and_only_aggregates() -> None:
    data = sample_data()
    report = build(data, START, END)
    page = render_html(report)
    assert 'aria-label="Cohort retention"' in page
    assert 'aria-label="Customer churn per month"' in page and 'aria-label="Revenue churn per month"' in page
    assert 'aria-label="Revenue recovered per journey (last touch)"' in page
    assert page.count("<svg") == 4
    # 14 months of churn, a cohort per month, journey rows with lift
    assert len(report["churn"]) == 14 and len(report["cohorts"]) == 14
    assert all(j["lift"] is not None for j in report["journeys"])
    for text in (page, json.dumps(report)):
        assert "u:c1" not in text and '"c1"' not in text  # no customer id, only aggregates


def test_engagement_not_reported_is_said_so() -> None:
    data = sample_data()
    data.engagement = None
    report = build(data, START, END)
    assert report["engagement_reported"] is False
    assert all(j["delivered"] is None for j in report["journeys"])
    assert "not reported" in render_html(report)


def test_an_empty_store_renders() -> None:
    report = build(ReportData("empty"), START, END)
    page = render_html(report)
    assert "No first orders in the period." in page and "No journey messages in the period." in page
    assert summary_lines(report)[1].startswith("  customers 0 (0 known); buyers 0")


def test_mixed_currencies_are_flagged() -> None:
    data = sample_data()
    assert "summed as they are" not in render_html(build(data, START, END))
    data.currencies = {"EUR", "GBP"}
    assert "Orders in 2 currencies (EUR/GBP) are summed as they are" in render_html(build(data, START, END))


def test_customers_now_counts_stages_groups_and_segments_with_net_revenue() -> None:
    from shared.adapters.report_data import collect

    def profile(cid: str, **fields: object) -> dict[str, object]:
        return {"pk": f"STORE#s1#CUST#{cid}", "sk": "PROFILE", "customer_id": cid, **fields}

    items = [
        profile(
            "u:a",
            lifecycle="repeat-buyer",
            rfm={"group": "champions"},
            segments=["champions", "loyal"],
            orders={"revenue": "300", "refunded": "50"},
        ),
        profile(
            "u:b",
            lifecycle="repeat-buyer",
            rfm={"group": "loyal"},
            segments=["loyal"],
            orders={"revenue": "100"},
        ),
        profile(
            "u:c",
            lifecycle="at-risk",
            rfm={"group": "at-risk"},
            segments=["at-risk", "lapsed-vips"],
            orders={"revenue": "80"},
        ),
        profile("a:v", segments=[]),  # a visitor: a prospect, unscored
        profile("a:w", merged_into="u:a", lifecycle="first-time-buyer"),  # merged: not counted again
        profile("u:z", lifecycle="churned"),  # no counted order left
        {"pk": "STORE#s2#CUST#u:x", "sk": "PROFILE", "lifecycle": "champions"},  # another store
    ]
    now = build(collect(items, "s1"), START, END)["customers_now"]
    assert now["lifecycle"] == [
        {"stage": "prospect", "customers": 1, "revenue": 0.0},
        {"stage": "repeat-buyer", "customers": 2, "revenue": 350.0},
        {"stage": "at-risk", "customers": 1, "revenue": 80.0},
        {"stage": "churned", "customers": 1, "revenue": 0.0},
    ]
    assert [(r["group"], r["customers"]) for r in now["rfm_groups"]] == [
        ("champions", 1),
        ("loyal", 1),
        ("at-risk", 1),
        ("unscored", 2),
    ]
    assert now["segments"] == [
        {"segment": "at-risk", "customers": 1, "revenue": 80.0},
        {"segment": "champions", "customers": 1, "revenue": 250.0},
        {"segment": "lapsed-vips", "customers": 1, "revenue": 80.0},
        {"segment": "loyal", "customers": 2, "revenue": 350.0},
    ]
    page = render_html(build(collect(items, "s1"), START, END))
    assert (
        'aria-label="Customers by lifecycle stage"' in page and 'aria-label="Customers by RFM group"' in page
    )
