"""Fulfilment speed in the report, on moto: orders folded by the real profile fold, forward records
written by FulfilmentStore as the forwarder and the shipments route write them, read back from the
table and from a DynamoDB export.

Hand-computed figures for April 2026 (churn window 90 days):
- acme: a-1 (1 Apr) accepted after 1 h, shipped after 24 h, delivered after 2 d; a-2 (5 Apr) accepted
  after 3 h, delivered after 6 d (shipped recorded at delivery); a-3 (8 Apr) refused (HTTP 400).
  -> 3 forwarded, 2 accepted, 1 failed; acceptance median 2 h, p90 1 + 0.9 * 2 = 2.8 h;
  shipment 24 h and 144 h: median 84 h (3.5 d), p90 24 + 0.9 * 120 = 132 h (5.5 d).
- ship-it: a-1's other part accepted after 2 h, delivered after 1 d -> a-1 delivered in 2 d.
- Delivery speed: a-1 2 d (<= 2 d band), a-2 6 d (5-10 d band). The a-1 customer orders again on
  20 Apr (within 90 days) -> repeated; a-2's window is open at 1 May with no repeat -> open.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.adapters.fulfilment_store import FulfilmentStore
from shared.adapters.report_data import collect, scan_table
from shared.platform.aws import client
from shared.services.analytics.report import build
from shared.services.analytics.report_html import render_html
from shared.services.analytics.report_text import summary_lines
from tests.aws_fixtures import World
from tests.integration.test_report import STORE, _export, bought, report_json, ts

HOUR = 3600.0


def forwarded(
    world: World,
    order_id: str,
    partner: str,
    day: str,
    *,
    accepted_h: float | None = None,
    refused: bool = False,
    shipped_h: float | None = None,
    delivered_h: float | None = None,
) -> None:
    store = FulfilmentStore(client("dynamodb"), world.table)
    at = ts(day)
    record = {"store_id": STORE, "order_id": order_id, "partner_id": partner, "action": "create"}
    assert store.open({**record, "customer_id": "u:x", "order_at": at, "first_at": at, "document": "{}"})
    assert store.claim_attempt(STORE, order_id, partner, "create", 1, at, at - 1)
    if refused:
        attempt = {"n": 1, "at": "-", "status_code": 400, "outcome": "rejected", "answer": "bad sku"}
        store.record_attempt(STORE, order_id, partner, "create", attempt, "rejected")
        return
    attempt = {"n": 1, "at": "-", "status_code": 202, "outcome": "accepted", "answer": "{}"}
    accepted = {"accepted_at": at + float(accepted_h or 0) * HOUR}
    store.record_attempt(STORE, order_id, partner, "create", attempt, "accepted", accepted)
    if shipped_h is not None:
        store.record_shipment(STORE, order_id, partner, "shipped", at + shipped_h * HOUR, {"carrier": "DHL"})
    if delivered_h is not None:
        store.record_shipment(STORE, order_id, partner, "delivered", at + delivered_h * HOUR, {})


def scenario(world: World) -> None:
    bought(world, "fast", "a-1", 80, "2026-04-01")
    bought(world, "fast", "a-9", 30, "2026-04-20")
    bought(world, "slow", "a-2", 60, "2026-04-05")
    bought(world, "nope", "a-3", 20, "2026-04-08")
    forwarded(world, "a-1", "acme", "2026-04-01", accepted_h=1, shipped_h=24, delivered_h=48)
    forwarded(world, "a-1", "ship-it", "2026-04-01", accepted_h=2, delivered_h=24)
    forwarded(world, "a-2", "acme", "2026-04-05", accepted_h=3, delivered_h=144)
    forwarded(world, "a-3", "acme", "2026-04-08", refused=True)


def test_fulfilment_speed_in_the_report(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(world)
    report = report_json(world, capsys)
    acme, ship_it = report["fulfilment"]["partners"]
    assert (acme["partner"], acme["forwarded"], acme["accepted"], acme["failed"]) == ("acme", 3, 2, 1)
    assert acme["failure_rate"] == 0.3333
    assert acme["to_acceptance"] == {"count": 2, "median_hours": 2.0, "p90_hours": 2.8}
    assert acme["to_shipment"] == {"count": 2, "median_hours": 84.0, "p90_hours": 132.0}
    assert (ship_it["partner"], ship_it["forwarded"], ship_it["failed"]) == ("ship-it", 1, 0)
    assert ship_it["to_shipment"]["median_hours"] == 24.0  # delivery implies shipment
    bands = {b["band"]: b for b in report["fulfilment"]["repeat_by_delivery_speed"]}
    assert bands["<= 2 d"] == {"band": "<= 2 d", "orders": 1, "repeated": 1, "rate": 1.0, "open": 0}
    assert bands["5-10 d"] == {"band": "5-10 d", "orders": 0, "repeated": 0, "rate": None, "open": 1}
    assert "u:x" not in json.dumps(report)  # the forward's customer never leaves the adapter


def test_the_export_gives_the_same_fulfilment_figures(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario(world)
    from_table = report_json(world, capsys)
    _export(world, list(scan_table(client("dynamodb"), world.table)), "01790000000000-f00d")
    client("dynamodb").delete_table(TableName=world.table)
    from_export = report_json(world, capsys, "--export", f"s3://{world.bucket}/exports")
    assert from_export["fulfilment"] == from_table["fulfilment"]
    assert from_export["fulfilment"]["partners"]


def test_text_and_html_show_the_partners(world: World) -> None:
    scenario(world)
    data = collect(scan_table(client("dynamodb"), world.table, STORE), STORE)
    report: dict[str, Any] = build(data, ts("2026-04-01", 0), ts("2026-05-01", 0))
    text = "\n".join(summary_lines(report))
    assert (
        "partner acme: 3 orders, accepted in 2.0 h / 2.8 h, shipped in 3.5 d / 5.5 d (median / p90), 1 failed"
        in text
    )
    assert "repeat purchase by delivery speed: <= 2 d 100.0% of 1" in text
    page = render_html(report)
    assert "<h2>Fulfilment partners</h2>" in page
    assert "<td>acme</td><td>3</td><td>2</td><td>1 (33.3%)</td><td>0</td><td>2.0 h / 2.8 h</td>" in page
    assert "<td>&lt;= 2 d</td><td>1</td><td>1</td><td>100.0%</td><td>0</td>" in page
