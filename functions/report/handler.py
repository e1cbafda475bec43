"""Report λ: the monthly schedule and report tasks -> a table export, then every store's report from it
(shared/services/analytics/report_job.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform.function_log import function_logger, log_context
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
metrics = Metrics(namespace="Boomerang", service="boomerang")
wiring.check_at_cold_start("report")


def record_handler(record: SQSRecord) -> dict[str, Any]:
    # Imported here: the report code (metrics, HTML) is heavy and runs only a few times a month.
    from shared.services.analytics.report_job import TASK, ReportTask, run, scheduled_task

    body = json.loads(record.body)
    if body.get("detail-type") == "Scheduled Event":  # the monthly run: start with the export
        task = scheduled_task(str(body["time"]))
    elif body.get("task") == TASK:
        task = ReportTask.model_validate(body)
    else:
        # only the schedule and this function feed the queue; anything else is a wiring mistake to see
        logger.warning("report queue: unexpected message ignored", extra={"source": body.get("source")})
        return {"status": "ignored"}
    outcome = run(task, wiring.report_deps())
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
@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.process_sqs_batch(event, context, record_handler)
