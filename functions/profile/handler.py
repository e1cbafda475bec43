"""Profile λ: SQS batch of bus events -> customer profiles, carts and order aggregates.

What the fold concludes for journeys (a loyalty tier reached) goes back out on the bus, published
before the fold commits so a crash in between repeats the event rather than losing it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.bus import event_from_sqs_body, publish
from shared.adapters.profile_store import ProfileStore
from shared.adapters.segment_catalog import SegmentCatalog
from shared.domain.events import CanonicalEvent
from shared.platform.aws import client
from shared.platform.settings import settings

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
processor = BatchProcessor(event_type=EventType.SQS)


_profiles: ProfileStore | None = None


def _store() -> ProfileStore:
    # one per container: its caches (store settings, RFM edges, segment files) last across batches
    global _profiles
    if _profiles is None:
        s = settings()
        _profiles = ProfileStore(
            client("dynamodb"),
            s.table_name,
            segments=SegmentCatalog(client("s3"), s.templates_bucket, s.files_cache_seconds),
        )
    return _profiles


def _announce(event: CanonicalEvent) -> None:
    # raises PublishFailed: the record is retried, and its fold was not committed
    publish(client("events"), settings().bus_name, [event])
    metrics.add_metric(name="EventsAnnounced", unit=MetricUnit.Count, value=1)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    event = event_from_sqs_body(record.body)
    outcome = _store().apply(event, announce=_announce)
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
    result = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(result)
