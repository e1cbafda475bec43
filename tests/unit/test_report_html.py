"""The report's figures and page, without AWS: escaping, self-containment, charts present."""

from __future__ import annotations

import json
import re

from shared.report import build, render_html, summary_lines
from shared.report_data import ReportData
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
