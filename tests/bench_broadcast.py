"""`python -m tests.bench broadcast`: a broadcast's duration and cost per 1M recipients (issue 17.3).

1. A measured run on moto in-process: N first-time buyers in three time zones; the daily run plans
   the send pages (trigger λ) and each instant's execution runs the step λ in broadcast mode. Every
   AWS call is counted by operation, DynamoDB request units from the items' sizes, and the step
   λ's log bytes captured from its stdout.
2. A simulated clock: 1M recipients due at one instant (the worst case: a one-country store) sent
   at SES MaxSendRate 14/s, 100/s and 1,000/s by the shard workers, with the real pacing code
   (shared/adapters/send_pace.py over an in-memory bucket) and each member's λ time modelled from
   the measured calls at AWS in-region latencies (below). The λ's 30 s limit hands over through
   the execution's loop, 3 transitions per invocation.
3. The cost per 1M recipients by service at tests/cost_rules.py's prices (the one price table, the
   deployed arm64 Lambda), beside SES's own $100 and the per-recipient executions the broadcast
   replaced (7 transitions, ~9.5 KB of execution logs, ~12 WRU each).
A benchmark: it asserts nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from typing import Any

from infra.description import FUNCTIONS_BY_ID, LAMBDA_ARCHITECTURE
from tests.cost_rules import PRICES

# the one price table (tests/cost_rules.py, what `bench cost` uses), at the deployed architecture
TRANSITION = PRICES["sfn_transition"]
LAMBDA_GB_S = PRICES[f"lambda_gb_s_{LAMBDA_ARCHITECTURE}"]
LAMBDA_REQUEST = PRICES["lambda_request"]
WRU = PRICES["ddb_wru"]
RRU = PRICES["ddb_rru"]  # a strongly consistent read per 4 KB; the counters below halve eventual ones
LOG_GB = PRICES["logs_gb"]
SQS_REQUEST = PRICES["sqs_request"]
SES_EMAIL = PRICES["ses_email"]
# AWS in-region round trips a worker waits for, per call (the model's assumption, not measured here)
LATENCY_S = {"dynamodb": 0.006, "sesv2": 0.040, "ses": 0.040, "sqs": 0.010, "s3": 0.015}
STEP_MEMORY_GB = FUNCTIONS_BY_ID["journey_step"].memory_mb / 1024
TRIGGER_MEMORY_GB = FUNCTIONS_BY_ID["journey_trigger"].memory_mb / 1024
PER_EXECUTION_BEFORE = {"transitions": 7, "log_kb": 9.5, "wru": 12}


class _Calls:
    """Counts every AWS call (service, operation) and DynamoDB request units from item sizes."""

    def __init__(self) -> None:
        self.ops: Counter[tuple[str, str]] = Counter()
        self.wru = 0.0
        self.rru = 0.0

    def __enter__(self) -> _Calls:
        import botocore.client

        self._orig = botocore.client.BaseClient._make_api_call
        calls = self

        def counted(client: Any, op: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            calls.ops[(service, op)] += 1
            result = calls._orig(client, op, params)
            if service == "dynamodb":
                calls._units(op, params, result)
            return result

        botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        import botocore.client

        botocore.client.BaseClient._make_api_call = self._orig  # type: ignore[method-assign]

    def _units(self, op: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        def kb(x: Any) -> float:
            return len(json.dumps(x)) / 1024

        if op in ("PutItem",):
            self.wru += max(1, math.ceil(kb(params["Item"])))
        elif op in ("UpdateItem", "DeleteItem"):
            self.wru += 1  # the small records a step updates (claims, counters, markers); 1 KB each
        elif op == "TransactWriteItems":
            self.wru += 2 * sum(max(1, math.ceil(kb(i))) for i in params["TransactItems"])
        elif op == "BatchWriteItem":
            self.wru += sum(max(1, math.ceil(kb(r))) for rs in params["RequestItems"].values() for r in rs)
        elif op in ("GetItem", "Query"):
            items = [result["Item"]] if "Item" in result else result.get("Items", [])
            units = max(1, math.ceil(sum(kb(i) for i in items) / 4))
            self.rru += units * (1 if params.get("ConsistentRead") else 0.5)
        elif op == "BatchGetItem":
            items = [i for rs in result.get("Responses", {}).values() for i in rs]
            self.rru += max(1, math.ceil(sum(kb(i) for i in items) / 4)) * 0.5


class _Stdout:
    """The step λ's log lines (Powertools writes them to fd 1)."""

    def __enter__(self) -> _Stdout:
        sys.stdout.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(1)
        os.dup2(self._file.fileno(), 1)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stdout.flush()
        os.dup2(self._saved, 1)
        os.close(self._saved)
        self._file.seek(0)
        self.bytes = len(self._file.read())


