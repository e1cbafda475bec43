"""Broadcasts without an execution per recipient: send pages, one execution per send instant.

The daily run's audience task (shared/services/journeys/trigger.py `run_task`) hands each page of
the segment to `plan_page`, which groups the members by the instant their message is due (10:00
local on the day: ~40 instants worldwide), writes one send page per instant
(shared/adapters/broadcast_pages.py) and starts (or joins) that instant's execution on the journey
state machine in broadcast mode. At the instant the execution calls the step λ, which runs
`run_instant`: for every member of the instant's pages, the very step engine a journey execution
runs (`run_step`: the segment re-checked, consent, quiet hours, caps, holdout, the exactly-once
claim, fallback, send, history), paced by the shared SES token bucket
(shared/adapters/send_pace.py). Execution names, instances and triggers are the ones the
per-recipient path used, so claims, history and reports are the same records.

Where the engine's answer for a member is "wait" (quiet hours, a frequency cap, a parked send, a
later step of a multi-step broadcast), or the member's step failed, that member alone continues in
an ordinary per-recipient execution started by the trigger λ from the engine's own state (the
per-recipient path stays for exactly these). A λ near its time limit returns its cursor and the
execution's loop calls it again; replays re-run members whose claims make them send nothing twice.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.adapters.broadcast_pages import KEEP_S, BroadcastPages, broadcast_pk
from shared.adapters.channels.email import TransientSendError
from shared.adapters.send_pace import SendPace
from shared.domain.broadcasts import (
    BROADCAST_MODE,
    instant_execution_name,
    send_instant,
    shard_count,
    source_page_id,
)
from shared.domain.delivery import customer_timezone
from shared.domain.journey_decisions import execution_name
from shared.domain.journeys import Journey
from shared.platform import clock
from shared.services.journeys.context import Deps, StepInput, StepOutput
from shared.services.journeys.step import run_step

if TYPE_CHECKING:
    from shared.services.journeys.trigger import TriggerDeps

CHUNK = 50  # tokens asked for at a time: a worker never holds more than a moment's worth of sends
# Hand the rest to the execution's next loop iteration with this much λ time left: the step λ's
# 30 s limit stays (a send claim's lease must outlast any λ that holds it, tests/unit/test_claim_lease.py),
# so an invocation sends for ~20 s, 3 transitions each: ~$0.03 of Step Functions per hour of sending.
TIME_MARGIN_MS = 10_000
POLL_S = 60  # caught up with the audience task still writing pages: look again in a minute
GIVE_UP_S = 86400  # ... for at most a day past the instant (the day is over by then)
DEFER_TASK = "broadcast-defer"
THROTTLED_IN_A_ROW = 3  # members turned away by the provider in a row before the page backs off
BACKOFF_S = 30


@dataclass
class BroadcastTools:
    """What the worker needs beyond the step engine's Deps."""

    pages: BroadcastPages
    pace: SendPace
    defer: Callable[[dict[str, Any]], None]  # queues a member's own execution (the trigger λ starts it)


# ---------------------------------------------------------------------------------------------
# the daily run: a page of the segment -> send pages, one execution per instant


def run_id(started_at: float) -> str:
    """The daily run a task belongs to: its replays share it, the next day's catch-up does not."""
    return datetime.fromtimestamp(started_at, tz=UTC).strftime("%Y%m%d")


def plan_page(
    task: dict[str, Any], journey: Journey, customers: list[str], last_page: bool, t: TriggerDeps
) -> int:
    """Write one segment page's send pages and start their instants' executions; returns how many
    executions started (0 when every instant's was already running)."""
    store_id, day = task["store_id"], str(task["key"])
    started_at = float(task["started_at"])
    run = run_id(started_at)
    pk = broadcast_pk(store_id, journey.id, day, run)
    expires = int(_day_ts(day)) + KEEP_S
    store = t.stores.get(store_id)
    default_tz = store.timezone if store else "UTC"
    by_instant: dict[int, list[str]] = defaultdict(list)
    for customer in customers:
        profile = t.profiles.load_profile(store_id, customer)
        tz = customer_timezone(profile, default_tz) if profile else ZoneInfo(default_tz)
        by_instant[send_instant(journey, date.fromisoformat(day), tz)].append(customer)
    pages = BroadcastPages(t.profiles.ddb, t.profiles.table)
    page_id = source_page_id(int(task.get("part", 0)), task.get("cursor"))
    # source pages go round the shards: a large segment is sent by as many workers as SES's rate needs
    shard = int(task.get("page_no", 0)) % shard_count(t.send_rate() if t.send_rate else 1)
    started = 0
    for instant, members in sorted(by_instant.items()):
        pages.put_page(pk, instant, shard, page_id, members, expires)
        started += _start_instant(t, journey, task, run, instant, shard)
    if last_page:
        pages.mark_done(pk, expires)
    return started


def _day_ts(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC).timestamp()


def _start_instant(
    t: TriggerDeps, journey: Journey, task: dict[str, Any], run: str, instant: int, shard: int
) -> int:
    store_id, day = task["store_id"], str(task["key"])
    state = {
        "mode": BROADCAST_MODE,
        "store_id": store_id,
        "journey": journey.id,
        "day": day,
        "run": run,
        "instant": instant,
        "shard": shard,
        # the per-recipient path's trigger: the same send records (claims) and history keys
        "trigger": f"{task['audience']}:{day}",
        "started_at": float(task["started_at"]),
        "wait_seconds": max(0, math.ceil(instant - clock.now_ts())),  # the Wait state's SecondsPath
        "after": None,
        "offset": 0,
        "counts": {},
    }
    name = instant_execution_name(store_id, journey.id, day, run, instant, shard)
    try:
        t.sfn.start_execution(stateMachineArn=t.state_machine_arn, name=name, input=json.dumps(state))
    except t.sfn.exceptions.ExecutionAlreadyExists:
        return 0  # this instant's execution has it: the page just written is read by its loop
    return 1


