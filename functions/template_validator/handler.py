"""Template validator λ: SQS batch of S3 "Object Created/Deleted" events (from the default bus) for
templates/ and journeys/ -> validate, activate what passes, write the report, notify on rejection."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.aws import client
from shared.settings import settings
from shared.template_publish import parse_s3_event, sns_notifier, validate_change

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    change = parse_s3_event(record.body)  # not an S3 event: raises, and the record goes to the DLQ
    s = settings()
    if change.bucket != s.templates_bucket:
        logger.info("ignored: another bucket", extra={"bucket": change.bucket})
        return {"status": "ignored"}
    notify = sns_notifier(client("sns"), s.reports_topic_arn) if s.reports_topic_arn else None
    outcome = validate_change(
        client("s3"), change.bucket, change.key, version_id=change.version_id, notify=notify
    )
    logger.info(
        "template checked",
        extra={"key": change.key, "status": outcome.status, "problems": len(outcome.problems)},
    )
    metrics.add_metric(name=f"Template_{outcome.status}", unit=MetricUnit.Count, value=1)
    return outcome.as_dict()


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