def measured(n: int = 60) -> dict[str, Any]:
    from moto import mock_aws

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    from functions.journey_step.handler import handler as step_handler
    from shared.platform import clock
    from shared.platform.aws import client
    from shared.services import wiring
    from shared.services.journeys import trigger as journey_trigger
    from tests.aws_fixtures import FAKE_CREDENTIALS, FixedClock, LambdaContext, canonical, create_world

    sale = (
        "name: Spring flash sale\nkind: marketing\ncategory: offers\n"
        "trigger:\n  broadcast: {segment: first-time-buyers, day: 2026-03-03}\n"
        'steps:\n  - id: announce\n    at: "10:00"\n    template: flash-sale\n'
        "    offer: {code: SPRING25, description: 25% off everything}\n"
    )
    t0 = 1_772_366_400.0  # 2026-03-01 12:00 UTC
    zones = ("Europe/Warsaw", "America/New_York", "Asia/Tokyo")
    os.environ.update(FAKE_CREDENTIALS)
    fixed = FixedClock(t0 - 10 * 86400)
    clock.set_clock(fixed)
    with mock_aws():
        world = create_world()
        os.environ.update(world.env())
        wiring.reset()
        from shared.platform.settings import settings

        settings.cache_clear()
        for i in range(n):
            calls = [
                {"type": "identify", "userId": f"b{i}", "messageId": f"id-{i}",
                 "traits": {"email": f"b{i}@example.com", "consent": {"email": "subscribed"},
                            "timezone": zones[i % len(zones)]}},
                {"type": "track", "event": "Order Completed", "userId": f"b{i}", "messageId": f"o-{i}",
                 "properties": {"order_id": f"o-{i}", "total": 30}},
            ]  # fmt: skip
            for event in canonical(calls, fixed.now + i):
                world.profiles().apply(event)
        client("s3").put_object(
            Bucket=world.bucket, Key="journeys/shop-1/spring-sale.yaml", Body=sale.encode()
        )
        fixed.now = t0 + 86400
        queued: list[dict[str, Any]] = []
        deps = wiring.trigger_deps()
        deps.tasks = queued.append
        tasks = [
            t for t in journey_trigger.schedule_tasks(fixed.now, deps) if t.get("journey") == "spring-sale"
        ]
        with _Calls() as plan:
            t_plan = time.perf_counter()
            while tasks:
                journey_trigger.run_task(tasks.pop(), deps)
                tasks += queued
                queued.clear()
            t_plan = time.perf_counter() - t_plan
        sfn = client("stepfunctions")
        states = [
            json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
            for e in world.executions()
        ]
        states = [s for s in states if s.get("mode") == "broadcast"]
        wiring.broadcast_tools().pace.rate = lambda: 1000
        ctx = LambdaContext()
        invocations = 0
        sent = 0
        with _Calls() as work, _Stdout() as logs:
            t_work = time.perf_counter()
            for state in states:
                fixed.now = state["instant"]
                while True:
                    state = step_handler(state, ctx)
                    invocations += 1
                    if state["action"] != "wait":
                        sent += state["counts"].get("sent", 0)
                        break
            t_work = time.perf_counter() - t_work
    clock.reset_clock()
    return {
        "n": n,
        "instants": len(states),
        "invocations": invocations,
        "plan_ops": plan.ops,
        "plan_wru": plan.wru,
        "plan_rru": plan.rru,
        "plan_s": t_plan,
        "work_ops": work.ops,
        "work_wru": work.wru,
        "work_rru": work.rru,
        "work_s": t_work,
        "log_bytes": logs.bytes,
        "sent": sent,
    }


class _Bucket:
    """DynamoDB's conditional ADD on one counter item per second, in memory (for the simulation)."""

    class exceptions:  # noqa: N801 - the boto3 client's shape
        class ConditionalCheckFailedException(Exception):
            pass

    def __init__(self) -> None:
        self.taken: Counter[str] = Counter()
        self.calls = 0

    def update_item(self, **kw: Any) -> None:
        self.calls += 1
        key = kw["Key"]["sk"]["S"]
        n = int(kw["ExpressionAttributeValues"][":n"]["N"])
        room = int(kw["ExpressionAttributeValues"][":room"]["N"])
        if key in self.taken and self.taken[key] > room:
            raise self.exceptions.ConditionalCheckFailedException()
        self.taken[key] += n