def start_deferred(state: dict[str, Any], t: TriggerDeps) -> str:
    """A member the worker could not finish: their own execution, named as the per-recipient path
    names it, from the engine's state (a repeat joins)."""
    s = StepInput.model_validate(state)
    name = execution_name(s.store_id, s.journey, s.instance, s.generation)
    try:
        t.sfn.start_execution(
            stateMachineArn=t.state_machine_arn, name=name, input=json.dumps(s.model_dump(mode="json"))
        )
    except t.sfn.exceptions.ExecutionAlreadyExists:
        return "joined"
    return "started"


# ---------------------------------------------------------------------------------------------
# the worker: one instant's pages through the step engine, paced


def run_instant(
    state: dict[str, Any],
    deps: Deps,
    tools: BroadcastTools,
    remaining_ms: Callable[[], int],
    observe: Callable[[StepOutput], None] = lambda out: None,
) -> dict[str, Any]:
    """Send the instant's pages from the cursor on; returns the next loop's state (action wait with
    wait_seconds 0 to continue, POLL_S to look for pages still being written, exit when done).
    `observe` sees each member's step result (metrics, and the emulator's outbox)."""
    pk = broadcast_pk(state["store_id"], state["journey"], state["day"], state["run"])
    after, offset = state.get("after"), int(state.get("offset") or 0)
    counts: Counter[str] = Counter(state.get("counts") or {})
    tokens = 0  # sends paid for in the shared bucket and not yet made
    throttled = 0  # members in a row the provider turned away for now
    while True:
        page = tools.pages.next_page(pk, int(state["instant"]), int(state.get("shard", 0)), after)
        if page is None:
            if tools.pages.done(pk):
                return _out(state, after, 0, counts, "exit", "broadcast instant sent", 0)
            if clock.now_ts() > int(state["instant"]) + GIVE_UP_S:
                # the audience task never finished (its message went to the DLQ): stop polling
                return _out(state, after, 0, counts, "exit", "audience incomplete: gave up waiting", 0)
            return _out(state, after, 0, counts, "wait", "waiting for the audience's next pages", POLL_S)
        sk, customers = page
        while offset < len(customers):
            if remaining_ms() < TIME_MARGIN_MS:
                return _out(state, after, offset, counts, "wait", "continuing in the next invocation", 0)
            if tokens == 0:
                tokens = tools.pace.take(min(CHUNK, len(customers) - offset))
            outcome = _one(state, customers[offset], deps, tools, observe)
            counts[outcome] += 1
            offset += 1
            tokens -= 1
            throttled = throttled + 1 if outcome == "throttled" else 0
            if throttled >= THROTTLED_IN_A_ROW:
                # the provider pushes back despite the pacing: the execution's Wait backs the page off
                return _out(
                    state, after, offset, counts, "wait", "provider throttling: backing off", BACKOFF_S
                )
        after, offset = sk, 0
        counts["pages"] += 1


def _one(
    state: dict[str, Any],
    customer: str,
    deps: Deps,
    tools: BroadcastTools,
    observe: Callable[[StepOutput], None],
) -> str:
    """One member through the step engine, as their execution's first step would run."""
    day = state["day"]
    step_in = StepInput(
        store_id=state["store_id"],
        journey=state["journey"],
        instance=f"{customer}@{day}",
        customer_id=customer,
        started_at=float(state["started_at"]),
        trigger=state["trigger"],
        occasion=day,
    )
    if deps.journeys.state(step_in.store_id, step_in.journey, step_in.instance) is not None:
        # entered already: a replayed page, the day's catch-up run, or their own execution has them
        # (the per-recipient path's name collision "joined" them the same way)
        return "joined"
    try:
        out: StepOutput = run_step(step_in, deps)
    except TransientSendError:
        # the claim was given back; entered already, a replay would join them: their own execution
        # retries the send with backoff
        tools.defer({"task": DEFER_TASK, "state": step_in.model_dump(mode="json")})
        return "throttled"
    except Exception:  # noqa: BLE001 - this member alone retries in an execution of their own
        tools.defer({"task": DEFER_TASK, "state": step_in.model_dump(mode="json")})
        return "failed"
    observe(out)
    if out.action == "wait":
        tools.defer(
            {
                "task": DEFER_TASK,
                "state": out.model_dump(mode="json", exclude={"action", "reason", "events", "decided_at"}),
            }
        )
        return "deferred"
    return "sent" if any(e["type"] == "sent" for e in out.events) else "not sent"


def _out(
    state: dict[str, Any],
    after: str | None,
    offset: int,
    counts: Counter[str],
    action: str,
    reason: str,
    wait_s: int,
) -> dict[str, Any]:
    return {
        **state,
        "after": after,
        "offset": offset,
        "counts": dict(counts),
        "action": action,
        "reason": reason,
        "wait_seconds": math.ceil(clock.poll_interval(wait_s)) if wait_s else 0,
        "events": [],  # the execution's payload stays small: the history is in DynamoDB
    }
