"""Journey-trigger λ: SQS batch of cart events -> one Step Functions execution per cart."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.aws import client
from shared.bus import event_from_sqs_body
from shared.journey_trigger import start_for
from shared.settings import settings
from shared.stores import StoreDirectory

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
processor = BatchProcessor(event_type=EventType.SQS)
_stores: StoreDirectory | None = None


def stores() -> StoreDirectory:
    global _stores
    if _stores is None:
        _stores = StoreDirectory(client("dynamodb"), settings().table_name)
    return _stores


def record_handler(record: SQSRecord) -> dict[str, Any]:
    event = event_from_sqs_body(record.body)
    outcome = start_for(event, client("stepfunctions"), settings().state_machine_arn, stores())
    logger.info(
        "journey trigger",
        extra={
            "store": event.store_id,
            "message_id": event.message_id,
            "event": event.event,
            "outcome": outcome.status,
            "journey": outcome.journey,
            "instance": outcome.instance,
        },
    )
    metrics.add_metric(name=f"JourneyTrigger_{outcome.status}", unit=MetricUnit.Count, value=1)
    return {
        "message_id": event.message_id,
        "outcome": outcome.status,
        "journey": outcome.journey,
        "instance": outcome.instance,
    }


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(result)
