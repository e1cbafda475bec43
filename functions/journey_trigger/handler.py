"""Journey-trigger λ: events, audience tasks and the daily schedule -> one execution per journey instance;
also each store's daily segments run (RFM edges, rescoring, time-based segments)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.bus import event_from_sqs_body
from shared.adapters.journey_catalog import JourneyCatalog
from shared.adapters.journey_store import JourneyStore
from shared.adapters.profile_store import ProfileStore
from shared.adapters.segment_catalog import SegmentCatalog
from shared.adapters.segment_store import SegmentStore, run_segments_task
from shared.adapters.store_directory import StoreDirectory
from shared.domain.events import EVENT_SOURCE
from shared.platform import clock
from shared.platform.aws import client
from shared.platform.settings import settings
from shared.services.journeys.trigger import TriggerDeps, TriggerOutcome, run_task, schedule_tasks, start_for

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
processor = BatchProcessor(event_type=EventType.SQS)
_deps: TriggerDeps | None = None


def deps() -> TriggerDeps:
    global _deps
    if _deps is None:
        s = settings()
        ddb, sqs = client("dynamodb"), client("sqs")
        _deps = TriggerDeps(
            sfn=client("stepfunctions"),
            state_machine_arn=s.state_machine_arn,
            stores=StoreDirectory(ddb, s.table_name),
            catalog=JourneyCatalog(client("s3"), s.templates_bucket, s.files_cache_seconds),
            journeys=JourneyStore(ddb, s.table_name),
            profiles=ProfileStore(
                ddb,
                s.table_name,
                segments=SegmentCatalog(client("s3"), s.templates_bucket, s.files_cache_seconds),
            ),
            tasks=lambda task: sqs.send_message(QueueUrl=s.journey_queue_url, MessageBody=json.dumps(task)),
            ddb=ddb,
            table=s.table_name,
        )
    return _deps


def record_handler(record: SQSRecord) -> dict[str, Any]:
    body = json.loads(record.body)
    if body.get("task") == "segments":  # a store's daily segments run, one step at a time
        d = deps()
        summary = run_segments_task(body, d.profiles, SegmentStore(d.ddb, d.table), d.tasks)
        outcomes = [TriggerOutcome("segments", reason=summary)]
        what = {"store": body["store_id"], "segments": body["phase"]}
    elif body.get("task") == "audience":  # the next page of an audience (ours, from this queue)
        outcomes = [run_task(body, deps())]
        what = {"store": body["store_id"], "journey": body["journey"], "audience": body["audience"]}
    elif body.get("detail-type") == "Scheduled Event":  # the daily run: one task per store and journey
        tasks = schedule_tasks(clock.now_ts(), deps())
        for task in tasks:
            deps().tasks(task)
        outcomes = [TriggerOutcome("queued", reason=f"{len(tasks)} audience tasks")]
        what = {"event": "daily schedule"}
    elif body.get("source") != EVENT_SOURCE:
        # only Boomerang's own rules feed this queue; anything else is a wiring mistake to see, not retry
        logger.warning("journey queue: unexpected message ignored", extra={"source": body.get("source")})
        return {"outcomes": []}
    else:
        event = event_from_sqs_body(record.body)
        outcomes = start_for(event, deps())
        what = {"store": event.store_id, "message_id": event.message_id, "event": event.event}
    for outcome in outcomes:
        logger.info(
            "journey trigger",
            extra={
                **what,
                "outcome": outcome.status,
                "journey": outcome.journey,
                "instance": outcome.instance,
                "reason": outcome.reason,
            },
        )
        metrics.add_metric(name=f"JourneyTrigger_{outcome.status}", unit=MetricUnit.Count, value=1)
    return {"outcomes": [o.__dict__ for o in outcomes]}


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(result)
