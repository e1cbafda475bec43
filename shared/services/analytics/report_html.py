"""The retention report as one self-contained HTML page, with inline SVG charts.

`render_html` draws the figures of report.py: no script, no external resource (the page is one
file), every text escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

from shared.services.analytics.report_text import hours, money, pct

SEGMENT_LABELS = {
    "all": "all customers",
    "first_time": "first-time buyers",
    "repeat": "repeat buyers",
    "short": "tenure ≤ 90 d",
    "medium": "tenure 91–365 d",
    "long": "tenure > 365 d",
}
COLOURS = ["#1f4e79", "#d9822b", "#2e8540", "#b22222", "#6a3d9a", "#8c6d31"]


def _count(v: float) -> str:
    return f"{v:g}"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _line_chart(title: str, labels: Sequence[str], series: dict[str, list[float | None]]) -> str:
    w, h, left, right, top, bottom = 560, 240, 48, 150, 28, 36
    pw, ph = w - left - right, h - top - bottom
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return top + ph * (1 - v)

    parts = [
        f'<svg class="chart" role="img" aria-label="{_e(title)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}">',
        f'<text x="{left}" y="16" class="title">{_e(title)}</text>',
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{int(tick * 100)}%</text>'
        )
    step = max(1, math.ceil(n / 8))
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{h - 14}" text-anchor="middle">{_e(label)}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [(x(i), y(v)) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        ly = top + 6 + 18 * k
        parts.append(
            f'<rect x="{left + pw + 14}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + pw + 30}" y="{ly + 1}">{_e(SEGMENT_LABELS.get(name, name))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _heat_map(cohorts: list[dict[str, Any]]) -> str:
    if not cohorts:
        return '<p class="empty">No first orders in the period.</p>'
    cols = max(len(c["retention"]) for c in cohorts)
    cell, left, top = 44, 110, 40
    w, h = left + cell * cols + 10, top + 24 * len(cohorts) + 10
    parts = [
        f'<svg class="chart" role="img" aria-label="Cohort retention" viewBox="0 0 {w} {h}" width="{w}" height="{h}">',
        '<text x="0" y="16" class="title">Cohort retention: share ordering in month k after the first order</text>',
    ]
    for k in range(cols):
        parts.append(
            f'<text x="{left + cell * k + cell / 2}" y="{top - 6}" text-anchor="middle">k={k}</text>'
        )
    for r, cohort in enumerate(cohorts):
        cy = top + 24 * r
        parts.append(f'<text x="0" y="{cy + 16}">{_e(cohort["month"])} ({_e(cohort["size"])})</text>')
        for k, share in enumerate(cohort["retention"]):
            if share is None:
                continue
            shade = 0.08 + 0.92 * float(share)
            ink = "#fff" if share > 0.5 else "#111"
            parts.append(
                f'<rect x="{left + cell * k}" y="{cy}" width="{cell - 2}" height="22" '
                f'fill="rgba(31,78,121,{shade:.2f})"/>'
                f'<text x="{left + cell * k + cell / 2 - 1}" y="{cy + 15}" text-anchor="middle" '
                f'fill="{ink}">{_e(f"{share * 100:.0f}%")}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _bars(
    title: str,
    rows: list[tuple[str, float]],
    fmt: Callable[[float], str] = lambda v: money(v),
    empty: str = "No journey messages in the period.",
) -> str:
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    top_value = max([v for _, v in rows] + [1e-9])
    left, bar_w, top = 190, 330, 30
    w, h = left + bar_w + 90, top + 26 * len(rows) + 8
    parts = [
        f'<svg class="chart" role="img" aria-label="{_e(title)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}">',
        f'<text x="0" y="16" class="title">{_e(title)}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = top + 26 * i
        length = bar_w * max(value, 0) / top_value
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{_e(label)}</text>'
            f'<rect x="{left}" y="{y}" width="{length:.1f}" height="20" fill="#2e8540"/>'
            f'<text x="{left + length + 6:.1f}" y="{y + 15}">{_e(fmt(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sent(cell: dict[str, Any]) -> str:
    channels = ", ".join(f"{k} {v}" for k, v in cell["channels"].items())
    return f"{cell['sent']} ({channels})" if channels else str(cell["sent"])


def _engagement(j: dict[str, Any], name: str, reported: bool) -> str:
    if not reported or j[name] is None:
        return "not reported"
    return str(j[name])


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page (inline CSS and SVG, no script, nothing fetched)."""
    churn = report["churn"]
    labels = [p["period"] for p in churn]
    segments = ["all", "first_time", "repeat", "short", "medium", "long"]

    def series(metric: str) -> dict[str, list[float | None]]:
        return {s: [(p if s == "all" else p["segments"][s])[metric] for p in churn] for s in segments}

    reported = bool(report["engagement_reported"])
    journey_rows = []
    for j in report["journeys"]:
        lift = j["lift"]
        lift_text = "no holdout"
        if lift and lift["lift"] is not None:
            low, high = lift["ci95"]
            lift_text = f"{lift['lift'] * 100:+.1f} pts [{low * 100:+.1f}, {high * 100:+.1f}]"
        elif lift:
            lift_text = "one group only"
        journey_rows.append(
            [
                j["journey"],
                j["entered"],
                _sent(j),
                _engagement(j, "delivered", reported),
                _engagement(j, "opened", reported),
                _engagement(j, "clicked", reported),
                j["conversions"],
                money(j["revenue"]),
                lift_text,
            ]
        )
    detail_rows = [
        [
            j["journey"],
            f"{kind} {name}",
            _sent(cell),
            _engagement(cell, "delivered", reported),
            _engagement(cell, "opened", reported),
            _engagement(cell, "clicked", reported),
            cell["conversions"],
            money(cell["revenue"]),
        ]
        for j in report["journeys"]
        for kind, cells in (("step", j["steps"]), ("variant", j["variants"]))
        for name, cell in cells.items()
    ]
    churn_rows = [
        [
            p["period"],
            p["base"],
            p["churned"],
            pct(p["customer_churn"]),
            money(p["base_revenue"]),
            money(p["churned_revenue"]),
            pct(p["revenue_churn"]),
        ]
        for p in churn
    ]
    aov_rows = [
        [
            v["period"],
            v["new_orders"],
            money(v["new_aov"]),
            v["returning_orders"],
            money(v["returning_aov"]),
        ]
        for v in report["order_values"]
    ]
    fulfilment = report.get("fulfilment") or {"partners": [], "repeat_by_delivery_speed": []}
    partner_rows = [
        [
            p["partner"],
            p["forwarded"],
            p["accepted"],
            f"{p['failed']} ({pct(p['failure_rate'])})",
            p["open"],
            hours(p["to_acceptance"]),
            hours(p["to_shipment"]),
            hours(p["to_delivery"]),
        ]
        for p in fulfilment["partners"]
    ]
    band_rows = [
        [b["band"], b["orders"], b["repeated"], pct(b["rate"]), b["open"]]
        for b in fulfilment["repeat_by_delivery_speed"]
    ]
    c, params, totals = report["customers"], report["parameters"], report["totals"]
    now = report["customers_now"]
    currency = "/".join(report["currencies"]) or "–"
    warning = ""
    if len(report["currencies"]) > 1:
        warning = (
            f'<p class="warn">Orders in {len(report["currencies"])} currencies ({_e(currency)}) are summed '
            "as they are: revenue figures mix them.</p>"
        )
    recovered = [(j["journey"], float(j["revenue"])) for j in report["journeys"]]
    body = f"""
<h1>Retention report: {_e(report["store"])}</h1>
<p class="meta">{_e(report["from"])} to {_e(report["to"])} · source: {_e(report["source"])} · currency: {_e(currency)}</p>
{warning}<section class="cards">
  <div><b>{_e(c["profiles"])}</b>customers</div>
  <div><b>{_e(c["buyers"])}</b>buyers</div>
  <div><b>{_e(pct(c["rate"]))}</b>repeat-purchase rate</div>
  <div><b>{_e(report["orders"]["count"])}</b>orders in the period</div>
  <div><b>{_e(totals["messages_sent"])}</b>messages sent</div>
  <div><b>{_e(totals["conversions"])}</b>conversions</div>
  <div><b>{_e(money(totals["revenue_attributed"]))}</b>revenue attributed</div>
</section>
<h2>Churn by segment</h2>
<div class="row">{_line_chart("Customer churn per month", labels, series("customer_churn"))}
{_line_chart("Revenue churn per month", labels, series("revenue_churn"))}</div>
{_table(["month", "active at start", "churned", "customer churn", "revenue at start", "churned revenue", "revenue churn"], churn_rows)}
<h2>Customers now: lifecycle, RFM groups, segments</h2>
<div class="row">{_bars("Customers by lifecycle stage", [(r["stage"], r["customers"]) for r in now["lifecycle"]], _count, "No customers.")}
{_bars("Customers by RFM group", [(r["group"], r["customers"]) for r in now["rfm_groups"]], _count, "No customers.")}</div>
{_table(["segment", "customers", "lifetime revenue (net)"], [[r["segment"], r["customers"], money(r["revenue"])] for r in now["segments"]])}
<h2>Cohort retention</h2>
{_heat_map(report["cohorts"])}
<h2>Average order value</h2>
{_table(["month", "new orders", "new AOV", "returning orders", "returning AOV"], aov_rows)}
<h2>Journeys</h2>
{_bars("Revenue recovered per journey (last touch)", recovered)}
{_table(["journey", "entered", "sent", "delivered", "opened", "clicked", "conversions", "revenue", "lift vs holdout (95% CI)"], journey_rows)}
<h3>By step and variant</h3>
{_table(["journey", "step / variant", "sent", "delivered", "opened", "clicked", "conversions", "revenue"], detail_rows)}
<h2>Fulfilment partners</h2>
{_table(["partner", "orders forwarded", "accepted", "failed", "still retrying", "to acceptance (median / p90)", "to shipment (median / p90)", "to delivery (median / p90)"], partner_rows) if partner_rows else '<p class="empty">No orders forwarded to partners in the period.</p>'}
<h3>Repeat purchase by delivery speed</h3>
{_table(["delivered in", "orders", "ordered again", "repeat-purchase rate", "window still open"], band_rows)}
<h2>Definitions</h2>
<ul class="defs">
<li>Active at t: a counted order (not cancelled; revenue net of refunds) in the {_e(f"{params['churn_window_days']:g}")} days before t.</li>
<li>Churn for a month [a, b): of the customers active at a, those not active at b. Revenue churn weighs each by their revenue in the window before a.</li>
<li>First-time vs repeat: 1 vs 2+ counted orders before a. Tenure at a: days since the first order (≤ 90, 91–365, &gt; 365).</li>
<li>Conversion: an order within {_e(f"{params['attribution_window_days']:g}")} days after a message, credited to the last message ({_e(params["attribution"])}).</li>
<li>Lift: treatment minus control conversion rate from entry over the same window; {_e(params["ci"])}.</li>
<li>Fulfilment: times from the order to the partner's acceptance (first 2xx), first shipping update and delivery, over the orders placed in the period; failed = refused by the partner or no success within 24 hours.</li>
<li>Repeat purchase by delivery speed: of the orders delivered by partners (every accepted part), the share whose customer ordered again within {_e(f"{params['churn_window_days']:g}")} days; orders whose window is still open without a repeat are left out.</li>
<li>Delivered, opened, clicked: SES email events; "not reported" where the channel (SMS, app push, web push, or the local emulator) reports none.</li>
</ul>
"""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Boomerang report: {_e(report["store"])}</title>
<link rel="icon" href="data:,">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111; max-width: 1150px; }}
h1 {{ margin: 0 0 4px; }} h2 {{ margin-top: 28px; border-bottom: 1px solid #ddd; }}
.meta {{ color: #555; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.cards div {{ border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 120px; }}
.cards b {{ display: block; font-size: 20px; }}
.row {{ display: flex; flex-wrap: wrap; gap: 16px; }}
table {{ border-collapse: collapse; margin: 10px 0; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
svg.chart {{ font-size: 11px; }} svg .title {{ font-weight: bold; font-size: 12px; }}
svg .grid {{ stroke: #e5e5e5; }}
.empty {{ color: #777; }} .warn {{ color: #8a4b00; font-weight: bold; }}
</style></head><body>{body}</body></html>
"""
