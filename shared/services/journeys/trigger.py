"""Starts journey executions: at most one per journey instance, however often a trigger repeats.

Three ways in, all ending in `_start` (a deterministically named execution, so a repeat joins):
- a storefront event matching a journey's trigger (its customer, cart or order enters);
- a store-level event fanned out to an audience (everyone subscribed to a SKU back in stock);
- the daily schedule, fanned out per store and journey to an index (birthdays, anniversaries, at risk);
  the same run queues each store's segments tasks (shared/adapters/segment_store.py).
Audiences are read a page at a time; the next page is queued as a task, so no invocation runs long.
A broadcast's segment pages start no execution per member: shared/services/journeys/broadcast.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.index_pages import IndexPages
from shared.adapters.journey_catalog import JourneyCatalog
from shared.adapters.journey_store import JourneyStore
from shared.adapters.privacy_store import TombstoneRegister
from shared.adapters.profile_store import ProfileStore
from shared.adapters.segment_store import daily_tasks as segments_daily_tasks
from shared.adapters.store_directory import StoreDirectory
from shared.domain.events import CONSENT_UPDATED, DOUBLE_OPT_IN_SOURCE, CanonicalEvent
from shared.domain.journey_decisions import execution_name, matches
from shared.domain.journeys import EMAIL_CONFIRMATION, Journey, OncePer
from shared.platform import clock, indexes
from shared.platform.keys import anon_customer_id, user_customer_id
from shared.services.journeys.context import StepInput

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

PAGE = 100  # audience members started per task (StartExecution refills at 300/s in big regions)
BROADCAST_PAGE = 500  # a broadcast's members per task: no StartExecution each, only a profile read
SEGMENT_AUDIENCE = "segment:"  # audience of a broadcast: "segment:<id>", read from the by-segment index
ORDER_CONTEXT_PRODUCTS = 10  # an execution's input stays small: items beyond these are not shown
MAX_GENERATIONS = 50  # journeys per instance within Step Functions' 90-day name retention


@dataclass
class TriggerOutcome:
    status: str  # started | joined | ignored | queued
    journey: str | None = None
    instance: str | None = None
    execution_arn: str | None = None
    reason: str = ""


@dataclass
class TriggerDeps:
    sfn: SFNClient
    state_machine_arn: str
    stores: StoreDirectory
    catalog: JourneyCatalog
    journeys: JourneyStore
    profiles: ProfileStore
    audiences: IndexPages  # the sparse indexes an audience is read from, a page per task
    tasks: Callable[[dict[str, Any]], None]  # queues a follow-up task (on the journey queue)
    send_rate: Callable[[], int] | None = None  # SES MaxSendRate: how many workers a broadcast instant gets
    started: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# storefront events


def start_for(event: CanonicalEvent, t: TriggerDeps) -> list[TriggerOutcome]:
    """Start (or join) every journey this event triggers (none for an erased customer's event)."""
    outcomes: list[TriggerOutcome] = []
    if _may_start(event, t) and TombstoneRegister(t.profiles.ddb, t.profiles.table).drops(event):
        return [TriggerOutcome("ignored", reason="customer erased")]
    if _gives_email_consent(event):
        store = t.stores.get(event.store_id)
        if store is not None and store.double_opt_in_email:
            outcomes.append(
                _start(
                    event.store_id,
                    t,
                    EMAIL_CONFIRMATION,
                    _customer(event, t),
                    event.received_at,
                    event.message_id,
                )
            )
    if event.type == "track":
        for journey in t.catalog.journeys(event.store_id):
            if not matches(journey.trigger, event.event, event.properties):
                continue
            if journey.trigger.fan_out:
                outcomes.append(_fan_out_event(journey, event, t))
            else:
                outcomes.append(_enter(journey, event, t))
    return outcomes or [TriggerOutcome("ignored", reason="no journey starts on this event")]


def _may_start(event: CanonicalEvent, t: TriggerDeps) -> bool:
    """Whether any journey could start on the event: only then is the erasure register read."""
    if _gives_email_consent(event):
        return True
    return event.type == "track" and any(
        matches(j.trigger, event.event, event.properties) for j in t.catalog.journeys(event.store_id)
    )


def _customer(event: CanonicalEvent, t: TriggerDeps) -> str:
    if event.user_id:
        return user_customer_id(event.user_id)
    anon = str(event.anonymous_id)
    return t.profiles.alias_target(event.store_id, anon) or anon_customer_id(anon)


def _enter(journey: Journey, event: CanonicalEvent, t: TriggerDeps) -> TriggerOutcome:
    customer = _customer(event, t)
    if journey.entry.known and customer.startswith("a:"):
        # an anonymous visitor (never linked to a known customer) cannot qualify: no execution to pay for
        return TriggerOutcome("ignored", journey.id, reason="an anonymous visitor")
    context: dict[str, Any] = {}
    if journey.per == "cart":
        if not event.cart_id:
            return TriggerOutcome("ignored", journey.id, reason="event has no cart_id")
        instance = event.cart_id
    elif journey.per == "order":
        order_id = event.properties.get("order_id")
        if not order_id:
            return TriggerOutcome("ignored", journey.id, reason="event has no order_id")
        instance = str(order_id)
        context = _order_context(event)
    elif journey.per == "shipment":
        order_id, shipment_id = event.properties.get("order_id"), event.properties.get("shipment_id")
        if not order_id:
            return TriggerOutcome("ignored", journey.id, reason="event has no order_id")
        instance = f"{order_id}~{shipment_id or 'all'}"
        context = {**_order_context(event), "shipment": _shipment_context(event)}
    else:
        instance = customer
    if journey.re_entry != "every-time":
        gap = journey.re_entry.once_per_days * 86400 if isinstance(journey.re_entry, OncePer) else None
        if not t.journeys.claim_entry(
            event.store_id, journey.id, customer, event.message_id, event.received_at, gap
        ):
            return TriggerOutcome("ignored", journey.id, instance, reason="re-entry policy")
    if journey.trigger.event in ("Loyalty Tier Reached",):
        context = {
            "tier": event.properties.get("tier"),
            "previous_tier": event.properties.get("previous_tier"),
        }
    return _start(
        event.store_id,
        t,
        journey,
        instance,
        event.received_at,
        event.message_id,
        customer=customer,
        context=context,
        # one journey per order (or shipment), however often it is re-sent
        generations=journey.per not in ("order", "shipment"),
    )


def _shipment_context(event: CanonicalEvent) -> dict[str, Any]:
    p = event.properties
    keys = ("carrier", "tracking_number", "tracking_url", "partner_id", "shipment_id")
    status = "delivered" if event.event == "Order Delivered" else "shipped"
    return {"status": status, **{k: (str(p[k]) if p.get(k) is not None else None) for k in keys}}


def _order_context(event: CanonicalEvent) -> dict[str, Any]:
    p = event.properties
    products = [
        {
            k: prod.get(k)
            for k in ("product_id", "sku", "name", "price", "quantity", "currency", "image_url", "url")
        }
        for prod in (p.get("products") or [])[:ORDER_CONTEXT_PRODUCTS]
        if isinstance(prod, dict)
    ]
    return {
        "order_id": str(p.get("order_id")),
        "total": p.get("total", p.get("revenue")),
        "currency": p.get("currency"),
        "products": products,
    }


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


def _first_wait(journey: Journey, started_at: float) -> int:
    """Sleep straight to the first step when its time is known here; else let the step work it out."""
    step = journey.steps[0]
    if step.at is not None or journey.trigger.event is None:
        return 0
    after = min([step.after, *(v.after for v in step.variants if v.after is not None)])
    return max(0, math.ceil(started_at + after - clock.now_ts()))


def _start(
    store_id: str,
    t: TriggerDeps,
    journey: Journey,
    instance: str,
    started_at: float,
    trigger: str,
    *,
    customer: str | None = None,
    context: dict[str, Any] | None = None,
    occasion: str | None = None,
    generations: bool = True,
) -> TriggerOutcome:
    """`generations`: may an instance whose journey ended enter again (a cart shopped again)? An
    occasion (a birthday on a given date) never does: each daily run that finds it joins."""
    first_wait = _first_wait(journey, started_at)
    for generation in range(MAX_GENERATIONS if generations else 1):
        state = StepInput(
            store_id=store_id,
            journey=journey.id,
            instance=instance,
            customer_id=customer,
            generation=generation,
            step=0,
            wait_seconds=first_wait,
            started_at=started_at,
            trigger=trigger,
            occasion=occasion,
            context=context or {},
        )
        name = execution_name(store_id, journey.id, instance, generation)
        try:
            resp = t.sfn.start_execution(
                stateMachineArn=t.state_machine_arn,
                name=name,
                # step_id and parked_at are the step's own bookkeeping: a new execution starts at `step`
                input=json.dumps(state.model_dump(exclude={"step_id", "parked_at"})),
            )
        except t.sfn.exceptions.ExecutionAlreadyExists:
            if not generations or _saw(t.sfn, execution_arn(t.state_machine_arn, name), started_at):
                # running, or it ended after this event: the step reads state fresh, so this event
                # is already part of that journey (a repeat or a replay starts nothing new)
                return TriggerOutcome("joined", journey.id, instance)
            continue  # that journey ended before this event: start the next generation
        if journey.per == "cart":  # journeys may yield to this one on the same cart: say so now
            t.journeys.note_started(store_id, journey.id, instance, generation, started_at)
        return TriggerOutcome("started", journey.id, instance, resp["executionArn"])
    raise RuntimeError(f"more than {MAX_GENERATIONS} journeys for one instance; refusing to start another")


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def _saw(sfn: SFNClient, arn: str, received_at: float) -> bool:
    described = sfn.describe_execution(executionArn=arn)
    if described["status"] == "RUNNING":
        return True
    # A journey that finished normally says (in Boomerang time) when it made its last decision.
    try:
        decided_at = float(json.loads(described.get("output") or "{}").get("decided_at") or 0)
    except (ValueError, AttributeError):
        decided_at = 0
    ended = decided_at or described.get("stopDate", described["startDate"]).timestamp()
    return bool(ended >= received_at)


# ---------------------------------------------------------------------------------------------
# audiences: fanned-out events and the daily schedule


def _fan_out_event(journey: Journey, event: CanonicalEvent, t: TriggerDeps) -> TriggerOutcome:
    sku = event.properties.get("sku") or event.properties.get("product_id")
    if not sku:
        return TriggerOutcome("ignored", journey.id, reason="Back In Stock needs a sku")
    task = {
        "task": "audience",
        "store_id": event.store_id,
        "journey": journey.id,
        "audience": "back-in-stock",
        "key": str(sku),
        "started_at": event.received_at,
        "trigger": event.message_id,
        "product": {
            k: event.properties.get(k)
            for k in ("sku", "product_id", "name", "price", "currency", "image_url", "url")
        },
    }
    return run_task(task, t)


def schedule_tasks(now: float, t: TriggerDeps) -> list[dict[str, Any]]:
    """The daily run (12:00 UTC): one audience task per store and scheduled journey.

    Occasions are processed for tomorrow (so 10:00 local is still ahead even at UTC+14) and today
    (catching up a missed run); at-risk days for today and yesterday. Execution names make the
    overlap free: a customer already started is joined, never started twice.
    """
    today = datetime.fromtimestamp(now, tz=UTC).date()
    tasks: list[dict[str, Any]] = []
    store_ids = t.stores.store_ids()
    for store_id in store_ids:
        for journey in t.catalog.journeys(store_id):
            audience, days = _daily_audience(journey, today)
            tasks += [
                {
                    "task": "audience",
                    "store_id": store_id,
                    "journey": journey.id,
                    "audience": audience,
                    "key": day.isoformat(),
                    "started_at": now,
                }
                for day in days
            ]
    # then each store's segments run (RFM edges, time-based segments: shared/adapters/segment_store.py), queued
    # behind the audiences, whose 10:00-local sends are time-critical
    for store_id in store_ids:
        tasks += segments_daily_tasks(store_id, now)
    return tasks


def _daily_audience(journey: Journey, today: date) -> tuple[str, list[date]]:
    """The index a journey's daily run reads, and for which days (none: not a daily journey)."""
    one_day = timedelta(days=1)
    broadcast, schedule = journey.trigger.broadcast, journey.trigger.schedule
    if broadcast is not None:
        # the day before (10:00 local is ahead everywhere) and the day (a missed run)
        days = [broadcast.day] if today <= broadcast.day <= today + one_day else []
        return f"{SEGMENT_AUDIENCE}{broadcast.segment}", days
    if schedule == "at-risk":
        return schedule, [today - one_day, today]
    if schedule is not None:
        return schedule, [today, today + one_day]
    return "", []


def run_task(task: dict[str, Any], t: TriggerDeps) -> TriggerOutcome:
    """Start one page of an audience; queue the rest as the next task."""
    store_id, journey_id, audience, key_ = task["store_id"], task["journey"], task["audience"], task["key"]
    journey = t.catalog.get(store_id, journey_id)
    if journey is None:
        return TriggerOutcome("ignored", journey_id, reason="journey no longer exists")
    partitions = _partitions(store_id, audience, key_)
    part = int(task.get("part", 0))
    if part >= len(partitions):
        return TriggerOutcome("ignored", journey_id, reason="audience done")
    index, value = partitions[part]
    broadcast = journey.trigger.broadcast is not None and audience.startswith(SEGMENT_AUDIENCE)
    items, last = t.audiences.page(index, value, BROADCAST_PAGE if broadcast else PAGE, task.get("cursor"))
    started = 0
    if broadcast:
        # send pages and one execution per send instant, not one per recipient (broadcast.py)
        from shared.services.journeys.broadcast import plan_page

        final = last is None and part + 1 >= len(partitions)
        started = plan_page(task, journey, [str(i["customer_id"]) for i in items], final, t)
        items = []
    for item in items:
        customer = str(item["customer_id"])
        if audience == "back-in-stock":
            outcome = _start(
                store_id,
                t,
                journey,
                f"{customer}|{key_}",
                float(task["started_at"]),
                str(task["trigger"]),
                customer=customer,
                context={"product": task.get("product") or {"sku": key_}},
            )
        else:
            occasion = key_
            outcome = _start(
                store_id,
                t,
                journey,
                f"{customer}@{occasion}",
                float(task["started_at"]),
                f"{audience}:{occasion}",
                customer=customer,
                occasion=occasion,
                generations=False,
            )
        started += outcome.status == "started"
    follow: dict[str, Any] | None = None
    if last is not None:
        follow = {**task, "cursor": last, "page_no": int(task.get("page_no", 0)) + 1}
    elif part + 1 < len(partitions):
        follow = {**task, "part": part + 1, "cursor": None}
    if follow is not None:
        t.tasks(follow)
    status = "queued" if follow else ("started" if started else "ignored")
    return TriggerOutcome(status, journey_id, reason=f"{started} started from {audience} {key_}")


def _partitions(store_id: str, audience: str, key_: str) -> list[tuple[indexes.IndexSpec, str]]:
    if audience == "back-in-stock":
        return [(indexes.BY_SKU, indexes.back_in_stock_key(store_id, key_))]
    if audience == "at-risk":
        return [(indexes.AT_RISK, indexes.at_risk_key(store_id, key_))]
    if audience.startswith(SEGMENT_AUDIENCE):
        segment = audience.removeprefix(SEGMENT_AUDIENCE)
        return [(indexes.BY_SEGMENT, indexes.segment_key(store_id, segment))]
    day = date.fromisoformat(key_)
    month_days = [day.strftime("%m-%d")]
    if month_days == ["02-28"] and not _leap(day.year):
        month_days.append("02-29")  # born on 29 February: celebrated on the 28th in common years
    spec, keyfn = (
        (indexes.BY_BIRTHDAY, indexes.birthday_key)
        if audience == "birthday"
        else (indexes.BY_ANNIVERSARY, indexes.anniversary_key)
    )
    return [(spec, keyfn(store_id, md)) for md in month_days]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
