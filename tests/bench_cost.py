"""`python -m tests.bench cost`: what Boomerang costs on AWS, measured, beside the floor for the same work.

The real handlers run on the local emulator (moto in-process, Step Functions in moto's interpreter).
Every AWS call they make is metered where it is made (botocore), the DynamoDB items each write
touches are read from moto's backend before and after it, the log lines they emit at the deployed
level are counted in bytes, and journeys' transitions and execution-log bytes come from the real
execution histories. tests/cost_rules.py turns that into AWS's billing units and list prices.

What is measured and what is a stated assumption:
- measured: calls, item sizes (so WRU/RRU), log bytes, handler time (on moto: its calls are local
  HTTP round trips, much like DynamoDB's few ms), transitions, messages sent;
- assumed: SQS consumers run full batches (the queue's batch size) under load, so one invocation,
  its once-an-invocation log lines (metrics blob, the batch's line) and one receive + one delete
  request are shared by that many messages; the API's access-log line is its deployed format
  (infra/access_logs.py) rendered with the request's own method, route, status and response
  length; an EventBridge rule's delivery is one SQS SendMessage per message; Lambda platform log
  lines per invocation (cost_rules).
A report, never an assertion: each goal of issue 17 gets PASS or MISS.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.cost_rules import (
    LAMBDA_PLATFORM_LOG_BYTES,
    PRICES,
    SMS_PRICES,
    Index,
    execution_log_bytes,
    index_write_units,
    item_size,
    read_units,
    transitions,
    write_units,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIX = {
    "Product Viewed": 0.50,
    "Product Added": 0.25,
    "identify": 0.10,
    "Checkout Started": 0.10,
    "Order Completed": 0.05,
}
BACKEND_BATCH = 10  # a server SDK's calls per request
GOALS = {"events": 1.5, "broadcast_overhead": 0.25, "transitions_per_step": 2}


@dataclass
class Usage:
    """What one scenario's work used, in AWS's billing units."""

    invocations: Counter[str] = field(default_factory=Counter)  # function id -> invocations
    gb_s: float = 0.0
    log_bytes: float = 0
    calls: Counter[str] = field(default_factory=Counter)  # "service.Operation" -> count
    wru: float = 0.0
    rru: float = 0.0
    put_events_entries: int = 0
    transitions: int = 0
    sfn_log_bytes: int = 0  # at the configured level
    sfn_log_bytes_all: int = 0  # what ALL would write
    emails: int = 0
    sms: int = 0
    pushes: int = 0
    sqs_shares: float = 0.0  # consumers' receive + delete requests, shared by a batch
    batched_invocations: float = 0.0  # consumers' invocations, shared by a batch
    # API kind -> bytes of the access-log lines its stage would write for the requests made
    access_log_bytes: Counter[str] = field(default_factory=Counter)

    def subtract(self, other: Usage) -> None:
        """Take out `other`'s work (a baseline measured apart)."""
        self.invocations.subtract(other.invocations)
        self.calls.subtract(other.calls)
        for name in self._sums:
            setattr(self, name, getattr(self, name) - getattr(other, name))

    _sums = (
        "gb_s",
        "log_bytes",
        "wru",
        "rru",
        "put_events_entries",
        "transitions",
        "sfn_log_bytes",
        "sfn_log_bytes_all",
        "sqs_shares",
        "batched_invocations",
        "emails",
        "sms",
        "pushes",
    )

    def add(self, other: Usage) -> None:
        self.invocations.update(other.invocations)
        self.calls.update(other.calls)
        for name in self._sums:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Meter:
    """Counts every AWS call made on a thread that is running a handler, in billing units."""

    def __init__(self, table: str, account: str, region: str) -> None:
        from infra import description as d
        from shared.platform.indexes import INDEXES

        self.table, self.account, self.region = table, account, region
        self.keys = (d.TABLE.partition_key, d.TABLE.sort_key)
        self.indexes = [Index(i.name, (i.partition, i.sort), tuple(i.include)) for i in INDEXES]
        self.local = threading.local()
        self._lock = threading.Lock()

    # the Usage the current thread's handler adds to (None: not metered)
    @property
    def current(self) -> Usage | None:
        return getattr(self.local, "usage", None)

    @contextmanager
    def into(self, usage: Usage | None) -> Iterator[None]:
        previous = self.current
        self.local.usage = usage
        self.local.overhead = 0.0
        try:
            yield
        finally:
            self.local.usage = previous

    def _item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models import dynamodb_backends

        found = dynamodb_backends[self.account][self.region].get_item(self.table, key)
        return found.to_json()["Attributes"] if found else None

    def _key(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self.keys}

    def install(self) -> Callable[[], None]:
        import botocore.client

        original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        meter = self

        def metered(client: Any, operation: str, params: dict[str, Any]) -> Any:
            usage = meter.current
            service = client.meta.service_model.service_name
            if usage is None or service == "lambda":
                return original(client, operation, params)
            t0 = time.perf_counter()
            writes = meter._writes(service, operation, params)
            befores = [meter._item(k) for k, _ in writes]
            meter.local.overhead += time.perf_counter() - t0
            try:
                return (response := original(client, operation, params))
            finally:
                t0 = time.perf_counter()
                with meter._lock:
                    usage.calls[f"{service}.{operation}"] += 1
                    for (key, transactional), before in zip(writes, befores, strict=True):
                        after = meter._item(key)
                        usage.wru += write_units(item_size(before), item_size(after), transactional)
                        usage.wru += index_write_units(before, after, meter.indexes, meter.keys)
                    if service == "dynamodb" and "response" in locals():
                        usage.rru += meter._reads(operation, params, response)
                    if service == "events" and operation == "PutEvents":
                        usage.put_events_entries += len(params.get("Entries", []))
                    if service in ("sesv2", "ses") and operation in ("SendEmail", "SendRawEmail"):
                        usage.emails += 1
                    if service == "sesv2" and operation == "SendBulkEmail":
                        usage.emails += len(params.get("BulkEmailEntries", []))
                    if service == "sns" and operation == "Publish" and "PhoneNumber" in params:
                        usage.sms += 1
                    if service == "pinpoint" and operation == "SendMessages":
                        usage.pushes += len(params.get("MessageRequest", {}).get("Addresses", {}) or {}) or 1
                meter.local.overhead += time.perf_counter() - t0

        setattr(botocore.client.BaseClient, "_make_api_call", metered)  # noqa: B010
        return lambda: setattr(botocore.client.BaseClient, "_make_api_call", original)

    def _writes(self, service: str, op: str, p: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
        """(key, in a transaction) of every item a DynamoDB write may change."""
        if service != "dynamodb":
            return []
        if op == "PutItem":
            return [(self._key(p["Item"]), False)]
        if op in ("UpdateItem", "DeleteItem"):
            return [(p["Key"], False)]
        if op == "BatchWriteItem":
            return [
                (
                    self._key(r["PutRequest"]["Item"]) if "PutRequest" in r else r["DeleteRequest"]["Key"],
                    False,
                )
                for reqs in p["RequestItems"].values()
                for r in reqs
            ]
        if op == "TransactWriteItems":
            out = []
            for entry in p["TransactItems"]:
                (kind, body), *_ = entry.items()
                out.append((self._key(body["Item"]) if kind == "Put" else body["Key"], True))
            return out
        return []

    def _reads(self, op: str, p: dict[str, Any], r: dict[str, Any]) -> float:
        consistent = bool(p.get("ConsistentRead"))
        if op == "GetItem":
            return read_units(item_size(r.get("Item")), consistent)
        if op in ("Query", "Scan"):
            # billed on what was read (before any filter): the items returned stand in for it
            return read_units(sum(item_size(i) for i in r.get("Items", [])), consistent)
        if op == "BatchGetItem":
            return sum(
                read_units(item_size(i), bool(p["RequestItems"][t].get("ConsistentRead")))
                for t, items in r.get("Responses", {}).items()
                for i in items
            )
        if op == "TransactGetItems":
            return sum(read_units(item_size(i.get("Item")), True, True) for i in r.get("Responses", []))
        return 0.0


class _LogCounter:
    """A stream standing in for stdout/stderr: bytes a metered handler writes count as log bytes.
    `per_invocation` sums the lines written once an invocation whatever its batch (the EMF metrics
    blob, a batch's one line), so a queue consumer's share of them can follow its batch."""

    def __init__(self, meter: Meter, real: Any) -> None:
        self.meter, self.real = meter, real
        self.per_invocation = 0

    def write(self, text: str) -> int:
        usage = self.meter.current
        if usage is not None:
            size = len(text.encode("utf-8"))
            usage.log_bytes += size
            if _once_an_invocation(text):
                self.per_invocation += size
        return len(text)

    def flush(self) -> None:
        pass


def _once_an_invocation(text: str) -> bool:
    from shared.platform.function_log import BATCH_KEYS

    if not text.startswith("{"):
        return False
    try:
        line = json.loads(text)
    except ValueError:
        return False
    return isinstance(line, dict) and ("_aws" in line or all(k in line for k in BATCH_KEYS))


class Harness:
    """The emulator with every handler invocation metered into the Usage of the running scenario."""

    def __init__(self, speed: float, start: float | None = None) -> None:
        from infra import description as d
        from infra.local.emulator import ACCOUNT, REGION, Emulator

        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ["LOG_LEVEL"] = _deployed_log_level()
        self.emu = Emulator(speed=speed, start=start).start()
        self.emu._stop.set()  # no pollers or schedules: the harness runs the queues' consumers itself
        self.emu.set_public_url("https://api.shop.example.com/prod/")  # (the front door sets it locally)
        # as deployed: metrics on (EMF lines are log bytes too)
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
        self.meter = Meter(self.emu.table, ACCOUNT, REGION)
        self.platform_log_bytes = _platform_log_bytes()
        self.uninstall = self.meter.install()
        for f in d.FUNCTIONS:  # import every handler now, so their loggers exist for _quiet_streams
            self.emu.handler(f.id)
        self._route_logs()
        self.background: Usage | None = None  # what journey steps are metered into
        self.journey: str | None = None  # ... when they are this journey's (None: any)
        self._invoke = self.emu.invoke
        self.emu.invoke = self._metered_invoke  # type: ignore[method-assign]

    def _route_logs(self) -> None:
        import logging

        self.stdout = sys.stdout
        counter = self.log_counter = _LogCounter(self.meter, sys.stdout)
        level = getattr(logging, _deployed_log_level())
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            if not isinstance(logger, logging.Logger):
                continue
            if logger.name.startswith("boomerang") or logger.name in ("aws_lambda_powertools",):
                logger.setLevel(level)
            for h in logger.handlers:
                if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr):
                    h.setStream(counter)
        sys.stdout = counter  # EMF metrics are printed

    def _metered_invoke(self, name: str, payload: dict[str, Any]) -> Any:
        from infra import description as d

        usage = self.meter.current
        if usage is None and threading.current_thread() is not threading.main_thread():
            # a journey step on Step Functions' thread: metered when it is the measured journey's
            # (or when it names no journey: a broadcast's batched worker, say)
            if self.journey is None or payload.get("journey", self.journey) == self.journey:
                usage = self.background
        if usage is None:
            return self._invoke(name, payload)
        spec = next(f for f in d.FUNCTIONS if name.endswith(f.id) or name.endswith(f.id.replace("_", "-")))
        with self.meter.into(usage):
            t0 = time.perf_counter()
            try:
                return self._invoke(name, payload)
            finally:
                took = time.perf_counter() - t0 - self.meter.local.overhead
                billed_ms = max(1, int(took * 1000 + 0.999))
                usage.invocations[spec.id] += 1
                usage.gb_s += billed_ms / 1000 * spec.memory_mb / 1024
                usage.log_bytes += self.platform_log_bytes

    def print(self, *args: Any) -> None:
        print(*args, file=self.stdout, flush=True)

    # -- driving ----------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any) -> dict[str, Any]:
        from infra.local.emulator import resource_name
        from infra.local.server import proxy_event

        auth = {"Authorization": "Basic " + base64.b64encode(f"{self.emu.api_key}:".encode()).decode()}
        t0 = time.perf_counter()
        result: dict[str, Any] = self.emu.invoke(
            resource_name("fn", "ingest"), proxy_event(method, path, "", auth, json.dumps(body).encode())
        )
        assert result["statusCode"] == 200, result
        usage = self.meter.current
        if usage is not None:
            took_ms = int((time.perf_counter() - t0) * 1000)
            for kind in API_NAMES:
                usage.access_log_bytes[kind] += _access_log_bytes(kind, method, path, result, took_ms)
        return result

    def drain(self, usage: Usage | None, skip: tuple[str, ...] = ()) -> int:
        """Run every queue's consumer on what the queue holds, one message an invocation, until all are
        empty; each message costs one SendMessage (the rule's delivery) and a share of a receive and a
        delete. Messages of the `skip` queues are dropped unread. Returns the messages consumed."""
        from infra import description as d
        from infra.local.emulator import REGION, resource_name

        sqs = self.emu.client("sqs")
        consumed = 0
        while True:
            moved = 0
            for queue in d.QUEUES:
                url = self.emu.queue_urls[queue.id]
                msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                    "Messages", []
                )
                for m in msgs:
                    if queue.id in skip:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                        continue
                    record = {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": {"ApproximateReceiveCount": "1"},
                        "messageAttributes": {},
                        "md5OfBody": "",
                        "eventSource": "aws:sqs",
                        "eventSourceARN": self.emu.arns[f"queue:{queue.id}"],
                        "awsRegion": REGION,
                    }
                    self.log_counter.per_invocation = 0
                    with self.meter.into(usage):
                        self.emu.invoke(resource_name("fn", queue.consumer), {"Records": [record]})
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                    if usage is not None:
                        # one invocation serves a full batch under load: count its share only
                        usage.invocations[queue.consumer] -= 1
                        usage.batched_invocations += 1 / queue.batch_size
                        # ... and of its once-an-invocation log lines (metrics, the batch's line)
                        usage.log_bytes -= self.log_counter.per_invocation * (1 - 1 / queue.batch_size)
                        # the rule's SendMessage, and the batch's share of one receive and one delete
                        usage.sqs_shares += 1 + 2 / queue.batch_size
                    moved += 1
            consumed += moved
            if not moved:
                return consumed

    def executions(self) -> list[dict[str, Any]]:
        """Every state machine's executions (a broadcast may run on its own state machine)."""
        sfn = self.emu.client("stepfunctions")
        out = []
        for machine in sfn.list_state_machines()["stateMachines"]:
            pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"])
            journeys = machine["stateMachineArn"] == self.emu.arns["state_machine"]
            out += [{**e, "journeys": journeys} for page in pages for e in page["executions"]]
        return out

    def wait_for_executions(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain(self.background)
            if all(e["status"] != "RUNNING" for e in self.executions()):
                self.drain(self.background)
                return
            time.sleep(0.2)
        raise TimeoutError("journeys still running")

    def histories(self, usage: Usage, level: str, executions: list[dict[str, Any]]) -> int:
        """Transitions and execution-log bytes of `executions` into `usage`; returns the Task states run."""
        sfn = self.emu.client("stepfunctions")
        steps = 0
        for e in executions:
            history: list[dict[str, Any]] = []
            token = None
            while True:
                kwargs = {"executionArn": e["executionArn"], "maxResults": 1000}
                page = sfn.get_execution_history(**kwargs, **({"nextToken": token} if token else {}))
                history += page["events"]
                token = page.get("nextToken")
                if not token:
                    break
            usage.transitions += transitions(history)
            usage.sfn_log_bytes += execution_log_bytes(history, level, e["executionArn"])
            usage.sfn_log_bytes_all += execution_log_bytes(history, "ALL", e["executionArn"])
            steps += sum(1 for h in history if h["type"] == "TaskStateEntered")
        return steps

    def stop(self) -> None:
        sys.stdout = self.stdout
        self.uninstall()
        self.emu.stop()


def _deployed_api() -> str:
    """The API Gateway kind as deployed, read where the stack reads it: cdk.json's `api` context, else
    infra/description.py's API.default_kind (`cdk deploy -c api=rest` picks the other)."""
    from infra.app import cdk_json_context
    from infra.description import API

    return str(cdk_json_context().get("api") or API.default_kind).lower()


API_NAMES = {"http": "HTTP API", "rest": "REST API"}


def _access_log_bytes(kind: str, method: str, path: str, response: dict[str, Any], took_ms: int) -> int:
    """The bytes of the access-log line `kind`'s stage writes for this request: the deployed format
    (infra/access_logs.py) rendered with the request's own method, route, status and response length,
    and the values API Gateway fills in (its request id's shape, a client address, the time)."""
    from infra.access_logs import render

    request_id = uuid.uuid4().hex[:16] if kind == "http" else str(uuid.uuid4())  # HTTP API's is shorter
    line = render(
        kind,
        {
            "requestId": request_id,
            "identity.sourceIp": "203.0.113.195",
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "httpMethod": method,
            "routeKey": f"{method} {path}",
            "resourcePath": path,
            "status": str(response["statusCode"]),
            "protocol": "HTTP/1.1",
            "responseLength": str(len(str(response.get("body") or "").encode("utf-8"))),
            "integrationLatency": str(took_ms),
        },
    )
    return len(line.encode("utf-8")) + 1  # and its newline


def _stack_default(name: str) -> str:
    """A deployed default from infra/stack.py (cdk.json's context overrides it), read without
    importing the CDK."""
    import ast

    tree = ast.parse(open(os.path.join(ROOT, "infra", "stack.py"), encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise LookupError(f"{name} not found in infra/stack.py")


def _deployed_log_level() -> str:
    """The functions' LOG_LEVEL as deployed (infra/stack.py's DEFAULT_LOG_LEVEL)."""
    return _stack_default("DEFAULT_LOG_LEVEL")


def _platform_log_bytes() -> int:
    """Lambda's own START/END/REPORT bytes an invocation: INFO system logs, so none at WARN."""
    return LAMBDA_PLATFORM_LOG_BYTES if _stack_default("DEFAULT_SYSTEM_LOG_LEVEL") in ("DEBUG", "INFO") else 0


def _journey_log_level() -> str:
    from infra.description import STATE_MACHINE

    return getattr(STATE_MACHINE, "log_level", "ALL")


# --- scenarios -----------------------------------------------------------------------------------


def _history(user: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """A returning customer's earlier calls: who they are, products browsed and added, a checkout."""
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "/v1/identify",
            {
                "type": "identify",
                "userId": user,
                "messageId": f"{user}-id",
                "traits": {
                    "email": f"{user}@example.com",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "timezone": "Europe/London",
                    "consent": {"email": "subscribed"},
                },
            },
        )
    ]
    for i in range(n):
        calls.append(_track(user, "Product Viewed", f"{user}-h{i}", i))
        if i % 3 == 0:
            calls.append(_track(user, "Product Added", f"{user}-ha{i}", i))
    calls.append(_track(user, "Checkout Started", f"{user}-hc", 0))
    calls.append(_track(user, "Order Completed", f"{user}-ho", 0))
    return calls


def _track(user: str, event: str, mid: str, i: int) -> tuple[str, dict[str, Any]]:
    product = {
        "product_id": f"sku-{i % 40}",
        "name": f"Trail shoe {i % 40}",
        "category": "shoes",
        "price": 89.0 + i,
        "currency": "EUR",
        "url": f"https://shop.example.com/p/sku-{i % 40}",
    }
    props: dict[str, Any]
    if event == "Product Viewed":
        props = product
    elif event == "Product Added":
        props = {**product, "cart_id": f"cart-{user}", "quantity": 1}
    elif event == "Checkout Started":
        props = {
            "cart_id": f"cart-{user}",
            "checkout_id": f"co-{user}-{mid}",
            "value": 178.0,
            "currency": "EUR",
            "products": [product],
        }
    else:
        props = {
            "order_id": f"o-{mid}",
            "cart_id": f"cart-{user}",
            "checkout_id": f"co-{user}",
            "total": 178.0,
            "currency": "EUR",
            "products": [product],
        }
    return "/v1/track", {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": mid,
        "properties": props,
    }


def _the_event(kind: str, user: str, mid: str) -> tuple[str, dict[str, Any]]:
    if kind == "identify":
        return "/v1/identify", {
            "type": "identify",
            "userId": user,
            "messageId": mid,
            "traits": {"email": f"{user}@example.com", "first_name": "Ada", "city": "London"},
        }
    return _track(user, kind, mid, 7)


def measure_events(customers: int = 10, prior: int = 8) -> dict[str, Any]:
    """Per event type: what one event costs (browser: a request each; backend: batches of 10)."""
    h = Harness(speed=1)  # journeys started here wait hours: only the events' own work is measured
    run = uuid.uuid4().hex[:6]
    users = [f"c{i}-{run}" for i in range(customers)]
    for u in users:
        for path, call in _history(u, prior):
            h.request("POST", path, call)
    h.drain(None)
    out: dict[str, Any] = {}
    from shared.platform import keys

    for kind in MIX:
        browser, backend = Usage(), Usage()
        for i, u in enumerate(users):
            path, call = _the_event(kind, u, f"{u}-{kind}-{i}")
            with h.meter.into(browser):
                h.request("POST", path, call)
            h.drain(browser)
        batch = [_the_event(kind, u, f"{u}-{kind}-b{i}")[1] for i, u in enumerate(users)]
        for start in range(0, len(batch), BACKEND_BATCH):
            with h.meter.into(backend):
                h.request("POST", "/v1/batch", {"batch": batch[start : start + BACKEND_BATCH]})
            h.drain(backend)
        out[kind] = {"browser": _per(browser, customers), "backend": _per(backend, customers)}
    store = h.emu.store.store_id
    profiles = [
        h.meter._item(
            {"pk": {"S": keys.customer_pk(store, keys.user_customer_id(u))}, "sk": {"S": keys.PROFILE_SK}}
        )
        for u in users
    ]
    h.stop()
    out["_profile_bytes"] = [item_size(p) for p in profiles if p]
    return out


def _per(u: Usage, n: int) -> dict[str, float]:
    """One event's share of `u` (n events), in billing units."""
    api = u.invocations.get("ingest", 0)
    direct = sum(v for k, v in u.invocations.items() if k != "ingest")
    return {
        "api_requests": api / n,
        "invocations": (api + direct + u.batched_invocations) / n,
        "gb_s": u.gb_s / n,
        "log_bytes": u.log_bytes / n,
        "put_events": u.put_events_entries / n,
        # the consumers' share, and what the handlers send themselves (tasks, next pages)
        "sqs_requests": (u.sqs_shares + sum(v for k, v in u.calls.items() if k.startswith("sqs."))) / n,
        "wru": u.wru / n,
        "rru": u.rru / n,
        "transitions": u.transitions / n,
        "sfn_log_bytes": u.sfn_log_bytes / n,
        "sfn_log_bytes_all": u.sfn_log_bytes_all / n,
        "emails": u.emails / n,
        "sms": u.sms / n,
        "pushes": u.pushes / n,
        "ddb_calls": sum(v for k, v in u.calls.items() if k.startswith("dynamodb.")) / n,
        **{f"access_log_bytes_{kind}": u.access_log_bytes[kind] / n for kind in API_NAMES},
    }


def measure_journeys(customers: int = 5, recipients: int = 10) -> dict[str, Any]:
    """A cart journey sending all three emails, and a broadcast to a segment, each from its public entry."""
    from infra import description as d

    day = 86400
    h = Harness(speed=20000)
    run = uuid.uuid4().hex[:6]
    level = _journey_log_level()
    out: dict[str, Any] = {"log_level": level}

    rule = next(r for r in d.RULES if r.id == "daily-journeys")
    # the broadcast: first-time buyers, on a day after everything below (the cart journeys take days)
    noon = (int(time.time()) // day + 10) * day + 12 * 3600
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(noon + day))
    journey = (
        "name: Cost bench sale\nkind: marketing\ncategory: offers\n"
        f"trigger:\n  broadcast: {{segment: first-time-buyers, day: {tomorrow}}}\n"
        'steps:\n  - id: announce\n    at: "10:00"\n    template: flash-sale\n'
        "    offer: {code: BENCH25, description: 25% off everything}\n"
    )
    h.emu.client("s3").put_object(
        Bucket=h.emu.templates_bucket,
        Key=f"journeys/{h.emu.store.store_id}/cost-bench-sale.yaml",
        Body=journey,
    )
    # cart journeys: each customer adds to a cart and never buys
    cart = Usage()
    h.background, h.journey = cart, "cart-abandonment"
    for i in range(customers):
        u = f"cart{i}-{run}"
        h.request("POST", "/v1/identify", _history(u, 0)[0][1])
        h.drain(None, skip=("journey",))
        h.request("POST", "/v1/track", _track(u, "Product Added", f"{u}-add", i)[1])
        h.drain(None)  # the profile and the trigger (the event's own cost, in the mix above)
    h.wait_for_executions()
    carts = [e for e in h.executions() if "cart-abandonment" in e["name"]]
    steps = h.histories(cart, level, carts)
    out["cart"] = {**_per(cart, len(carts)), "steps": steps / len(carts), "executions": len(carts)}
    before = {e["executionArn"] for e in h.executions()}

    # a broadcast to first-time buyers at 10:00 in their own time, started by the daily run the day before
    h.background = None
    for i in range(recipients):
        u = f"buyer{i}-{run}"
        for path, call in _history(u, 0):
            h.request("POST", path, call)
        h.drain(None, skip=("journey",))  # (their own journeys, post-purchase..., are not the broadcast)
    # the daily run's own work the day before the broadcast is due (warm), subtracted below
    baseline = Usage()
    for at, usage in ((noon - 2 * day, None), (noon - day, baseline)):
        h.emu.clock.restart(at)
        h.emu.fire_schedule(rule, at)
        h.drain(usage)
    bcast = Usage()
    h.background, h.journey = bcast, "cost-bench-sale"
    h.emu.clock.restart(noon)
    h.emu.fire_schedule(rule, noon)
    h.drain(bcast)
    h.wait_for_executions()
    h.background = None
    # the broadcast's executions: of the journey state machine when they are this journey's, and any
    # other state machine's (the daily run also starts other journeys' executions: not counted)
    sent = [
        e
        for e in h.executions()
        if e["executionArn"] not in before and ("cost-bench-sale" in e["name"] or not e["journeys"])
    ]
    h.histories(bcast, level, sent)
    bcast.subtract(baseline)
    out["broadcast"] = {
        **_per(bcast, max(1, bcast.emails)),
        "emails": bcast.emails,
        "recipients": recipients,
        "executions": len(sent),
        "step_invocations": bcast.invocations["journey_step"],
    }
    h.stop()
    return out


def broadcast_at_scale(b: dict[str, Any], recipients: int) -> tuple[dict[str, Any], int]:
    """One email's share of a `recipients` broadcast: what each recipient costs (λ time, DynamoDB, SES
    calls), measured, plus the instants' executions (transitions, their logs, the loop's λ
    invocations) counted for that many recipients by bench_broadcast's simulated clock with the
    measured λ time per member, at the MaxSendRate (14, 100 or 1,000/s) that needs the most."""
    from infra.description import FUNCTIONS_BY_ID
    from tests.bench_broadcast import execution_work

    emails = max(1, b["emails"])
    member_s = b["gb_s"] / (FUNCTIONS_BY_ID["journey_step"].memory_mb / 1024)
    work = {rate: execution_work(recipients, rate, member_s) for rate in (14, 100, 1000)}
    rate = max(work, key=lambda r: work[r]["transitions"])
    fixed = work[rate]
    out = dict(b)
    out["transitions"] = fixed["transitions"] / recipients
    for logs in ("sfn_log_bytes", "sfn_log_bytes_all"):  # history events, so bytes, go with transitions
        out[logs] = b[logs] / b["transitions"] * out["transitions"] if b["transitions"] else 0.0
    measured_steps = b.get("step_invocations", 0) / emails
    out["invocations"] = b["invocations"] - measured_steps + fixed["invocations"] / recipients
    out["step_invocations_1m"] = fixed["invocations"]
    return out, rate


# --- pricing and the table -----------------------------------------------------------------------


def dollars(
    u: dict[str, float], api_price: float, memory_arch: str = "arm64", api: str | None = None
) -> dict[str, float]:
    """$ of one unit of work (an event, a journey, a recipient) by service; `api`: the API kind whose
    access-log lines count (work that comes through the storefront API)."""
    access_log_bytes = u.get(f"access_log_bytes_{api}", 0.0) if api else 0.0
    return {
        "API Gateway": u["api_requests"] * api_price,
        "Lambda": u["invocations"] * PRICES["lambda_request"]
        + u["gb_s"] * PRICES[f"lambda_gb_s_{memory_arch}"],
        "EventBridge": u["put_events"] * PRICES["eventbridge_entry"],
        "SQS": u["sqs_requests"] * PRICES["sqs_request"],
        "DynamoDB": u["wru"] * PRICES["ddb_wru"] + u["rru"] * PRICES["ddb_rru"],
        "CloudWatch Logs": (u["log_bytes"] + u["sfn_log_bytes"] + access_log_bytes) / 1e9 * PRICES["logs_gb"],
        "Step Functions": u["transitions"] * PRICES["sfn_transition"],
    }


def event_floor(per_request: int, api_price: float) -> dict[str, float]:
    """The cheapest sound design for storing one event: its share of one HTTP API request and one
    arm64 Lambda invocation (128 MB, 10 ms per request), one conditional write of the bytes that
    change (1 WRU), and the Lambda's own log lines; no bus, no queue, no transaction."""
    return {
        "API Gateway": api_price / per_request,
        "Lambda": (PRICES["lambda_request"] + 0.010 * 0.125 * PRICES["lambda_gb_s_arm64"]) / per_request,
        "DynamoDB": PRICES["ddb_wru"],
        "CloudWatch Logs": _platform_log_bytes() / per_request / 1e9 * PRICES["logs_gb"],
    }


def _sub(cmd: str) -> dict[str, Any]:
    code = f"import json; from tests.bench_cost import {cmd} as f; r = f(); print('\\n@@' + json.dumps(r))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"{cmd} failed")
    line = [x for x in done.stdout.splitlines() if x.startswith("@@")][-1]
    result: dict[str, Any] = json.loads(line[2:])
    return result


def _mix(events: dict[str, Any], mode: str) -> dict[str, float]:
    keys = next(iter(events[k][mode] for k in MIX)).keys()
    return {k: sum(MIX[kind] * events[kind][mode][k] for kind in MIX) for k in keys}


def _row(label: str, cost: dict[str, float], scale: float) -> str:
    total = sum(cost.values()) * scale
    parts = ", ".join(f"{k} {v * scale:,.2f}" for k, v in cost.items() if v * scale >= 0.005)
    return f"  {label:<44} ${total:>9,.2f}   ({parts})"


def _logs_line(u: dict[str, float], level: str, scale: float) -> str:
    price = PRICES["logs_gb"] / 1e9 * scale
    return (
        f"  {'execution logs (Step Functions)':<44} {u['sfn_log_bytes']:,.0f} B at {level} "
        f"(${u['sfn_log_bytes'] * price:,.2f}); at ALL {u['sfn_log_bytes_all']:,.0f} B "
        f"(${u['sfn_log_bytes_all'] * price:,.2f})"
    )


def print_cost() -> None:
    from infra.description import FUNCTIONS_BY_ID

    events = _sub("measure_events")
    journeys = _sub("measure_journeys")
    m = 1e6
    print("\nCost per unit of work, measured (list prices us-east-1; handlers on moto; tests/bench_cost.py)")
    print(
        f"  memory: ingest {FUNCTIONS_BY_ID['ingest'].memory_mb} MB, profile "
        f"{FUNCTIONS_BY_ID['profile'].memory_mb} MB, step {FUNCTIONS_BY_ID['journey_step'].memory_mb} MB; "
        f"function log level {_deployed_log_level()}, Lambda's own lines at "
        f"{_stack_default('DEFAULT_SYSTEM_LOG_LEVEL')}; journey execution logs {journeys['log_level']}"
    )
    sizes = events["_profile_bytes"]
    if sizes:
        print(
            f"  profile item after each customer's history and the measured events: mean "
            f"{sum(sizes) / len(sizes):,.0f} B, max {max(sizes):,} B (DynamoDB's size)"
        )
    print("\n  Per event type (browser: one call a request), billing units per event:")
    for kind in MIX:
        u = events[kind]["browser"]
        print(
            f"    {kind:<18} WRU {u['wru']:5.2f}  RRU {u['rru']:5.2f}  DynamoDB calls {u['ddb_calls']:4.1f}  "
            f"PutEvents {u['put_events']:4.2f}  SQS {u['sqs_requests']:4.2f}  λ GB-s {u['gb_s']:.4f}  "
            f"logs {u['log_bytes']:6,.0f} B"
        )
    print("\n  Log bytes per event type (the functions' lines at the deployed level; the API's access log):")
    for kind in MIX:
        u, b = events[kind]["browser"], events[kind]["backend"]
        print(
            f"    {kind:<18} browser: functions {u['log_bytes']:5,.0f} B, access log HTTP "
            f"{u['access_log_bytes_http']:4,.0f} B / REST {u['access_log_bytes_rest']:4,.0f} B;  "
            f"backend: functions {b['log_bytes']:5,.0f} B, access log HTTP {b['access_log_bytes_http']:4,.0f} B / "
            f"REST {b['access_log_bytes_rest']:4,.0f} B"
        )
    results = []
    print(
        "\n  $ per 1M events of the mix (50% Product Viewed, 25% Product Added, 10% identify, "
        "10% Checkout Started, 5% Order Completed):"
    )
    deployed = _deployed_api()
    print(
        f"  storefront API as deployed: {API_NAMES[deployed]} (-c api={deployed}); the other for comparison"
    )
    for mode, per_request, label in (
        ("browser", 1, "browser ({api}, 1 call/request)"),
        ("backend", BACKEND_BATCH, f"backend ({{api}}, {BACKEND_BATCH} calls/request)"),
    ):
        usage = _mix(events, mode)
        costs = {
            kind: dollars(usage, PRICES[f"apigw_{kind}"], api=kind)
            for kind in (deployed, *API_NAMES.keys() - {deployed})
        }
        cost = costs[deployed]
        floor = event_floor(per_request, PRICES["apigw_http"])
        ratio = sum(cost.values()) / sum(floor.values())
        for kind, priced in costs.items():
            mark = "" if kind == deployed else "   (not deployed)"
            print(_row(label.format(api=API_NAMES[kind]), priced, m) + mark)
        print(_row("  floor (HTTP API, 1 Lambda, 1 WRU, its logs)", floor, m))
        results.append(
            (f"events, {mode}", f"{ratio:.1f}x floor", f"<= {GOALS['events']}x", ratio <= GOALS["events"])
        )
    cart = journeys["cart"]
    cart_cost = dollars(cart, 0)
    ses = cart["emails"] * PRICES["ses_email"]
    print(
        f"\n  $ per 1M cart journeys ({cart['emails']:.1f} emails each, {cart['steps']:.1f} steps, "
        f"{cart['transitions']:.1f} transitions):"
    )
    print(_row("Boomerang (without the messages)", cart_cost, m))
    print(f"  {'SES for the emails':<44} ${ses * m:>9,.2f}")
    print(_logs_line(cart, journeys["log_level"], m))
    floor_t = 2 * cart["steps"] + 2
    cart_floor = {
        "Step Functions": floor_t * PRICES["sfn_transition"],
        "Lambda": cart["steps"] * (PRICES["lambda_request"] + 0.1 * 0.5 * PRICES["lambda_gb_s_arm64"]),
        "DynamoDB": cart["emails"] * 2 * PRICES["ddb_wru"],
    }
    # the floor: a Wait and a Task a step plus start and end, 100 ms of a 512 MB λ a step, and per
    # send the exactly-once record and the history entry (2 WRU)
    print(_row("floor (Wait+Task a step, 2 WRU a send)", cart_floor, m))
    print(f"  {'ratio to the floor':<44} {sum(cart_cost.values()) / sum(cart_floor.values()):9.1f}x")
    per_step = (cart["transitions"] - 2) / max(cart["steps"], 1)
    results.append(
        (
            "journeys: transitions a step (+ start, end)",
            f"{per_step:.1f}",
            f"<= {GOALS['transitions_per_step']}",
            per_step <= GOALS["transitions_per_step"],
        )
    )
    results.append(
        (
            "journeys: execution log level",
            journeys["log_level"],
            "ERROR",
            journeys["log_level"] in ("ERROR", "FATAL", "OFF"),
        )
    )
    b = journeys["broadcast"]
    b, rate = broadcast_at_scale(b, int(m))
    b_cost = dollars(b, 0)
    overhead = sum(b_cost.values())
    print(
        f"\n  $ per 1M broadcast emails: per recipient as measured ({b['emails']} of {b['recipients']} "
        f"recipients sent: {b['wru']:.1f} WRU, {b['rru']:.1f} RRU, {b['gb_s'] * 1000:.1f} mGB-s each); the "
        f"executions' fixed work ({b['transitions'] * m:,.0f} transitions, {b['step_invocations_1m']:,.0f} "
        f"step λ invocations) as a 1M broadcast at one instant needs it at {rate}/s (tests/bench_broadcast.py "
        f"execution_work, the most of 14, 100, 1,000/s), not the {b['executions']} measured executions' "
        f"spread over {b['emails']}:"
    )
    print(_row("Boomerang's overhead", b_cost, m))
    print(f"  {'SES for the emails':<44} ${PRICES['ses_email'] * m:>9,.2f}")
    print(_logs_line(b, journeys["log_level"], m))
    # the floor: pages of the segment read by batched workers (100 recipients an invocation), per
    # email 10 ms of a 512 MB λ (render, send), the exactly-once send record (1 WRU) and its share
    # of the page read (0.5 RRU per 4 KB, eventually consistent)
    b_floor = {
        "Lambda": PRICES["lambda_request"] / 100 + 0.010 * 0.5 * PRICES["lambda_gb_s_arm64"],
        "DynamoDB": PRICES["ddb_wru"] + PRICES["ddb_rru"] * 0.5 / 40,
    }
    print(_row("floor (batched workers, 1 WRU a send)", b_floor, m))
    print(f"  {'ratio to the floor':<44} {overhead / sum(b_floor.values()):9.1f}x")
    share = overhead / PRICES["ses_email"]
    results.append(
        (
            "broadcast overhead per email",
            f"{share:.0%} of SES",
            f"<= {GOALS['broadcast_overhead']:.0%}",
            share <= GOALS["broadcast_overhead"],
        )
    )
    print("\n  $ per 1,000 messages sent (the provider's price; Boomerang's own work per send is above):")
    print(f"    email (SES)            ${PRICES['ses_email'] * 1000:.2f}")
    print(f"    app push (End User Messaging push) ${PRICES['push_message'] * 1000:.3f}")
    print("    web push               $0.00 (the browsers' push services are free; the step λ's time only)")
    for country, price in SMS_PRICES.items():
        print(f"    SMS to {country} (a 1-part text)  ${price * 1000:,.2f}")
    print("\n  Goals of issue 17:")
    for name, value, goal, ok in results:
        print(f"    {name:<46} {value:>14}   goal {goal:<8} {'PASS' if ok else 'MISS'}")
