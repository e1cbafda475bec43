"""Journey-trigger λ: events, audience tasks and the daily schedule -> one execution per journey instance;
also each store's daily segments run (RFM edges, rescoring, time-based segments)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shared.platform import clock
from shared.platform.function_log import BatchLog, function_logger, log_context
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
wiring.check_at_cold_start("journey_trigger")


# A journey started or joined goes in the batch's one line (its execution is in Step Functions); an
# event that starts nothing keeps a line with the reason (the question "why no email?" starts there).
# Outcomes are counted in those lines, not as metrics: no alarm or dashboard widget reads them.
ROUTINE = ("started", "joined")


def record_handler(record: SQSRecord, batch: BatchLog | None = None) -> dict[str, Any]:
    from shared.adapters.bus import event_from_sqs_body
    from shared.adapters.segment_store import run_segments_task
    from shared.domain.events import EVENT_SOURCE
    from shared.services.journeys.trigger import TriggerOutcome, run_task, schedule_tasks, start_for

    body = json.loads(record.body)
    if body.get("task") == "segments":  # a store's daily segments run, one step at a time
        summary = run_segments_task(
            body, wiring.trigger_deps().profiles, wiring.segment_store(), wiring.trigger_deps().tasks
        )
        outcomes = [TriggerOutcome("segments", reason=summary)]
        what = {"store": body["store_id"], "segments": body["phase"]}
    elif body.get("task") == "broadcast-defer":  # a broadcast member who waits: their own execution
        from shared.services.journeys.broadcast import start_deferred

        status = start_deferred(body["state"], wiring.trigger_deps())
        outcomes = [TriggerOutcome(status, body["state"]["journey"], reason="broadcast member deferred")]
        what = {"store": body["state"]["store_id"], "journey": body["state"]["journey"]}
    elif body.get("task") == "audience":  # the next page of an audience (ours, from this queue)
        outcomes = [run_task(body, wiring.trigger_deps())]
        what = {"store": body["store_id"], "journey": body["journey"], "audience": body["audience"]}
    elif body.get("detail-type") == "Scheduled Event":  # the daily run: one task per store and journey
        tasks = schedule_tasks(clock.now_ts(), wiring.trigger_deps())
        for task in tasks:
            wiring.trigger_deps().tasks(task)
        outcomes = [TriggerOutcome("queued", reason=f"{len(tasks)} audience tasks")]
        what = {"event": "daily schedule"}
    elif body.get("source") != EVENT_SOURCE:
        # only Boomerang's own rules feed this queue; anything else is a wiring mistake to see, not retry
        logger.warning("journey queue: unexpected message ignored", extra={"source": body.get("source")})
        return {"outcomes": []}
    else:
        event = event_from_sqs_body(record.body)
        outcomes = start_for(event, wiring.trigger_deps())
        what = {"store": event.store_id, "message_id": event.message_id, "event": event.event}
    for outcome in outcomes:
        routine = outcome.status in ROUTINE
        if batch is not None and routine:
            batch.routine(outcome.status, what.get("message_id"))
        (logger.debug if routine else logger.info)(
            "journey trigger",
            extra={
                **what,
                "outcome": outcome.status,
                "journey": outcome.journey,
                "instance": outcome.instance,
                "reason": outcome.reason,
            },
        )
    return {"outcomes": [o.__dict__ for o in outcomes]}


@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = BatchLog(logger, "journey trigger batch")
    response = wiring.process_sqs_batch(event, context, lambda record: record_handler(record, batch))
    batch.write(len(event.get("Records") or []), response)
    return response
