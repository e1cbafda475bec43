"""The retention report's figures: what `build` computes for one store and period, as plain JSON.

`build` turns a store's records (shared/adapters/report_data.py) into the report's figures with the
definitions of shared/domain/metrics.py. The same figures are written as JSON, drawn as a page
(report_html.py) and told in a few lines (report_text.py), so every reading of the report agrees.
Only aggregates appear: never a customer id, name or address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.adapters.report_data import ReportData
from shared.domain import metrics as m


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(
    data: ReportData,
    start: float,
    end: float,
    *,
    churn_window_days: float = m.DEFAULT_CHURN_WINDOW_DAYS,
    attribution_days: float = m.DEFAULT_ATTRIBUTION_DAYS,
    source: str = "table",
) -> dict[str, Any]:
    """The report's figures for [start, end): plain JSON-ready values."""
    if end <= start:
        raise ValueError("the report's end must be after its start")
    orders = [o for o in data.orders if o.at < end]
    sends = [s for s in data.sends if start <= s.at < end]
    entries = [e for e in data.entries if start <= e.at < end]
    span = len(m.months(start, end))
    repeat = m.repeat_purchase_rate(orders, end)
    journeys = m.journey_results(orders, sends, entries, data.engagement, window_days=attribution_days)
    in_period = [o for o in orders if start <= o.at and o.counted]
    return {
        "store": data.store,
        "from": _iso(start),
        "to": _iso(end),
        "source": source,
        "parameters": {
            "churn_window_days": churn_window_days,
            "attribution_window_days": attribution_days,
            "attribution": "last touch",
            "lift_window_days": attribution_days,
            "ci": "95% Newcombe hybrid score interval (from Wilson intervals) for the difference",
            "periods": "UTC calendar months; the last one ends at 'to'",
        },
        "currencies": sorted(data.currencies),
        "customers": {
            "profiles": data.customers,
            "known": data.known_customers,
            **repeat.to_dict(),
        },
        "orders": {
            "count": len(in_period),
            "revenue": round(sum(o.revenue for o in in_period), 2),
            "cancelled": sum(1 for o in data.orders if start <= o.at < end and not o.counted),
        },
        "churn": [p.to_dict() for p in m.churn_series(orders, start, end, churn_window_days)],
        "order_values": [v.to_dict() for v in m.order_values(orders, start, end)],
        "cohorts": [c.to_dict() for c in m.cohort_retention(orders, start, end, max_k=min(span - 1, 24))],
        "engagement_reported": data.engagement is not None,
        "journeys": [j.to_dict() for j in journeys],
        "fulfilment": {
            "partners": [p.to_dict() for p in m.fulfilment_speed(data.forwards, start, end)],
            "repeat_by_delivery_speed": [
                b.to_dict()
                for b in m.repeat_by_delivery_speed(orders, data.forwards, start, end, churn_window_days)
            ],
        },
        # a snapshot (the profiles as the data holds them), not bound to the period
        "customers_now": {
            "lifecycle": _tally(data.stages, "stage", _STAGES),
            "rfm_groups": _tally(data.rfm_groups, "group", _GROUPS),
            "segments": _tally(data.segments, "segment", ()),
        },
        "totals": {
            "messages_sent": sum(j.total.sent for j in journeys),
            "conversions": sum(j.total.conversions for j in journeys),
            "revenue_attributed": round(sum(j.total.revenue for j in journeys), 2),
        },
    }


_STAGES = ("prospect", "first-time-buyer", "repeat-buyer", "at-risk", "churned")
_GROUPS = (
    "champions",
    "loyal",
    "promising",
    "new",
    "at-risk",
    "cant-lose",
    "hibernating",
    "lost",
    "unscored",
)


def _tally(counts: dict[str, list[float]], name: str, order: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows in the known order first (lifecycle, the RFM grid's groups), then by name."""
    rank = {k: i for i, k in enumerate(order)}
    keys = sorted(counts, key=lambda k: (rank.get(k, len(order)), k))
    return [{name: k, "customers": int(counts[k][0]), "revenue": round(counts[k][1], 2)} for k in keys]
