"""The report on moto: a small store folded by the real profile fold (ProfileStore.apply) with journey
history written by JourneyStore.record, read back from the table and from a DynamoDB export in S3.

Hand-computed figures for April 2026 (churn window 90 days, attribution 5 days):
- active at 1 Apr = an order in [1 Jan, 1 Apr); active at 1 May = an order in [31 Jan, 1 May).
- small0..3 (10 each, 15 Jan): in the base, gone by 1 May -> churned; first-time, short tenure.
- big (400 on 1 Mar 2025, 500 on 10 Mar 2026, 200 on 20 Apr): stays; repeat, long tenure, 500.
- mid (100 on 1 Dec 2025, 60 on 20 Feb refunded 20): stays; repeat, medium tenure, 40.
- cancel (1000 on 20 Jan, cancelled): not counted anywhere.
- visitor v1 orders 50 anonymously on 10 Apr, then signs up as "newbie" (merged): a new buyer.
Base 6, churned 4: customer churn 4/6 = 0.6667; revenue churn 40 / 580 = 0.0690.
Journeys: cart-abandonment (holdout): big in treatment, emailed 18 Apr 01:00, orders 200 on 20 Apr
-> 1 conversion, 200; small0 in control, no order -> lift 1/1 - 0/1 = 1.0. welcome: the visitor was
emailed on 8 Apr (before merging), ordered 50 on 10 Apr -> 1 conversion, 50.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.cli import main as boomerang
from shared.adapters.journey_store import JourneyStore
from shared.adapters.profile_store import ProfileStore
from shared.adapters.report_data import collect, export_lines, scan_table
from shared.platform import clock
from shared.platform.aws import client
from shared.services.analytics.report_text import short_report
from tests.aws_fixtures import FixedClock, World, canonical

STORE = "shop-1"


def ts(day: str, hour: int = 9) -> float:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()


def call(kind: str, at: float, user: str | None, anon: str | None = None, **fields: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"type": kind, "messageId": f"{kind}-{user}-{anon}-{at}-{fields.get('event')}"}
    c.update({k: v for k, v in (("userId", user), ("anonymousId", anon)) if v})
    c.update(fields)
    return c


def fold(world: World, at: float, c: dict[str, Any]) -> None:
    [event] = canonical([c], at)
    outcome = ProfileStore(client("dynamodb"), world.table).apply(event)
    assert outcome.status == "applied", outcome


def bought(
    world: World, user: str | None, order_id: str, total: float, day: str, anon: str | None = None
) -> None:
    props = {"order_id": order_id, "total": total, "currency": "EUR"}
    fold(world, ts(day), call("track", ts(day), user, anon, event="Order Completed", properties=props))


def history(world: World, day: str, hour: int, customer: str, journey: str, entry: dict[str, Any]) -> None:
    clock.set_clock(FixedClock(ts(day, hour)))
    try:
        JourneyStore(client("dynamodb"), world.table).record(
            STORE, journey, f"{journey}-{customer}", customer, entry
        )
    finally:
        clock.reset_clock()


def scenario(world: World) -> None:
    for i in range(4):
        fold(
            world,
            ts("2026-01-14"),
            call("identify", ts("2026-01-14"), f"small{i}", traits={"email": f"s{i}@example.com"}),
        )
        bought(world, f"small{i}", f"s-{i}", 10, "2026-01-15")
    bought(world, "big", "b-1", 400, "2025-03-01")
    bought(world, "big", "b-2", 500, "2026-03-10")
    bought(world, "mid", "m-1", 100, "2025-12-01")
    bought(world, "mid", "m-2", 60, "2026-02-20")
    refund = {"order_id": "m-2", "total": 20}
    fold(
        world,
        ts("2026-02-25"),
        call("track", ts("2026-02-25"), "mid", event="Order Refunded", properties=refund),
    )
    bought(world, "cancel", "c-1", 1000, "2026-01-20")
    cancel = {"order_id": "c-1"}
    fold(
        world,
        ts("2026-01-21"),
        call("track", ts("2026-01-21"), "cancel", event="Order Cancelled", properties=cancel),
    )
    # a visitor is emailed, buys anonymously, then signs up: merged into u:newbie
    history(
        world,
        "2026-04-08",
        9,
        "a:v1",
        "welcome",
        {"type": "sent", "step": 0, "step_id": "welcome-1", "channel": "email", "message_id": "ses-1"},
    )
    bought(world, None, "n-1", 50, "2026-04-10", anon="v1")
    fold(
        world,
        ts("2026-04-11"),
        call("identify", ts("2026-04-11"), "newbie", "v1", traits={"email": "n@example.com"}),
    )
    # cart abandonment with a holdout: big in treatment (emailed, then orders), small0 in control
    history(
        world,
        "2026-04-18",
        0,
        "u:big",
        "cart-abandonment",
        {"type": "entered", "group": "treatment", "trigger": "t1"},
    )
    history(
        world,
        "2026-04-18",
        1,
        "u:big",
        "cart-abandonment",
        {"type": "sent", "step": 0, "step_id": "email-1", "channel": "email", "message_id": "ses-2"},
    )
    history(
        world,
        "2026-04-05",
        0,
        "u:small0",
        "cart-abandonment",
        {"type": "entered", "group": "control", "trigger": "t2"},
    )
    history(
        world,
        "2026-04-05",
        1,
        "u:small0",
        "cart-abandonment",
        {"type": "skipped", "step": 0, "step_id": "email-1", "reason": "control group"},
    )
    bought(world, "big", "b-3", 200, "2026-04-20")


def report_json(world: World, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    period = ["--from", "2026-04-01", "--to", "2026-05-01"]
    code = boomerang(
        ["report", "--store", STORE, *period, "--format", "json", "--table", world.table, *extra]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return dict(json.loads(captured.out))


def test_the_fold_writes_the_items_the_report_reads(world: World) -> None:
    scenario(world)
    data = collect(scan_table(client("dynamodb"), world.table, STORE), STORE)
    orders = {o.order_id: o for o in data.orders}
    assert orders["m-2"].refunded == 20 and orders["m-2"].revenue == 40
    assert orders["c-1"].status == "cancelled" and not orders["c-1"].counted
    assert orders["n-1"].customer_id == "u:newbie"  # the anonymous order follows the merge
    assert [s.customer_id for s in data.sends if s.journey == "welcome"] == ["u:newbie"]
    assert data.customers == 8  # small0..3, big, mid, cancel, newbie (the merged visitor is not one)
    assert data.currencies == {"EUR"}
    assert data.engagement is None


def test_report_json_on_the_table(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(world)
    report = report_json(world, capsys)
    [april] = report["churn"]
    assert (april["period"], april["base"], april["churned"]) == ("2026-04", 6, 4)
    assert april["customer_churn"] == 0.6667
    assert (april["base_revenue"], april["churned_revenue"], april["revenue_churn"]) == (580, 40, 0.069)
    assert april["segments"]["first_time"]["customer_churn"] == 1.0
    assert april["segments"]["repeat"]["base"] == 2 and april["segments"]["repeat"]["churned"] == 0
    assert april["segments"]["long"]["base_revenue"] == 500
    assert april["segments"]["medium"]["base_revenue"] == 40
    # buyers by 1 May: small0..3, big, mid, newbie = 7; repeat: big, mid
    assert report["customers"] == {"profiles": 8, "known": 8, "buyers": 7, "repeat_buyers": 2, "rate": 0.2857}
    assert report["orders"] == {"count": 2, "revenue": 250, "cancelled": 0}
    [values] = report["order_values"]
    assert (values["new_orders"], values["new_aov"], values["returning_orders"], values["returning_aov"]) == (
        1,
        50,
        1,
        200,
    )
    assert report["cohorts"] == [{"month": "2026-04", "size": 1, "retention": [1.0]}]
    journeys = {j["journey"]: j for j in report["journeys"]}
    cart, welcome = journeys["cart-abandonment"], journeys["welcome"]
    assert (cart["entered"], cart["sent"], cart["conversions"], cart["revenue"]) == (2, 1, 1, 200)
    assert cart["steps"]["email-1"]["conversions"] == 1
    assert cart["delivered"] is None and not report["engagement_reported"]
    lift = cart["lift"]
    assert lift["treatment"] == {"entries": 1, "conversions": 1, "rate": 1.0}
    assert lift["control"] == {"entries": 1, "conversions": 0, "rate": 0.0}
    assert lift["lift"] == 1.0 and lift["relative_lift"] is None  # control rate 0: no relative lift
    # Wilson 95%: 1/1 -> (0.2065, 1), 0/1 -> (0, 0.7935); Newcombe: lower 1 - sqrt(0.7935^2 + 0.7935^2) = -0.1221
    assert lift["ci95"] == [-0.1221, 1.0]
    assert (welcome["sent"], welcome["conversions"], welcome["revenue"], welcome["lift"]) == (1, 1, 50, None)
    assert report["totals"] == {"messages_sent": 2, "conversions": 2, "revenue_attributed": 250}
    # only aggregates: no customer id, address or name anywhere in the report
    text = json.dumps(report)
    for secret in ("example.com", "u:big", "newbie", "small0", "v1"):
        assert secret not in text


def _export(world: World, items: list[dict[str, Any]], export_id: str, prefix: str = "exports") -> None:
    s3 = client("s3")
    half = len(items) // 2
    for n, chunk in enumerate((items[:half], items[half:])):
        s3.put_object(
            Bucket=world.bucket,
            Key=f"{prefix}/AWSDynamoDB/{export_id}/data/part-{n}.json.gz",
            Body=export_lines(chunk),
        )
    s3.put_object(
        Bucket=world.bucket, Key=f"{prefix}/AWSDynamoDB/{export_id}/manifest-summary.json", Body=b"{}"
    )


def test_the_export_gives_the_same_numbers(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(world)
    from_table = report_json(world, capsys)
    # Given the table exported to S3 in DynamoDB JSON lines (two gzip'd data files)
    items = list(scan_table(client("dynamodb"), world.table))
    _export(world, items, "01790000000000-a1b2c3d4")
    raw = gzip.decompress(
        client("s3")
        .get_object(
            Bucket=world.bucket, Key="exports/AWSDynamoDB/01790000000000-a1b2c3d4/data/part-0.json.gz"
        )["Body"]
        .read()
    )
    first = json.loads(raw.splitlines()[0])
    assert set(first) == {"Item"} and "S" in first["Item"]["pk"]  # the export's own shape
    # When the report reads the export, with the table gone
    client("dynamodb").delete_table(TableName=world.table)
    from_export = report_json(world, capsys, "--export", f"s3://{world.bucket}/exports")
    # Then every figure is the same
    for report in (from_table, from_export):
        report.pop("source"), report.pop("computed_in_seconds")
    assert from_export == from_table


def test_report_errors_name_the_flag(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(world)
    cases = [
        (["--from", "2026-13-01"], "--from must be a date YYYY-MM-DD, got '2026-13-01'"),
        (
            ["--from", "2026-05-01", "--to", "2026-04-01"],
            "--from (2026-05-01) must be before --to (2026-04-01)",
        ),
        (["--store", "nope"], "--store nope: no profiles or orders"),
        (["--export", "bucket/x"], "--export must look like s3://bucket/prefix"),
        (["--export", f"s3://{world.bucket}/missing"], "no DynamoDB export under"),
        (["--attribution-days", "0"], "--attribution-days must be a positive number of days"),
        (["--table", "other"], "table other not found"),
    ]
    for args, message in cases:
        code = boomerang(["report", "--store", STORE, "--format", "json", "--table", world.table, *args])
        err = capsys.readouterr().err
        assert code != 0 and message in err, (args, err)
    _export(world, [], "one")
    _export(world, [], "two")
    code = boomerang(["report", "--store", STORE, "--export", f"s3://{world.bucket}/exports"])
    err = capsys.readouterr().err
    assert code == 1 and "2 exports under" in err and "AWSDynamoDB/two" in err


def test_short_report_for_the_demo_ending(world: World) -> None:
    scenario(world)
    text = short_report(world.table, STORE, ts("2026-04-30"))
    assert "customers 8 (8 known); buyers 7, repeat 2 (repeat-purchase rate 28.6%)" in text
    assert "cart-abandonment: entered 2, sent 1, conversions 1, revenue attributed 200.00" in text
    assert "total: 2 messages, 2 conversions" in text
    assert "example.com" not in text and "newbie" not in text
