"""The report at scale on moto: the report λ exports the table (ExportTableToPointInTime), then computes
every store's report from the export with the CLI's own code, into the analytics bucket.

The hand-computed store of test_report.py (shop-1) and a second store (shop-2) with two orders. The
scheduled run of 1 May 2026 reports on the 12 full months before: [2025-05-01, 2026-05-01).

moto 5.2.5's export is not AWS's: its ARN names no export id (``table/<table ARN>/import/<uuid>``),
its one data file is ``AWSDynamoDB/<uuid>/data/<uuid>.gz`` (AWS: ``<export id>/data/<random>.json.gz``
plus manifests), it ignores ClientToken and writes no manifest. The pipeline runs on moto's export
end to end, and `test_collect_reads_the_export_named_by_a_real_aws_arn` reads AWS's own layout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from functions.report import handler as report_handler
from infra.local.cli import main as boomerang
from shared.adapters.profile_store import ProfileStore
from shared.adapters.report_data import export_lines, scan_table
from shared.adapters.store_directory import StoreDirectory
from shared.domain.api_calls import normalise
from shared.platform import settings as env
from shared.platform.aws import client
from shared.platform.settings import settings
from shared.services import wiring
from shared.services.analytics.report_html import render_html
from shared.services.analytics.report_job import (
    MAX_DELAY_SECONDS,
    ReportJobDeps,
    ReportTask,
    run_collect,
    run_export,
)
from tests.aws_fixtures import STORE, LambdaContext, World, sqs_batch
from tests.integration.test_report import call, scenario, ts

ANALYTICS = "boomerang-analytics"
RUN = "2026-05-01"
SCHEDULED = {
    "version": "0",
    "id": "sched-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "time": f"{RUN}T03:00:00Z",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/monthly-report"],
    "detail": {},
}
SECOND = STORE.model_copy(update={"store_id": "shop-2", "name": "Second Shop"})


@pytest.fixture
def analytics(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    ddb = client("dynamodb")
    table_arn = ddb.describe_table(TableName=world.table)["Table"]["TableArn"]
    ddb.update_continuous_backups(
        TableName=world.table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    client("s3").create_bucket(Bucket=ANALYTICS)
    monkeypatch.setenv(env.TABLE_ARN, table_arn)
    monkeypatch.setenv(env.ANALYTICS_BUCKET, ANALYTICS)
    monkeypatch.setenv(env.REPORT_QUEUE_URL, world.queues["report"])
    monkeypatch.setenv(wiring.POLL_SECONDS_ENV, "0")  # moto's export is done at once
    wiring.reset()
    settings.cache_clear()
    yield world


def two_stores(world: World) -> None:
    scenario(world)
    StoreDirectory(client("dynamodb"), world.table).put(SECOND, "bk_second_store_key")
    profiles = ProfileStore(client("dynamodb"), world.table)
    for user, order, total, day in (("p", "p-1", 30, "2026-02-01"), ("p", "p-2", 70, "2026-03-01")):
        c = call(
            "track", ts(day), user, event="Order Completed", properties={"order_id": order, "total": total}
        )
        events, errors = normalise([c], SECOND.store_id, ts(day))
        assert not errors
        assert profiles.apply(events[0]).status == "applied"


def handle(*bodies: dict[str, Any]) -> dict[str, Any]:
    result = report_handler.handler(sqs_batch(bodies), LambdaContext())
    assert result["batchItemFailures"] == [], result
    return result


def queued(world: World) -> list[dict[str, Any]]:
    return world.published("report")  # the report queue, read and emptied


def objects(prefix: str) -> dict[str, bytes]:
    s3 = client("s3")
    listed = s3.list_objects_v2(Bucket=ANALYTICS, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=ANALYTICS, Key=o["Key"])["Body"].read() for o in listed}


def cli_report(world: World, capsys: pytest.CaptureFixture[str], store: str) -> dict[str, Any]:
    capsys.readouterr()  # the handler's metrics (EMF) went to standard output
    code = boomerang(
        [
            "report",
            "--store",
            store,
            "--from",
            "2025-05-01",
            "--to",
            RUN,
            "--format",
            "json",
            "--table",
            world.table,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return dict(json.loads(captured.out))


def figures(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("source", "computed_in_seconds")}


def test_export_then_collect_writes_each_stores_report_with_the_clis_numbers(
    analytics: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two stores' data in the table
    two_stores(analytics)
    # When the monthly schedule's event reaches the report λ
    handle(SCHEDULED)
    # Then the table is exported under exports/<run date>/ and a collect task is queued for it
    [export] = client("dynamodb").list_exports(TableArn=_table_arn())["ExportSummaries"]
    [collect_task] = queued(analytics)
    assert collect_task["phase"] == "collect" and collect_task["run_date"] == RUN
    assert collect_task["export_arn"] == export["ExportArn"]
    assert any(k.startswith(f"exports/{RUN}/AWSDynamoDB/") for k in objects("exports/"))
    assert json.loads(objects(f"exports/{RUN}/export.json")[f"exports/{RUN}/export.json"]) == {
        "export_arn": export["ExportArn"],
        "started_at": json.loads(objects("exports/")[f"exports/{RUN}/export.json"])["started_at"],
    }

    # When the collect task runs
    handle(collect_task)
    # Then each store has its dated and latest report, JSON and HTML, and nothing else is queued
    written = objects("metrics/")
    assert sorted(written) == sorted(
        f"metrics/{s}/{name}.{fmt}"
        for s in ("shop-1", "shop-2")
        for name in (RUN, "latest")
        for fmt in ("json", "html")
    )
    assert queued(analytics) == []
    for store in ("shop-1", "shop-2"):
        dated = json.loads(written[f"metrics/{store}/{RUN}.json"])
        assert json.loads(written[f"metrics/{store}/latest.json"]) == dated
        assert written[f"metrics/{store}/latest.html"] == written[f"metrics/{store}/{RUN}.html"]
        assert written[f"metrics/{store}/{RUN}.html"].decode() == render_html(dated)
        assert dated["source"].startswith(f"export s3://{ANALYTICS}/exports/{RUN}")
        assert (dated["from"], dated["to"]) == ("2025-05-01T00:00:00Z", "2026-05-01T00:00:00Z")
        # the same numbers as `boomerang report` computes on this machine from the table
        assert figures(dated) == figures(cli_report(analytics, capsys, store)), store
    shop1 = json.loads(written[f"metrics/shop-1/{RUN}.json"])
    april = next(p for p in shop1["churn"] if p["period"] == "2026-04")
    assert (april["base"], april["churned"], april["revenue_churn"]) == (6, 4, 0.069)  # test_report.py's
    assert json.loads(written[f"metrics/shop-2/{RUN}.json"])["orders"] == {
        "count": 2,
        "revenue": 100,
        "cancelled": 0,
    }
    # and only aggregates: no customer id or address
    text = b"".join(written.values()).decode()
    for secret in ("example.com", "u:big", "newbie", "u:p"):
        assert secret not in text

    # When the marketer fetches the latest report computed in AWS
    capsys.readouterr()
    code = boomerang(["report", "--latest", "--store", "shop-1", "--bucket", ANALYTICS, "--format", "json"])
    captured = capsys.readouterr()
    # Then it is that file
    assert code == 0, captured.err
    assert json.loads(captured.out) == shop1


def test_a_repeated_task_starts_no_second_export_and_a_rerun_overwrites_the_same_keys(
    analytics: World,
) -> None:
    two_stores(analytics)
    handle(SCHEDULED)
    [first] = queued(analytics)
    handle(first)
    before = objects("metrics/")
    # When the schedule's event is delivered again (EventBridge delivers at least once) and the task retried
    handle(SCHEDULED, {"task": "report", "phase": "export", "run_date": RUN})
    # Then no second export is started: both find the run's export and queue its collect task again
    assert len(client("dynamodb").list_exports(TableArn=_table_arn())["ExportSummaries"]) == 1
    again = queued(analytics)
    assert [t["export_arn"] for t in again] == [first["export_arn"]] * 2
    # And collecting again writes the same keys with the same figures
    handle(again[0])
    after = objects("metrics/")
    assert sorted(after) == sorted(before)
    for key in before:
        if key.endswith(".json"):
            assert figures(json.loads(after[key])) == figures(json.loads(before[key])), key


class _Exports:
    """The table client with DescribeExport answered as given (an export in progress, failed, or
    described by AWS itself), everything else passed to moto."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.description = description
        self.real = client("dynamodb")

    def describe_export(self, ExportArn: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        return {"ExportDescription": {"ExportArn": ExportArn, **self.description}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _deps(ddb: Any, sent: list[tuple[dict[str, Any], int]]) -> ReportJobDeps:
    return ReportJobDeps(
        ddb=ddb,
        s3=client("s3"),
        table_arn=_table_arn(),
        bucket=ANALYTICS,
        store_ids=StoreDirectory(client("dynamodb"), settings().table_name).store_ids,
        send=lambda task, delay: sent.append((task, delay)),
        poll_seconds=300,
    )


def _table_arn() -> str:
    return str(client("dynamodb").describe_table(TableName=settings().table_name)["Table"]["TableArn"])


def test_an_export_in_progress_is_polled_again_later(analytics: World) -> None:
    sent: list[tuple[dict[str, Any], int]] = []
    deps = _deps(_Exports({"ExportStatus": "IN_PROGRESS"}), sent)
    task = ReportTask(phase="collect", run_date=date(2026, 5, 1), export_arn="arn:x/export/1", polls=2)
    outcome = run_collect(task, deps)
    assert outcome.status == "waiting"
    # the same task, one more poll, after the queue's delay (SQS allows at most 15 minutes)
    [(again, delay)] = sent
    assert again == {**task.message(), "polls": 3} and delay == 300 <= MAX_DELAY_SECONDS
    assert objects("metrics/") == {}


def test_an_export_that_failed_is_reported_and_not_retried(analytics: World) -> None:
    sent: list[tuple[dict[str, Any], int]] = []
    failed = {"ExportStatus": "FAILED", "FailureCode": "S3NoSuchBucket", "FailureMessage": "no bucket"}
    task = ReportTask(phase="collect", run_date=date(2026, 5, 1), export_arn="arn:x/export/1")
    outcome = run_collect(task, _deps(_Exports(failed), sent))
    assert (outcome.status, outcome.reason) == ("failed", "FAILED: S3NoSuchBucket: no bucket")
    assert sent == [] and objects("metrics/") == {}


def test_a_real_export_that_failed_in_moto_is_reported_through_the_handler(analytics: World) -> None:
    # Given an export DynamoDB could not write (moto: the bucket does not exist)
    ddb = client("dynamodb")
    arn = ddb.export_table_to_point_in_time(TableArn=_table_arn(), S3Bucket="no-such-bucket-x", S3Prefix="x")[
        "ExportDescription"
    ]["ExportArn"]
    # When its collect task runs, Then the handler succeeds (no retry can fix it), logs it, writes nothing
    result = report_handler.record_handler(
        _record({"task": "report", "phase": "collect", "run_date": RUN, "export_arn": arn})
    )
    assert result["status"] == "failed"
    assert objects("metrics/") == {} and queued(analytics) == []


def _record(body: dict[str, Any]) -> Any:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    return SQSRecord(sqs_batch([body])["Records"][0])


def test_collect_reads_the_export_named_by_a_real_aws_arn(analytics: World) -> None:
    """AWS's layout: <prefix>/AWSDynamoDB/<export id>/data/<random>.json.gz and manifests, the export id
    being the ARN's last part; another export under the same prefix is not read."""
    scenario(analytics)
    items = list(scan_table(client("dynamodb"), analytics.table))
    s3 = client("s3")
    export_id = "01777600000000-a1b2c3d4"
    folder = f"exports/{RUN}/AWSDynamoDB/{export_id}"
    half = len(items) // 2
    for n, chunk in enumerate((items[:half], items[half:])):
        s3.put_object(Bucket=ANALYTICS, Key=f"{folder}/data/part{n}abc.json.gz", Body=export_lines(chunk))
    for name in ("manifest-summary.json", "manifest-files.json", "_started"):
        s3.put_object(Bucket=ANALYTICS, Key=f"{folder}/{name}", Body=b"{}")
    other = f"exports/{RUN}/AWSDynamoDB/01777500000000-ffffffff/data/zzz.json.gz"
    s3.put_object(Bucket=ANALYTICS, Key=other, Body=b"not even gzip")  # would fail the parser if read
    described = {
        "ExportStatus": "COMPLETED",
        "S3Bucket": ANALYTICS,
        "S3Prefix": f"exports/{RUN}",
        "ExportManifest": f"{folder}/manifest-summary.json",
        "ExportFormat": "DYNAMODB_JSON",
    }
    sent: list[tuple[dict[str, Any], int]] = []
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{analytics.table}/export/{export_id}"
    task = ReportTask(phase="collect", run_date=date(2026, 5, 1), export_arn=arn, stores=["shop-1"])
    outcome = run_collect(task, _deps(_Exports(described), sent))
    assert outcome.status == "completed" and outcome.items_read == len(items)
    report = json.loads(objects("metrics/shop-1/latest.json")["metrics/shop-1/latest.json"])
    assert report["source"] == f"export s3://{ANALYTICS}/{folder}"
    assert report["customers"]["profiles"] == 8


def test_export_task_queues_its_collect_task_with_a_delay(analytics: World) -> None:
    sent: list[tuple[dict[str, Any], int]] = []
    task = ReportTask.model_validate({"phase": "export", "run_date": RUN, "months": 3, "delay_seconds": 600})
    outcome = run_export(task, _deps(client("dynamodb"), sent))
    [(collect_task, delay)] = sent
    assert outcome.status == "export_started" and delay == 600
    assert collect_task == {**task.message(), "phase": "collect", "export_arn": outcome.export_arn}


def test_latest_report_errors_are_named(analytics: World, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["--latest", "--bucket", ANALYTICS], 2, "--latest needs --store"),
        (["--latest", "--store", "shop-1"], 2, "--latest needs --bucket"),
        (["--latest", "--store", "shop-1", "--bucket", ANALYTICS, "--from", "2026-01-01"], 2, "do not apply"),
        (["--latest", "--store", "shop-1", "--bucket", ANALYTICS], 1, "no report for store shop-1 yet"),
        (
            ["--latest", "--store", "shop-1", "--bucket", "no-such-bucket-x"],
            1,
            "no such bucket no-such-bucket-x",
        ),
    ]
    for args, expected, message in cases:
        code = boomerang(["report", *args])
        err = capsys.readouterr().err
        assert code == expected and message in err, (args, err)
