"""Starts journey executions: at most one per journey instance, however often a trigger repeats."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from shared import clock
from shared.events import JOURNEY_TRIGGER_EVENTS, CanonicalEvent
from shared.journeys import CART_ABANDONMENT, execution_name


@dataclass
class TriggerOutcome:
    status: str  # started | joined | ignored
    journey: str | None = None
    instance: str | None = None
    execution_arn: str | None = None


def start_for(event: CanonicalEvent, sfn: Any, state_machine_arn: str) -> TriggerOutcome:
    if event.type != "track" or event.event not in JOURNEY_TRIGGER_EVENTS:
        return TriggerOutcome("ignored")
    journey = CART_ABANDONMENT
    instance = event.cart_id
    # The first wait is timed from when Boomerang received the event, not from when we got to it.
    first_wait = max(0, math.ceil(event.received_at + journey.steps[0].delay_s - clock.now_ts()))
    state = {
        "store_id": event.store_id,
        "journey": journey.id,
        "instance": instance,
        "step": 0,
        "wait_seconds": first_wait,
        "started_at": event.received_at,
    }
    name = execution_name(event.store_id, journey.id, instance)
    try:
        resp = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(state))
    except sfn.exceptions.ExecutionAlreadyExists:
        # running (or finished) for this cart already: later cart events are read fresh by the step
        return TriggerOutcome("joined", journey.id, instance)
    return TriggerOutcome("started", journey.id, instance, resp["executionArn"])
