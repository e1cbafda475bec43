"""Report λ: the monthly schedule and report tasks -> a table export, then every store's report from it
(shared/services/analytics/report_job.py)."""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.store_directory import StoreDirectory
from shared.platform.aws import client
from shared.platform.settings import settings
from shared.services.analytics.report_job import (
    DEFAULT_POLL_SECONDS,
    TASK,
    ReportJobDeps,
    ReportTask,
    run,
    scheduled_task,
)

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
processor = BatchProcessor(event_type=EventType.SQS)
_deps: ReportJobDeps | None = None
POLL_SECONDS_ENV = "REPORT_POLL_SECONDS"  # the local emulator polls its (instant) exports sooner


def deps() -> ReportJobDeps:
    global _deps
    if _deps is None:
        s = settings()
        ddb, sqs = client("dynamodb"), client("sqs")
        if not (s.table_arn and s.analytics_bucket and s.report_queue_url):
            raise RuntimeError("report λ needs TABLE_ARN, ANALYTICS_BUCKET and REPORT_QUEUE_URL")

        def send(task: dict[str, Any], delay: int) -> None:
            sqs.send_message(QueueUrl=s.report_queue_url, MessageBody=json.dumps(task), DelaySeconds=delay)

        _deps = ReportJobDeps(
            ddb=ddb,
            s3=client("s3"),
            table_arn=s.table_arn,
            bucket=s.analytics_bucket,
            store_ids=StoreDirectory(ddb, s.table_name).store_ids,
            send=send,
            poll_seconds=int(os.environ.get(POLL_SECONDS_ENV) or DEFAULT_POLL_SECONDS),
        )
    return _deps


def record_handler(record: SQSRecord) -> dict[str, Any]:
    body = json.loads(record.body)
    if body.get("detail-type") == "Scheduled Event":  # the monthly run: start with the export
        task = scheduled_task(str(body["time"]))
    elif body.get("task") == TASK:
        task = ReportTask.model_validate(body)
    else:
        # only the schedule and this function feed the queue; anything else is a wiring mistake to see
        logger.warning("report queue: unexpected message ignored", extra={"source": body.get("source")})
        return {"status": "ignored"}
    outcome = run(task, deps())
    # store ids and counts only: a report holds aggregates, and none of them is logged
    logger.info(
        "report task",
        extra={
            "phase": task.phase,
            "run_date": task.run_date.isoformat(),
            "outcome": outcome.status,
            "export_arn": outcome.export_arn,
            "reason": outcome.reason,
            "stores": outcome.reports,
            "items_read": outcome.items_read,
            "seconds": outcome.seconds,
        },
    )
    if outcome.status in ("failed", "gave_up"):
        logger.error("report export did not complete", extra={"export_arn": outcome.export_arn})
    metrics.add_metric(name=f"Report_{outcome.status}", unit=MetricUnit.Count, value=1)
    return {"status": outcome.status, "export_arn": outcome.export_arn, "stores": sorted(outcome.reports)}


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(result)
