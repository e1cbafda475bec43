"""The retention report at scale: computed in AWS from a DynamoDB export, never on a marketer's machine.

Two tasks on the report queue, run by the report λ (functions/report):

- ``export``: ExportTableToPointInTime of the table to the analytics bucket under
  ``exports/<run date>/`` (no table reads, no read capacity used), then a ``collect`` task queued with
  a delay. A repeated task starts no second export: the ClientToken is derived from the run date
  (DynamoDB keeps it 8 hours) and the export's ARN is kept next to it (``exports/<run date>/export.json``)
  for any later retry.
- ``collect``: DescribeExport; still running -> the same task again, delayed; failed -> reported and
  stopped (a retry cannot fix it); completed -> every store's report for the period from the export,
  with the CLI's own code (shared/adapters/report_data.py's parser, shared/services/analytics/report.py's figures from
  shared/domain/metrics.py), written to ``metrics/<store>/<run date>.json|.html`` and
  ``metrics/<store>/latest.json|.html``. Running it again overwrites the same keys.

The whole export is read into memory: the ceiling is the function's memory and 15 minutes (README
"Reports at scale"); past it, Athena over the same export files is the next step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.adapters.report_data import collect, read_export
from shared.domain import metrics as m
from shared.services.analytics.report import build
from shared.services.analytics.report_html import render_html

TASK: Literal["report"] = "report"
EXPORTS_PREFIX = "exports/"
METRICS_PREFIX = "metrics/"
LATEST = "latest"
DEFAULT_MONTHS = 12
DEFAULT_POLL_SECONDS = 300  # an export of a small table takes a few minutes; big ones longer
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds' maximum
MAX_POLLS = 96  # polls of one export before giving up: 24 h at 15 minutes (exports take minutes to hours)


class ReportJobError(RuntimeError):
    """The job cannot go on as asked (a deployment or data problem, named in the message)."""


class ReportTask(BaseModel):
    """One message on the report queue. Everything but the phase and the run date has a default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    task: Literal["report"] = TASK
    phase: Literal["export", "collect"]
    run_date: date  # names the export folder and the dated reports; the schedule's day
    months: int = Field(default=DEFAULT_MONTHS, ge=1, le=120)  # full months before the run date's month
    start: date | None = Field(default=None, alias="from")  # or an explicit period [from, to)
    end: date | None = Field(default=None, alias="to")
    stores: list[str] | None = None  # default: every store (the stores index)
    churn_window_days: float = Field(default=m.DEFAULT_CHURN_WINDOW_DAYS, gt=0)
    attribution_days: float = Field(default=m.DEFAULT_ATTRIBUTION_DAYS, gt=0)
    delay_seconds: int | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS)  # between polls
    export_arn: str | None = None  # set on collect tasks
    polls: int = Field(default=0, ge=0)

    def message(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def scheduled_task(event_time: str) -> ReportTask:
    """The export task for the monthly schedule's event (its `time`, ISO 8601 UTC)."""
    at = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    return ReportTask(phase="export", run_date=at.astimezone(UTC).date())


def period(task: ReportTask) -> tuple[float, float]:
    """[from, to) as UTC timestamps: the `months` full months before the run date's month by default."""
    end = task.end or task.run_date.replace(day=1)
    if task.start is not None:
        start = task.start
    else:
        index = end.year * 12 + end.month - 1 - task.months
        start = date(index // 12, index % 12 + 1, 1)
    if start >= end:
        raise ReportJobError(f"report task: from ({start}) must be before to ({end})")

    def ts(d: date) -> float:
        return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()

    return ts(start), ts(end)


def export_prefix(run_date: date) -> str:
    return f"{EXPORTS_PREFIX}{run_date.isoformat()}"


def marker_key(run_date: date) -> str:
    return f"{export_prefix(run_date)}/export.json"


def client_token(run_date: date) -> str:
    # same run date, same token: DynamoDB returns the export already started instead of a second one
    return f"boomerang-report-{run_date.isoformat()}"


def report_key(store: str, name: str, fmt: str) -> str:
    return f"{METRICS_PREFIX}{store}/{name}.{fmt}"


def export_folder(description: dict[str, Any]) -> str:
    """Where an export's data files are: ``<S3Prefix>/AWSDynamoDB/<export id>``, the id being the
    last part of its ARN (``arn:aws:dynamodb:<region>:<account>:table/<name>/export/<export id>``).

    moto 5.2.5 names no export id in its ARN (``.../import/<uuid>``) and writes to a folder of its own
    choosing: then the run's folder, which holds only this export (the marker sees to that)."""
    prefix = str(description.get("S3Prefix") or "").strip("/")
    arn = str(description.get("ExportArn") or "")
    if "/export/" in arn:
        export_id = arn.rsplit("/export/", 1)[1]
        return f"{prefix}/AWSDynamoDB/{export_id}" if prefix else f"AWSDynamoDB/{export_id}"
    return prefix


@dataclass
class ReportJobDeps:
    ddb: Any
    s3: Any
    table_arn: str
    bucket: str
    store_ids: Callable[[], list[str]]  # StoreDirectory.store_ids: the stores index, never a Scan
    send: Callable[[dict[str, Any], int], None]  # queue a task with a delay in seconds
    poll_seconds: int = DEFAULT_POLL_SECONDS


@dataclass
class JobOutcome:
    status: str  # export_started | export_joined | waiting | failed | gave_up | completed
    export_arn: str | None = None
    reason: str = ""
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # store -> a few figures
    seconds: float = 0.0
    items_read: int = 0


def run(task: ReportTask, deps: ReportJobDeps) -> JobOutcome:
    return run_export(task, deps) if task.phase == "export" else run_collect(task, deps)


def _delay(task: ReportTask, deps: ReportJobDeps) -> int:
    return min(MAX_DELAY_SECONDS, task.delay_seconds if task.delay_seconds is not None else deps.poll_seconds)


def _existing_export(deps: ReportJobDeps, run_date: date) -> str | None:
    try:
        body = deps.s3.get_object(Bucket=deps.bucket, Key=marker_key(run_date))["Body"].read()
    except deps.s3.exceptions.NoSuchKey:
        return None
    arn = json.loads(body).get("export_arn")
    return str(arn) if arn else None


def run_export(task: ReportTask, deps: ReportJobDeps) -> JobOutcome:
    """Start the run date's export (or find the one already started) and queue its collect task."""
    period(task)  # a bad period fails here, before an export is paid for
    arn = _existing_export(deps, task.run_date)
    status = "export_joined"
    if arn is None:
        status = "export_started"
        described = deps.ddb.export_table_to_point_in_time(
            TableArn=deps.table_arn,
            S3Bucket=deps.bucket,
            S3Prefix=export_prefix(task.run_date),
            ExportFormat="DYNAMODB_JSON",
            ClientToken=client_token(task.run_date),
        )["ExportDescription"]
        arn = str(described["ExportArn"])
        marker = {"export_arn": arn, "started_at": datetime.now(UTC).isoformat(timespec="seconds")}
        deps.s3.put_object(
            Bucket=deps.bucket,
            Key=marker_key(task.run_date),
            Body=json.dumps(marker).encode(),
            ContentType="application/json",
        )
    collect_task = task.model_copy(update={"phase": "collect", "export_arn": arn, "polls": 0})
    deps.send(collect_task.message(), _delay(task, deps))
    return JobOutcome(status, export_arn=arn)


def run_collect(task: ReportTask, deps: ReportJobDeps) -> JobOutcome:
    """Wait for the export, then write every store's report computed from it."""
    if not task.export_arn:
        raise ReportJobError("report task: a collect task needs export_arn")
    described = deps.ddb.describe_export(ExportArn=task.export_arn)["ExportDescription"]
    status = described.get("ExportStatus")
    if status == "IN_PROGRESS":
        if task.polls + 1 >= MAX_POLLS:
            return JobOutcome("gave_up", task.export_arn, f"still in progress after {task.polls + 1} polls")
        deps.send(task.model_copy(update={"polls": task.polls + 1}).message(), _delay(task, deps))
        return JobOutcome("waiting", task.export_arn, f"poll {task.polls + 1}")
    if status != "COMPLETED":
        reason = f"{status}: {described.get('FailureCode')}: {described.get('FailureMessage')}"
        return JobOutcome("failed", task.export_arn, reason)
    started = time.monotonic()
    folder = export_folder(described)
    items = list(read_export(deps.s3, deps.bucket, folder))
    outcome = JobOutcome("completed", task.export_arn, items_read=len(items))
    start, end = period(task)
    source = f"export s3://{deps.bucket}/{folder}"
    by_store = group_by_store(items)
    for store in task.stores if task.stores is not None else deps.store_ids():
        report = compute(by_store.get(store, []), store, start, end, task, source)
        if report is None:
            outcome.reports[store] = {"skipped": "no profiles or orders"}
            continue
        publish(deps, store, task.run_date, report)
        outcome.reports[store] = {
            "customers": report["customers"]["profiles"],
            "orders": report["orders"]["count"],
            "seconds": report["computed_in_seconds"],
        }
    outcome.seconds = round(time.monotonic() - started, 3)
    return outcome


def group_by_store(items: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One pass over the export: each store's items (``STORE#<store>#...`` keys), so each report
    reads its own items only, not the whole export once per store."""
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        parts = str(item.get("pk", "")).split("#", 2)
        if len(parts) == 3 and parts[0] == "STORE":
            out.setdefault(parts[1], []).append(item)
    return out


def compute(
    items: Iterable[dict[str, Any]],
    store: str,
    start: float,
    end: float,
    task: ReportTask,
    source: str,
) -> dict[str, Any] | None:
    """One store's report, exactly as `boomerang report` computes it (None: nothing to report)."""
    started = time.monotonic()
    data = collect(items, store)
    if not data.customers and not data.orders:
        return None
    report = build(
        data,
        start,
        end,
        churn_window_days=task.churn_window_days,
        attribution_days=task.attribution_days,
        source=source,
    )
    report["computed_in_seconds"] = round(time.monotonic() - started, 3)
    return report


def publish(deps: ReportJobDeps, store: str, run_date: date, report: dict[str, Any]) -> None:
    """The dated report, then latest (the same content): a rerun overwrites the same four keys."""
    bodies = {
        "json": (json.dumps(report, indent=2).encode(), "application/json"),
        "html": (render_html(report).encode(), "text/html; charset=utf-8"),
    }
    for name in (run_date.isoformat(), LATEST):
        for fmt, (body, content_type) in bodies.items():
            deps.s3.put_object(
                Bucket=deps.bucket, Key=report_key(store, name, fmt), Body=body, ContentType=content_type
            )
