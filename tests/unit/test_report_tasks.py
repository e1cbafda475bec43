"""The report job's pure parts: the period, the export's folder, the schedules' times (which the local
emulator computes itself from the same cron expressions)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from infra.description import DAILY_SCHEDULE, MONTHLY_REPORT_SCHEDULE, RULES, next_fire
from shared.services.analytics.report_job import (
    ReportJobError,
    ReportTask,
    export_folder,
    period,
    report_key,
    scheduled_task,
)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


def test_the_default_period_is_the_twelve_full_months_before_the_run() -> None:
    task = scheduled_task("2026-05-01T03:00:00Z")
    assert (task.phase, task.run_date) == ("export", date(2026, 5, 1))
    assert tuple(map(iso, period(task))) == ("2025-05-01 00:00", "2026-05-01 00:00")
    # a run in mid-month still ends at the month's start (the month so far is not a full month)
    three = ReportTask(phase="export", run_date=date(2026, 1, 20), months=3)
    assert tuple(map(iso, period(three))) == ("2025-10-01 00:00", "2026-01-01 00:00")
    explicit = ReportTask.model_validate(
        {"phase": "export", "run_date": "2026-05-01", "from": "2026-01-01", "to": "2026-04-01"}
    )
    assert tuple(map(iso, period(explicit))) == ("2026-01-01 00:00", "2026-04-01 00:00")
    assert explicit.message()["from"] == "2026-01-01"  # round-trips through the queue by its alias
    backwards = ReportTask.model_validate({"phase": "export", "run_date": "2026-05-01", "from": "2026-06-01"})
    with pytest.raises(ReportJobError, match=r"from \(2026-06-01\) must be before to \(2026-05-01\)"):
        period(backwards)


def test_a_task_is_checked() -> None:
    with pytest.raises(ValidationError):
        ReportTask.model_validate({"phase": "export", "run_date": "2026-05-01", "delay_seconds": 901})
    with pytest.raises(ValidationError):
        ReportTask.model_validate({"phase": "publish", "run_date": "2026-05-01"})
    with pytest.raises(ValidationError):
        ReportTask.model_validate({"phase": "export", "run_date": "2026-05-01", "store": "typo"})


def test_the_export_folder_comes_from_the_export_id_in_the_arn() -> None:
    real = {
        "ExportArn": "arn:aws:dynamodb:eu-west-1:123456789012:table/Boomerang-Table/export/01777600000000-a1b2c3d4",
        "S3Prefix": "exports/2026-05-01",
    }
    assert export_folder(real) == "exports/2026-05-01/AWSDynamoDB/01777600000000-a1b2c3d4"
    # moto 5.2.5's ARN names no export: the run's own folder (one export per run date)
    moto = {
        "ExportArn": "arn:aws:dynamodb:us-east-1:1:table/arn:aws:dynamodb:us-east-1:1:table/t/import/ab",
        "S3Prefix": "exports/2026-05-01",
    }
    assert export_folder(moto) == "exports/2026-05-01"
    assert report_key("shop-1", "latest", "html") == "metrics/shop-1/latest.html"


def test_schedules_fire_at_their_own_times() -> None:
    assert iso(next_fire(DAILY_SCHEDULE, at("2026-05-01 11:59"))) == "2026-05-01 12:00"
    assert iso(next_fire(DAILY_SCHEDULE, at("2026-05-01 12:00"))) == "2026-05-02 12:00"
    assert iso(next_fire(MONTHLY_REPORT_SCHEDULE, at("2026-05-01 02:00"))) == "2026-05-01 03:00"
    assert iso(next_fire(MONTHLY_REPORT_SCHEDULE, at("2026-05-01 03:00"))) == "2026-06-01 03:00"
    assert iso(next_fire(MONTHLY_REPORT_SCHEDULE, at("2026-12-15 00:00"))) == "2027-01-01 03:00"
    # over a year the monthly rule fires 12 times, the daily one 365: never the monthly one daily
    for schedule, expected in ((MONTHLY_REPORT_SCHEDULE, 12), (DAILY_SCHEDULE, 365)):
        t, fired = at("2026-01-01 00:00"), 0
        while (t := next_fire(schedule, t)) < at("2027-01-01 00:00"):
            fired += 1
        assert fired == expected, schedule
    for rule in RULES:  # every schedule in the description is one the emulator can run
        if rule.schedule:
            next_fire(rule.schedule, at("2026-01-01 00:00"))
    with pytest.raises(ValueError, match="cannot run schedule"):
        next_fire("rate(5 minutes)", 0)
