"""Starts journey executions: at most one per journey instance, however often a trigger repeats."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from shared import clock
from shared.events import CONSENT_UPDATED, DOUBLE_OPT_IN_SOURCE, JOURNEY_TRIGGER_EVENTS, CanonicalEvent
from shared.journeys import CART_ABANDONMENT, EMAIL_CONFIRMATION, Journey, execution_name
from shared.keys import anon_customer_id, user_customer_id


@dataclass
class TriggerOutcome:
    status: str  # started | joined | ignored
    journey: str | None = None
    instance: str | None = None
    execution_arn: str | None = None


MAX_GENERATIONS = 50  # journeys per instance within Step Functions' 90-day name retention


def start_for(event: CanonicalEvent, sfn: Any, state_machine_arn: str, stores: Any = None) -> TriggerOutcome:
    """Start (or join) the journey this event triggers, if any. `stores` is a StoreDirectory."""
    if event.type == "track" and event.event in JOURNEY_TRIGGER_EVENTS:
        journey = CART_ABANDONMENT
        # The first wait is timed from when Boomerang received the event, not from when we got to it.
        first_wait = max(0, math.ceil(event.received_at + journey.steps[0].delay_s - clock.now_ts()))
        return _start(event, sfn, state_machine_arn, journey, event.cart_id, first_wait)
    if _gives_email_consent(event) and stores is not None:
        store = stores.get(event.store_id)
        if store is not None and store.double_opt_in_email:
            customer = (
                user_customer_id(event.user_id)
                if event.user_id
                else anon_customer_id(str(event.anonymous_id))
            )
            return _start(event, sfn, state_machine_arn, EMAIL_CONFIRMATION, customer, 0)
    return TriggerOutcome("ignored")


def _gives_email_consent(event: CanonicalEvent) -> bool:
    fields = (
        event.traits
        if event.type == "identify"
        else event.properties
        if event.event == CONSENT_UPDATED
        else {}
    )
    if fields.get("consent_source") == DOUBLE_OPT_IN_SOURCE:
        return False  # the confirmation itself: nothing more to confirm
    return (fields.get("consent") or {}).get("email") == "subscribed"


def _start(
    event: CanonicalEvent, sfn: Any, state_machine_arn: str, journey: Journey, instance: str, first_wait: int
) -> TriggerOutcome:
    for generation in range(MAX_GENERATIONS):
        state = {
            "store_id": event.store_id,
            "journey": journey.id,
            "instance": instance,
            "generation": generation,
            "step": 0,
            "wait_seconds": first_wait,
            "started_at": event.received_at,
            "trigger": event.message_id,
        }
        name = execution_name(event.store_id, journey.id, instance, generation)
        try:
            resp = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(state))
        except sfn.exceptions.ExecutionAlreadyExists:
            if _saw(sfn, execution_arn(state_machine_arn, name), event):
                # running, or it ended after this event: the step reads state fresh, so this event
                # is already part of that journey (a repeat or a replay starts nothing new)
                return TriggerOutcome("joined", journey.id, instance)
            continue  # that journey ended before this event: start the next generation
        return TriggerOutcome("started", journey.id, instance, resp["executionArn"])
    raise RuntimeError(f"more than {MAX_GENERATIONS} journeys for one instance; refusing to start another")


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def _saw(sfn: Any, arn: str, event: CanonicalEvent) -> bool:
    described = sfn.describe_execution(executionArn=arn)
    if described["status"] == "RUNNING":
        return True
    # A journey that finished normally says (in Boomerang time) when it made its last decision.
    try:
        decided_at = float(json.loads(described.get("output") or "{}").get("decided_at") or 0)
    except (ValueError, AttributeError):
        decided_at = 0
    ended = decided_at or described.get("stopDate", described["startDate"]).timestamp()
    return bool(ended >= event.received_at)
