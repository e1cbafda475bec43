"""Profile λ: SQS batch of bus events -> customer profiles, carts and order aggregates.

What the fold concludes for journeys (a loyalty tier reached) goes back out on the bus, published
before the fold commits so a crash in between repeats the event rather than losing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.adapters.bus import event_from_sqs_body, publish
from shared.platform.aws import client
from shared.platform.function_log import BatchLog, function_logger, log_context
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.domain.events import CanonicalEvent

logger = function_logger()
metrics = Metrics(namespace="Boomerang", service="boomerang")
wiring.check_at_cold_start("profile")


def _announce(event: CanonicalEvent) -> None:
    # raises PublishFailed: the record is retried, and its fold was not committed
    publish(client("events"), wiring.settings_for("profile").bus_name, [event])
    metrics.add_metric(name="EventsAnnounced", unit=MetricUnit.Count, value=1)


# Routine outcomes (the event applied, or nothing it changes is read) go in the batch's one line;
# the rest (a duplicate, an erased customer, a store-level event) keep a line each with their reason.
# Outcomes are counted there, not as metrics: no alarm or dashboard widget reads them, and a metrics
# blob an invocation (~225 B) would repeat the line.
ROUTINE = ("applied", "unchanged")


def record_handler(record: SQSRecord, batch: BatchLog | None = None) -> dict[str, Any]:
    event = event_from_sqs_body(record.body)
    outcome = wiring.profile_store().apply(event, announce=_announce)
    routine = outcome.status in ROUTINE
    if batch is not None and routine:
        batch.routine(outcome.status, event.message_id)
    # ids and event names only: never emails, phones or names
    (logger.debug if routine else logger.info)(
        "profile event",
        extra={
            "store": event.store_id,
            "message_id": event.message_id,
            "event": event.event or event.type,
            "outcome": outcome.status,
            "changes": outcome.changes,
        },
    )
    return {
        "message_id": event.message_id,
        "customer_id": outcome.customer_id,
        "outcome": outcome.status,
        "changes": outcome.changes,
    }


@metrics.log_metrics
@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = BatchLog(logger, "profile batch")
    response = wiring.process_sqs_batch(event, context, lambda record: record_handler(record, batch))
    batch.write(len(event.get("Records") or []), response)
    return response
