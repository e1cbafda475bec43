"""The retention report in a few lines of text: the terminal's summary and `make demo`'s ending.

`pct` and `money` are how the report writes its numbers; the HTML page (report_html.py) uses them
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