def simulate(recipients: int, rate: int, member_s: float, timeout_s: int = 30) -> dict[str, float]:
    """The shard workers of one instant on a simulated clock, with the real SendPace."""
    from shared.adapters.send_pace import SendPace
    from shared.domain.broadcasts import shard_count
    from shared.platform import clock
    from shared.services.journeys.broadcast import CHUNK, TIME_MARGIN_MS

    shards = shard_count(rate)
    sim = {"now": 0.0}
    clock.set_clock(lambda: sim["now"])
    bucket = _Bucket()

    def sleep(s: float) -> None:
        sim["now"] += s

    left = [recipients // shards + (1 if i < recipients % shards else 0) for i in range(shards)]
    at = [0.0] * shards  # each worker's own time
    busy = [0.0] * shards
    invocations = [1] * shards
    since = [0.0] * shards  # time into the current invocation
    pace = SendPace(bucket, "t", lambda: rate, sleep=sleep)
    budget = timeout_s - TIME_MARGIN_MS / 1000
    while any(left):
        w = min((i for i in range(shards) if left[i]), key=lambda i: at[i])
        sim["now"] = at[w]
        n = min(pace.take(min(CHUNK, left[w])), left[w])
        waited = sim["now"] - at[w]
        work = n * member_s
        at[w] = sim["now"] + work
        busy[w] += waited + work
        since[w] += waited + work
        if since[w] > budget:  # handed over to the next loop iteration
            invocations[w] += math.floor(since[w] / budget)
            since[w] %= budget
        left[w] -= n
    clock.reset_clock()
    return {
        "shards": shards,
        "duration_s": max(at),
        "lambda_s": sum(busy),
        "invocations": sum(invocations),
        "bucket_calls": bucket.calls,
    }


OTHER_INSTANTS = 40  # a worldwide audience's other send instants (10:00 local): a short run each


def execution_work(recipients: int, rate: int, member_s: float) -> dict[str, float]:
    """The per-execution work of a broadcast of `recipients` due at one instant (the worst case):
    the instant's executions' transitions (3 an invocation of the loop, start and end a shard, 4 for
    each other instant's short run) and the step λ's invocations, on the simulated clock."""
    s = simulate(recipients, rate, member_s)
    transitions = 3 * s["invocations"] + 2 * s["shards"] + OTHER_INSTANTS * 4
    return {**s, "transitions": transitions}


def print_broadcast() -> None:
    m = measured()
    n = m["n"]
    per = {k: v / n for k, v in m["work_ops"].items()}
    plan_per = {k: v / n for k, v in m["plan_ops"].items()}
    member_s = sum(v * LATENCY_S.get(k[0], 0.01) for k, v in per.items())
    plan_s = sum(v * LATENCY_S.get(k[0], 0.01) for k, v in plan_per.items())
    print(f"Broadcast, measured on moto: {n} members, {m['instants']} instants, {m['sent']} sent, "
          f"{m['invocations']} step invocations")  # fmt: skip
    print(f"  worker per member: {sum(per.values()):.1f} AWS calls, {m['work_wru'] / n:.2f} WRU, "
          f"{m['work_rru'] / n:.2f} RRU, {m['log_bytes'] / n:.0f} log bytes; moto wall {m['work_s'] / n * 1000:.0f} ms")  # fmt: skip
    for (svc, op), v in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"    {svc}:{op:<22} {v:6.2f}")
    print(f"  planning per member (trigger λ): {sum(plan_per.values()):.2f} AWS calls, "
          f"{m['plan_wru'] / n:.3f} WRU, {m['plan_rru'] / n:.2f} RRU")  # fmt: skip
    print(
        f"  modelled λ time per member at AWS latencies: worker {member_s * 1000:.0f} ms, planning {plan_s * 1000:.1f} ms"
    )
    million = 1_000_000
    print("\n1M recipients at one instant (simulated clock, real pacing code):")
    print(f"{'MaxSendRate':>12} {'shards':>7} {'duration':>10} {'transitions':>12} {'λ GB-s':>9} "
          f"{'$ SFN':>7} {'$ λ':>7} {'$ DDB':>7} {'$ logs':>7} {'$ total':>8} {'vs SES $100':>11}")  # fmt: skip
    for rate in (14, 100, 1000):
        s = execution_work(million, rate, member_s)
        transitions = s["transitions"]
        gb_s = s["lambda_s"] * STEP_MEMORY_GB + million * plan_s * TRIGGER_MEMORY_GB
        sfn = transitions * TRANSITION
        lam = gb_s * LAMBDA_GB_S + (s["invocations"] + million / 500) * LAMBDA_REQUEST
        wru = (m["work_wru"] + m["plan_wru"]) / n * million + s["bucket_calls"]
        rru = (m["work_rru"] + m["plan_rru"]) / n * million
        ddb = wru * WRU + rru * RRU
        logs = m["log_bytes"] / n * million / 1e9 * LOG_GB
        total = sfn + lam + ddb + logs
        hours = s["duration_s"] / 3600
        print(f"{rate:>10}/s {s['shards']:>7} {hours:>8.2f} h {transitions:>12,.0f} {gb_s:>9,.0f} "
              f"{sfn:>7.2f} {lam:>7.2f} {ddb:>7.2f} {logs:>7.2f} {total:>8.2f} {total / 100:>10.0%}")  # fmt: skip
    b = PER_EXECUTION_BEFORE
    before = million * (b["transitions"] * TRANSITION + b["log_kb"] * 1024 / 1e9 * LOG_GB + b["wru"] * WRU)
    print(f"\nBefore (one execution per recipient): ${before:,.0f} per 1M recipients "
          f"({b['transitions']} transitions, {b['log_kb']} KB execution logs, {b['wru']} WRU each), "
          f"beside SES's ${million * SES_EMAIL:,.0f}")  # fmt: skip


if __name__ == "__main__":
    print_broadcast()
