"""Profile λ: SQS batch of bus events -> customer profiles, carts and order aggregates.

What the fold concludes for journeys (a loyalty tier reached) goes back out on the bus, published
before the fold commits so a crash in between repeats the event rather than losing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.adapters.bus import event_from_sqs_body, publish
from shared.platform.aws import client
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.domain.events import CanonicalEvent

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
wiring.check_at_cold_start("profile")


def _announce(event: CanonicalEvent) -> None:
    # raises PublishFailed: the record is retried, and its fold was not committed
    publish(client("events"), wiring.settings_for("profile").bus_name, [event])
    metrics.add_metric(name="EventsAnnounced", unit=MetricUnit.Count, value=1)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    event = event_from_sqs_body(record.body)
    outcome = wiring.profile_store().apply(event, announce=_announce)
    # ids and event names only: never emails, phones or names
    logger.info(
        "profile event",
        extra={
            "store": event.store_id,
            "message_id": event.message_id,
            "event": event.event or event.type,
            "outcome": outcome.status,
            "changes": outcome.changes,
        },
    )
    metrics.add_metric(name=f"ProfileEvents_{outcome.status}", unit=MetricUnit.Count, value=1)
    return {
        "message_id": event.message_id,
        "customer_id": outcome.customer_id,
        "outcome": outcome.status,
        "changes": outcome.changes,
    }


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.process_sqs_batch(event, context, record_handler)
