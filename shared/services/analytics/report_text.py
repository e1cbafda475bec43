"""The retention report in a few lines of text: the terminal's summary and `make demo`'s ending.

`pct`, `money` and `hours` are how the report writes its numbers; the HTML page (report_html.py) uses them
too, so a figure reads the same in both.
"""

from __future__ import annotations

from typing import Any

from shared.domain import metrics as m
from shared.services.analytics.report import build


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f}%"


def money(x: float | None) -> str:
    return "–" if x is None else f"{x:,.2f}"


def hours(d: dict[str, Any]) -> str:
    """Median / p90 of a duration, in hours under two days, in days above."""
    if not d["count"]:
        return "–"

    def one(h: float) -> str:
        return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} d"

    return f"{one(d['median_hours'])} / {one(d['p90_hours'])}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    c, t = report["customers"], report["totals"]
    lines = [
        f"Report for store {report['store']} ({report['from'][:10]} to {report['to'][:10]}):",
        f"  customers {c['profiles']} ({c['known']} known); buyers {c['buyers']}, "
        f"repeat {c['repeat_buyers']} (repeat-purchase rate {pct(c['rate'])})",
        f"  orders {report['orders']['count']}, revenue {money(report['orders']['revenue'])} "
        f"{'/'.join(report['currencies'])}".rstrip(),
    ]
    now = report.get("customers_now") or {}
    if now.get("lifecycle"):
        stages = ", ".join(f"{r['stage']} {r['customers']}" for r in now["lifecycle"])
        lines.append(f"  customers now: {stages}")
    for p in (report.get("fulfilment") or {}).get("partners", []):
        lines.append(
            f"  partner {p['partner']}: {p['forwarded']} orders, accepted in {hours(p['to_acceptance'])}, "
            f"shipped in {hours(p['to_shipment'])} (median / p90), {p['failed']} failed"
        )
    bands = [b for b in (report.get("fulfilment") or {}).get("repeat_by_delivery_speed", []) if b["orders"]]
    if bands:
        lines.append(
            "  repeat purchase by delivery speed: "
            + ", ".join(f"{b['band']} {pct(b['rate'])} of {b['orders']}" for b in bands)
        )
    for j in report["journeys"]:
        lines.append(
            f"  {j['journey']}: entered {j['entered']}, sent {j['sent']}, conversions {j['conversions']}, "
            f"revenue attributed {money(j['revenue'])}"
        )
    lines.append(
        f"  total: {t['messages_sent']} messages, {t['conversions']} conversions "
        f"(order within {report['parameters']['attribution_window_days']:g} d, last touch), "
        f"revenue attributed {money(t['revenue_attributed'])}"
    )
    return lines


def short_report(table: str, store: str, now: float, ddb: Any = None) -> str:
    """A few lines on a store, read from the table (the demo's ending): the store's whole history up
    to `now`, churn window and attribution defaults."""
    import time

    from shared.adapters.report_data import collect, scan_table
    from shared.platform.aws import client

    started = time.monotonic()
    data = collect(scan_table(ddb or client("dynamodb"), table, store), store)
    first = min([o.at for o in data.orders] + [s.at for s in data.sends] + [now - 1])
    report = build(data, m.month_start(first), now + 1)
    took = time.monotonic() - started
    return "\n".join([*summary_lines(report), f"  (computed in {took:.2f} s from {data.items_read} items)"])
