"""`make bench`: figures for the issue notes. A benchmark, not a test: it asserts nothing.

1. ingest + profile events/s through the real handlers on in-process moto (moto dominates: on AWS
   each call is a network round trip instead, so read this as handler overhead + an upper bound);
2. cold import time of each handler module, and its ratio to `import boto3` alone;
3. AWS API calls per event, by event type;
4. Step Functions state transitions per cart journey (two emails; bought before the first);
5. rendering one email per send: the Polish MJML cart email and the HTML one, first and later sends
   (`python -m tests.bench templates` runs only this part, with a loop-heavy render and the
   validator's verdict on hostile templates; `imports` only part 2);
6. forwarding orders to fulfilment partners: cost per 1,000 orders and time per order
   (`python -m tests.bench partners`, tests/bench_partners.py);
7. fulfilment speed in the report, and the read a step timed `from: delivery` adds
   (`python -m tests.bench fulfilment`, tests/bench_fulfilment.py);
8. personal data (`python -m tests.bench privacy`): erasure, export and the retention sweep of one
   customer in a store of N customers (each reads the store's items), and what the erasure
   tombstone lookup adds to every folded event;
   `python -m tests.bench privacy-partners`: what scrubbing forward records to fulfilment partners
   adds to an erasure (per forward: time and DynamoDB calls).
9. compressed batches and webhooks (`python -m tests.bench ingest`): ingest events/s for plain,
   gzip and deflate batches of 100 (the decompression overhead per event), and the ingest λ's time
   per Shopify webhook (verify, map, validate, publish), and the µs per call the hostile-input
   checks add (`python -m tests.bench validation` runs only that).
10. public pages and log scrubbing (`python -m tests.bench pages`, tests/bench_pages.py): refusing
   a hostile link, serving a page with its form token, judging a POST, a log-safe error summary.
11. the signup form (`python -m tests.bench forms`, tests/bench_forms.py): boomerang.js raw and
   gzip'd, and one submission's time and AWS calls through the ingest λ.
12. web push (`python -m tests.bench webpush`, tests/bench_webpush.py): the send time per message
   (encrypt + VAPID sign + POST to the local push service) and the size of the site's scripts.
13. faults (`python -m tests.bench faults`, tests/bench_faults.py): the claim's hand-off write per
   send, and the sender-reputation count and window read.
14. the emulator's memory (`python -m tests.bench emulator`, tests/bench_emulator.py): VmRSS block
   by block of a `boomerang local` run fed a fixed population's sessions through its front door
   (~100 Boomerang days), its growth per 1,000 events after a 45-day warm-up (bound: 5 MB), and in
   process with and without its retention sweeper.
15. what it costs on AWS (`python -m tests.bench cost`, tests/bench_cost.py): $ per 1M events of a
   stated mix, per 1M cart journeys, per 1M broadcast emails and per 1,000 messages, by service,
   measured from the handlers' real calls, beside the floor for the same work and issue 17's goals;
   events priced on the deployed API (HTTP API by default) with the REST API's line beside it.
16. broadcasts (`python -m tests.bench broadcast`, tests/bench_broadcast.py): 1M recipients'
   duration at SES MaxSendRate 14/s, 100/s, 1,000/s (simulated clock, real pacing) and the cost
   by service, from a measured run on moto.
17. DynamoDB at the floor (`python -m tests.bench dynamodb`, tests/bench_dynamodb.py): WRU per event
   type as billed, and the profile item's size distribution after many varied events.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the figures, not the handlers' logs
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSITION_PRICE = 0.025 / 1000  # USD per Standard state transition (us-east-1)


def _import_ms(module: str) -> float:
    code = f"import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(done.stdout) * 1000


def cold_imports(repeat: int = 5) -> dict[str, tuple[float, float]]:
    """Each handler module's cold import (median ms of `repeat` fresh interpreters) and its ratio to
    `import boto3`, measured in turn with it so a busy machine slows both alike. Budget: 1.5x."""
    from infra.description import FUNCTIONS

    modules = ["boto3"] + [f.module for f in FUNCTIONS]
    runs: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(repeat):
        for module in modules:
            runs[module].append(_import_ms(module))
    base = statistics.median(runs["boto3"])
    return {m: (statistics.median(ms), statistics.median(ms) / base) for m, ms in runs.items()}


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1


def _events(n: int, run: str) -> list[dict[str, Any]]:
    calls = []
    for i in range(n):
        user = f"u{i % (n // 4 or 1)}-{run}"
        kind = i % 4
        if kind == 0:
            calls.append(
                {
                    "type": "identify",
                    "userId": user,
                    "messageId": f"{run}-{i}",
                    "traits": {"email": f"{user}@example.com", "consent": {"email": "subscribed"}},
                }
            )
        elif kind in (1, 2):
            calls.append(
                {
                    "type": "track",
                    "event": "Product Added",
                    "userId": user,
                    "messageId": f"{run}-{i}",
                    "properties": {
                        "cart_id": f"c-{user}",
                        "product_id": f"p{kind}",
                        "price": 9.5,
                        "currency": "EUR",
                    },
                }
            )
        else:
            calls.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": user,
                    "messageId": f"{run}-{i}",
                    "properties": {
                        "order_id": f"o-{user}",
                        "cart_id": f"c-{user}",
                        "total": 19,
                        "currency": "EUR",
                    },
                }
            )
    return calls


def throughput_and_calls(n: int = 400) -> tuple[float, float, float, dict[str, dict[str, float]]]:
    from infra.local.emulator import Emulator, resource_name
    from infra.local.server import proxy_event

    # The emulator without pollers: we drive the handlers ourselves and time only them.
    emu = Emulator(speed=1)
    emu.start()
    emu._stop.set()  # stop the SQS pollers; the bench reads the queue itself
    import base64

    from shared.platform.aws import client

    counter = CallCounter()
    for service in ("dynamodb", "events", "stepfunctions", "s3", "sesv2", "secretsmanager", "sqs"):
        client(service).meta.events.register("before-call", counter)
    ingest, profile = resource_name("fn", "ingest"), resource_name("fn", "profile")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{emu.api_key}:".encode()).decode()}
    calls = _events(n, uuid.uuid4().hex[:6])
    # warm up both handlers once (cold start is measured separately)
    emu.invoke(ingest, proxy_event("POST", "/v1/batch", "", auth, json.dumps({"batch": calls[:4]}).encode()))

    counter.calls.clear()
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        body = json.dumps({"batch": calls[start : start + 100]}).encode()
        result = emu.invoke(ingest, proxy_event("POST", "/v1/batch", "", auth, body))
        assert result["statusCode"] == 200, result
    t_ingest = time.perf_counter() - t0
    ingest_calls = dict(counter.calls)

    sqs = emu.client("sqs")
    url = emu.queue_urls["profile"]
    records = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not msgs:
            break
        for m in msgs:
            records.append(
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": emu.arns["queue:profile"],
                    "awsRegion": "us-east-1",
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    by_type: dict[str, Counter[str]] = {}
    counts: Counter[str] = Counter()
    t_profile = 0.0
    for r in records:
        detail = json.loads(r["body"])["detail"]
        kind = detail.get("event") or detail["type"]
        before = Counter(counter.calls)
        t0 = time.perf_counter()
        emu.invoke(profile, {"Records": [r]})
        t_profile += time.perf_counter() - t0
        by_type.setdefault(kind, Counter()).update(Counter(counter.calls) - before)
        counts[kind] += 1
    # the journey-trigger λ sees every track call: what each costs it (journey files cached per container)
    trigger = resource_name("fn", "journey_trigger")
    jurl = emu.queue_urls["journey"]
    t_trigger, n_trigger = 0.0, 0
    while True:
        msgs = sqs.receive_message(QueueUrl=jurl, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not msgs:
            break
        for m in msgs:
            sqs.delete_message(QueueUrl=jurl, ReceiptHandle=m["ReceiptHandle"])
            body = json.loads(m["Body"])
            kind = "trigger: " + (body.get("detail", {}).get("event") or body.get("detail-type", "?"))
            record = {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": emu.arns["queue:journey"],
                "awsRegion": "us-east-1",
            }
            before = Counter(counter.calls)
            t0 = time.perf_counter()
            emu.invoke(trigger, {"Records": [record]})
            t_trigger += time.perf_counter() - t0
            n_trigger += 1
            by_type.setdefault(kind, Counter()).update(Counter(counter.calls) - before)
            counts[kind] += 1
    emu.stop()
    per_event = {k: {call: round(v / counts[k], 2) for call, v in c.items()} for k, c in by_type.items()}
    per_event["ingest (per event, batches of 100)"] = {k: round(v / n, 3) for k, v in ingest_calls.items()}
    per_event[f"trigger throughput: {n_trigger / max(t_trigger, 1e-9):,.0f} events/s"] = {}
    return n / t_ingest, len(records) / t_profile, n / (t_ingest + t_profile), per_event


def pure_logic(n: int = 5000) -> tuple[float, float]:
    """The handlers' own work without any AWS call: validate+normalise, and the profile/cart fold."""
    from shared.domain.api_calls import normalise
    from shared.domain.carts import Cart, apply_cart_event
    from shared.domain.fold import apply_consent, apply_traits, touch
    from shared.domain.profiles import Profile

    calls = _events(n, "pure")
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        events, errors = normalise(calls[start : start + 100], "demo", time.time())
        assert not errors
    t_norm = time.perf_counter() - t0
    events, _ = normalise(calls, "demo", time.time())
    t0 = time.perf_counter()
    for e in events:
        p = Profile(store_id="demo", customer_id="u:x")
        touch(p, e)
        if e.type == "identify":
            apply_traits(p, e.traits, e.received_at)
            apply_consent(p, e.traits, e.received_at, e.message_id)
        elif e.event == "Product Added":
            apply_cart_event(Cart(store_id="demo", cart_id=e.cart_id), e)
        p.model_dump(mode="python")
    return n / t_norm, n / (time.perf_counter() - t0)


def template_renders(n: int = 30) -> dict[str, tuple[float, float]]:
    """(first send, median of the next n) ms to render the shipped cart email, each send to another
    customer (a cache of the rendered output would not help)."""
    from pathlib import Path

    from shared.domain.template_variables import sample_variables
    from shared.templates.model import EmailTemplate
    from shared.templates.render import render_email

    root = Path(ROOT) / "infra" / "templates" / "_default"
    layouts = {p.name: p.read_text(encoding="utf-8") for p in (root / "_layout").iterdir()}
    out = {}
    for label, folder, body in (
        ("MJML (pl)", "cart-abandoned/pl", "body.mjml"),
        ("HTML", "cart-abandoned", "body.html"),
    ):
        d = root / folder
        template = EmailTemplate(
            name="cart-abandoned",
            subject=(d / "subject.txt").read_text(encoding="utf-8"),
            html=(d / body).read_text(encoding="utf-8"),
            text=(d / "body.txt").read_text(encoding="utf-8"),
            locale="pl" if "pl" in folder else None,
            layouts=layouts,
            mjml=body.endswith(".mjml"),
        )
        times = []
        for i in range(n + 1):
            variables = sample_variables("cart-abandoned", "pl")
            variables["customer"] = {**variables["customer"], "first_name": f"Ada{i}"}
            t0 = time.perf_counter()
            email = render_email(template, variables)
            times.append((time.perf_counter() - t0) * 1000)
            assert f"Ada{i}" in email.html
        out[label] = (times[0], statistics.median(times[1:]))
    return out


def template_bounds(n: int = 20) -> dict[str, float]:
    """ms (median of n): a loop-heavy render (every hook of shared/templates/budget.py on its path),
    and the validator's verdict on the issue's hostile templates (several sample customers each)."""
    from shared.domain.template_variables import sample_variables
    from shared.templates.lint import lint_unit
    from shared.templates.model import EmailTemplate
    from shared.templates.render import render_email

    footer = '<a href="{{ unsubscribe_url }}">x</a> {{ store.address }}'
    loops = EmailTemplate(
        name="cart-abandoned",
        subject="Hi {{ customer.first_name }}",
        html="{% macro row(i) %}<td>{{ i }}{{ '%03d'|format(i) }}</td>{% endmacro %}"
        "{% for i in range(2000) %}{{ row(i) }}{{ i ~ '' }}{% endfor %}" + footer,
        text="Hi",
    )
    out: dict[str, float] = {}
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        render_email(loops, sample_variables("cart-abandoned"))
        times.append((time.perf_counter() - t0) * 1000)
    out["2,000 loop iterations, macro calls and filters"] = statistics.median(times)
    hostile = {
        "three nested range(100000)": "{% for i in range(100000) %}{% for j in range(100000) %}"
        "{% for k in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
        "guarded loop (not for Ada)": '{% if customer.first_name != "Ada" %}{% for i in range(20000) %}'
        "{% for j in range(20000) %}.{% endfor %}{% endfor %}{% endif %}",
        "recursive macro": "{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}",
        "''|center(30000000)": "{{ ''|center(30000000) }}",
    }
    for label, body in hostile.items():
        t0 = time.perf_counter()
        # a distinct subject each time: the validator keeps verdicts by content
        files = {"subject.txt": f"Hi {time.perf_counter_ns()}", "body.txt": "Hi", "body.html": body + footer}
        assert lint_unit("cart-abandoned", "", "email", files)
        out[f"verdict: {label}"] = (time.perf_counter() - t0) * 1000
    return out


def print_template_renders() -> None:
    print("\nRendering the cart email, per send (Jinja + MJML + CSS inlining; another customer each time):")
    for label, (first, later) in template_renders().items():
        print(f"  {label:<10} first send {first:6.1f} ms; later sends {later:6.1f} ms (median of 30)")
    print("Bounded templates (CPU, work, sizes): a loop-heavy render, and the validator's verdicts:")
    for label, ms in template_bounds().items():
        print(f"  {label:<48} {ms:7.1f} ms")


def transitions_per_journey() -> dict[str, Any]:
    import base64
    import urllib.request

    from infra.local.emulator import Emulator
    from infra.local.server import LocalServer

    emu = Emulator(speed=36000).start()
    server = LocalServer(emu, port=0).start()
    auth = "Basic " + base64.b64encode(f"{emu.api_key}:".encode()).decode()

    def post(calls: list[dict[str, Any]]) -> None:
        req = urllib.request.Request(
            server.url + "/v1/batch",
            json.dumps({"batch": calls}).encode(),
            {"Authorization": auth},
            method="POST",
        )
        urllib.request.urlopen(req, timeout=10).read()

    post(
        [
            {
                "type": "identify",
                "userId": "a",
                "traits": {"email": "a@example.com", "consent": {"email": "subscribed"}},
            },
            {
                "type": "track",
                "event": "Product Added",
                "userId": "a",
                "properties": {"cart_id": "ca", "product_id": "p"},
            },
            {
                "type": "track",
                "event": "Product Added",
                "userId": "b",
                "properties": {"cart_id": "cb", "product_id": "p"},
            },
        ]
    )
    time.sleep(0.3)
    post(
        [
            {
                "type": "track",
                "event": "Order Completed",
                "userId": "b",
                "properties": {"order_id": "o", "cart_id": "cb", "total": 5},
            }
        ]
    )
    sfn = emu.client("stepfunctions")
    deadline = time.monotonic() + 120

    def carts() -> list[dict[str, Any]]:  # (the order also starts its 30-day post-purchase journey)
        return [e for e in emu.executions() if "cart-abandonment" in e["name"]]

    while time.monotonic() < deadline:
        execs = carts()
        if len(execs) == 2 and all(e["status"] != "RUNNING" for e in execs):
            break
        time.sleep(0.2)
    out = {}
    for e in carts():
        history = sfn.get_execution_history(executionArn=e["executionArn"], maxResults=1000)["events"]
        entered = sum(1 for h in history if h["type"].endswith("StateEntered"))
        out[e["name"]] = {"status": e["status"], "transitions": entered}
    server.stop()
    emu.stop()
    return out


def compressed_and_webhooks(batches: int = 4, webhooks: int = 30) -> dict[str, float]:
    """events/s through the ingest λ per body encoding, µs of inflating per event, ms per webhook."""
    import base64
    import gzip
    import zlib

    from infra.local.emulator import Emulator, resource_name
    from infra.local.server import proxy_event
    from shared.adapters.store_directory import StoreDirectory
    from shared.domain.webhooks import signature
    from shared.services.ingest import read_body
    from tests.events import load_event

    emu = Emulator(speed=1)
    emu.start()
    emu._stop.set()  # no pollers: only the ingest λ is timed
    ingest = resource_name("fn", "ingest")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{emu.api_key}:".encode()).decode()}
    run = uuid.uuid4().hex[:6]
    bodies = [json.dumps({"batch": _events(100, f"{run}-{b}")}).encode() for b in range(batches)]
    encoders = {
        "plain": (None, lambda b: b),
        "gzip": ("gzip", gzip.compress),
        "deflate": ("deflate", zlib.compress),
    }
    out: dict[str, float] = {}
    emu.invoke(ingest, proxy_event("POST", "/v1/batch", "", auth, bodies[0]))  # warm
    for name, (encoding, encode) in encoders.items():
        headers = {**auth, **({"Content-Encoding": encoding} if encoding else {})}
        encoded = [encode(b) for b in bodies]
        out[f"{name}_ratio"] = sum(map(len, encoded)) / sum(map(len, bodies))
        # fresh messageIds per encoding would change nothing here: ingest does not dedupe, the fold does
        t0 = time.perf_counter()
        for body in encoded:
            result = emu.invoke(ingest, proxy_event("POST", "/v1/batch", "", headers, body))
            assert result["statusCode"] == 200, result
        out[f"{name}_eps"] = batches * 100 / (time.perf_counter() - t0)
        if encoding:
            t0 = time.perf_counter()
            for body in encoded:
                read_body(base64.b64encode(body).decode(), True, {"Content-Encoding": encoding})
            out[f"{name}_inflate_us"] = (time.perf_counter() - t0) / (batches * 100) * 1e6

    StoreDirectory(emu.client("dynamodb"), emu.table).set_webhook_secret("demo", "shopify", "bench-secret")
    samples = [
        ("checkouts/create", "checkouts_create"),
        ("orders/create", "orders_create"),
        ("customers/update", "customers_update"),
    ]
    timings: list[float] = []
    for n in range(webhooks):
        topic, sample = samples[n % len(samples)]
        body = json.dumps(load_event(f"shopify/{sample}")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature("bench-secret", body),
            "X-Shopify-Webhook-Id": f"{run}-{n}",
        }
        t0 = time.perf_counter()
        result = emu.invoke(ingest, proxy_event("POST", "/v1/webhooks/shopify/demo", "", headers, body))
        timings.append(time.perf_counter() - t0)
        assert result["statusCode"] == 200, result
    out["webhook_ms_median"] = statistics.median(timings[1:]) * 1000
    out["webhook_ms_max"] = max(timings[1:]) * 1000
    emu.stop()

    # the same webhooks without AWS: what the λ itself spends (verify, map, validate)
    from shared.services.webhooks import WebhookReceiver

    receiver = WebhookReceiver(
        secret_for=lambda *_: "bench-secret", publish=lambda e: None, archive=lambda r: None
    )
    prepared = []
    for topic, sample in samples:
        body = json.dumps(load_event(f"shopify/{sample}")).encode()
        prepared.append((topic, body, signature("bench-secret", body)))
    rounds = 300
    t0 = time.perf_counter()
    for n in range(rounds):
        topic, body, sig = prepared[n % len(prepared)]
        headers = {"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": sig, "X-Shopify-Webhook-Id": f"p-{n}"}
        receiver.receive("shopify", "demo", headers, body.decode(), False, 1.0)
    out["webhook_pure_ms"] = (time.perf_counter() - t0) / rounds * 1000
    return out


def validation_cost(batches: int = 30, rounds: int = 7) -> dict[str, float]:
    """µs per call that the hostile-input checks (shared/domain/limits.py) add to ingest: parsing
    with the huge-integer/NaN hooks against plain json.loads, and the walk of every call before its
    models against the whole validate+normalise. Best of `rounds` (a busy machine only adds)."""
    from shared.domain import api_calls, limits
    from shared.services.ingest import parse_json

    bodies = [json.dumps({"batch": _events(100, f"v{b}")}).encode() for b in range(batches)]
    calls = [c for b in bodies for c in json.loads(b)["batch"]]
    n = len(calls)

    def best(work: Any) -> float:
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            work()
            times.append(time.perf_counter() - t0)
        return min(times) / n * 1e6

    def checks() -> None:
        for c in calls:
            assert not (limits.first_problems(c) or limits.trait_problems(c.get("traits")))

    def normalise() -> None:
        for start in range(0, n, 100):
            assert not api_calls.normalise(calls[start : start + 100], "demo", time.time())[1]

    return {
        "parse_plain_us": best(lambda: [json.loads(b) for b in bodies]),
        "parse_us": best(lambda: [parse_json(b) for b in bodies]),
        "checks_us": best(checks),
        "normalise_us": best(normalise),
    }


def print_validation_cost() -> None:
    f = validation_cost()
    print("\nHostile-input checks per call (3,000 calls of the bench's mix, best of 7; without AWS):")
    print(
        f"  parse {f['parse_plain_us']:.1f} µs plain -> {f['parse_us']:.1f} µs with the number hooks; "
        f"the checks {f['checks_us']:.1f} µs of validate+normalise's {f['normalise_us']:.1f} µs"
    )


def print_compressed_and_webhooks() -> None:
    f = compressed_and_webhooks()
    print("\nCompressed batches through the ingest λ on moto (4 batches of 100 events per encoding):")
    for name in ("plain", "gzip", "deflate"):
        extra = f"; inflating {f[name + '_inflate_us']:.1f} µs/event" if name != "plain" else ""
        print(f"  {name:<8} {f[name + '_eps']:8,.0f} events/s  body {f[name + '_ratio']:.0%} of plain{extra}")
    print(
        f"Shopify webhook through the ingest λ (verify, map, validate, publish): "
        f"median {f['webhook_ms_median']:.1f} ms, max {f['webhook_ms_max']:.1f} ms (Shopify allows 5 s); "
        f"without AWS calls {f['webhook_pure_ms']:.2f} ms"
    )


def main() -> None:
    print("Boomerang bench (this machine; moto in-process stands in for AWS)\n")
    imports = cold_imports()
    print("Cold import, median of 5 fresh interpreters (budget: 1.5x import boto3):")
    for mod, (ms, ratio) in imports.items():
        print(f"  {mod:<40} {ms:7.0f} ms  {ratio:4.2f}x boto3")
    ingest_eps, profile_eps, both_eps, per_event = throughput_and_calls()
    print(
        f"\nThroughput through the handlers on moto (400 events, batches of 100, one thread):\n"
        f"  ingest {ingest_eps:,.0f} events/s; profile {profile_eps:,.0f} events/s; ingest+profile {both_eps:,.0f} events/s"
    )
    norm, fold = pure_logic()
    print(
        f"  without AWS calls: validate+normalise {norm:,.0f} events/s; profile/cart fold {fold:,.0f} events/s"
    )
    print("\nAWS API calls per event:")
    for kind, calls in sorted(per_event.items()):
        total = sum(calls.values())
        print(f"  {kind:<36} {total:5.2f}  " + ", ".join(f"{k} {v:g}" for k, v in sorted(calls.items())))
    print_template_renders()
    print_validation_cost()
    print_compressed_and_webhooks()
    print("\nStep Functions state transitions per cart journey:")
    # a fresh interpreter: handler modules cache clients bound to the first emulator's endpoint
    code = "import json; from tests.bench import transitions_per_journey as t; print(json.dumps(t()))"
    found = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    for info in json.loads(found.stdout.strip().splitlines()[-1]).values():
        cost = info["transitions"] * TRANSITION_PRICE * 1_000_000
        print(
            f"  {info['status']:<10} {info['transitions']:3d} transitions  (${cost:,.0f} per million journeys)"
        )
    from tests.bench_partners import print_forwarding

    print_forwarding()
    from tests.bench_fulfilment import print_fulfilment

    print_fulfilment()
    from tests.bench_webpush import print_webpush

    print_webpush()
    privacy()
    from tests.bench_forms import print_forms

    print_forms()
    from tests.bench_cost import print_cost

    print_cost()
    from tests.bench_broadcast import print_broadcast

    print_broadcast()
    from tests.bench_dynamodb import print_dynamodb

    print_dynamodb()


def privacy(customers: int = 300) -> None:
    """Erase, export and sweep in a synthetic store, on in-process moto (a Scan pages 1 MB at a time
    on AWS too, so the item counts and sizes are what a real table would read)."""
    from moto import mock_aws

    from shared.adapters.privacy_store import PrivacyStore
    from shared.domain.privacy import DataRetention
    from shared.platform.aws import client, reset_clients
    from shared.services.privacy import export as exporting
    from shared.services.privacy.collect import Who
    from shared.services.privacy.erase import Eraser
    from shared.services.privacy.retention import sweep
    from tests.aws_fixtures import FAKE_CREDENTIALS, canonical, create_world

    os.environ.update(FAKE_CREDENTIALS)
    with mock_aws():
        reset_clients()
        world = create_world()
        profiles = world.profiles()
        counter = CallCounter()
        client("dynamodb").meta.events.register("before-call", counter)
        calls = []
        for i in range(customers):
            u = f"c{i}"
            calls += [
                {
                    "type": "identify",
                    "userId": u,
                    "messageId": f"i{i}",
                    "traits": {
                        "email": f"{u}@example.com",
                        "consent": {"email": "subscribed"},
                        "consent_source": "bench",
                    },
                },
                {
                    "type": "track",
                    "userId": u,
                    "event": "Product Added",
                    "messageId": f"a{i}",
                    "properties": {"cart_id": f"cart{i}", "product_id": "p", "price": 10.0, "quantity": 1},
                },
                {
                    "type": "track",
                    "userId": u,
                    "event": "Order Completed",
                    "messageId": f"o{i}",
                    "properties": {"order_id": f"o{i}", "cart_id": f"cart{i}", "total": 10.0},
                },
            ]
        counter.calls.clear()
        # (moto copies the whole table in every transaction, so the fold's rate here says nothing)
        for e in canonical(calls, time.time()):
            profiles.apply(e)
        lookups = counter.calls.get("dynamodb.BatchGetItem", 0) / len(calls)
        ddb = client("dynamodb")
        items = ddb.scan(TableName=world.table, Select="COUNT")["Count"]
        size = len(
            json.dumps(
                [i for p in ddb.get_paginator("scan").paginate(TableName=world.table) for i in p["Items"]]
            )
        )
        store = PrivacyStore(ddb, world.table)
        t0 = time.perf_counter()
        doc = exporting.export(store, Who("shop-1", customer="u:c7"))
        export_s = time.perf_counter() - t0
        eraser = Eraser(store, client("stepfunctions"), world.state_machine_arn)
        t0 = time.perf_counter()
        erased = eraser.erase(Who("shop-1", email="c8@example.com"))
        erase_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sweep(store, eraser, "shop-1", DataRetention(), time.time())
        sweep_s = time.perf_counter() - t0
    print(f"\nPersonal data ({customers:,} customers, {items:,} items in the table, moto in-process):")
    rcu = size / 4096  # a consistent Scan: 1 read unit per 4 KB read
    print(f"  erasure-tombstone lookups per folded event: {lookups:.2f} BatchGetItem (1 read unit per key)")
    print(
        f"  one read of the store: {size / 1e6:.2f} MB, ~{rcu:,.0f} read units (${rcu * 0.125 / 1e6:.6f} on demand;"
        " a 1 GB table: ~262,000 units, $0.03)"
    )
    print(
        f"  export of one customer: {export_s * 1000:,.0f} ms ({sum(exporting.counts(doc).values())} records)"
    )
    print(
        f"  erasure by email: {erase_s * 1000:,.0f} ms ({sum(erased.removed.values())} items removed, "
        f"{erased.pseudonymised_orders} order kept unlinked)"
    )
    print(
        f"  retention sweep of the store: {sweep_s * 1000:,.0f} ms (nothing expired: one read of the store)"
    )


def privacy_partners(forwards: int = 50) -> None:
    """Erase a customer whose `forwards` orders were each sent to a partner: the scrub is one
    conditional PutItem per forward record, on top of the erasure's read of the store."""
    from moto import mock_aws

    from shared.adapters.fulfilment_store import FulfilmentStore
    from shared.adapters.privacy_store import PrivacyStore
    from shared.platform.aws import client, reset_clients
    from shared.services.privacy.collect import Who
    from shared.services.privacy.erase import Eraser
    from tests.aws_fixtures import FAKE_CREDENTIALS, canonical, create_world

    os.environ.update(FAKE_CREDENTIALS)
    with mock_aws():
        reset_clients()
        world = create_world()
        ident = {
            "type": "identify",
            "userId": "ada",
            "messageId": "i",
            "traits": {"email": "ada@example.com"},
        }
        for e in canonical([ident], time.time()):
            world.profiles().apply(e)
        ddb = client("dynamodb")
        fulfilment = FulfilmentStore(ddb, world.table)
        doc = json.dumps(
            {"shipping_address": {"name": "Ada", "line1": "12 Square"}, "items": [{"sku": "x"}] * 3}
        )
        for i in range(forwards):
            rec = {"store_id": "shop-1", "order_id": f"o{i}", "partner_id": "acme", "action": "create"}
            fulfilment.open(
                {**rec, "customer_id": "u:ada", "order_at": 1.0, "first_at": 1.0, "document": doc}
            )
            fulfilment.record_attempt(
                "shop-1", f"o{i}", "acme", "create", {"n": 1, "answer": "ok"}, "accepted"
            )
        counter = CallCounter()
        ddb.meta.events.register("before-call", counter)
        eraser = Eraser(PrivacyStore(ddb, world.table))
        t0 = time.perf_counter()
        erased = eraser.erase(Who("shop-1", customer="u:ada"))
        took = time.perf_counter() - t0
    puts = counter.calls.get("dynamodb.PutItem", 0) - erased.tombstones
    print(f"\nErasure with forward records ({forwards} orders sent to a partner, moto in-process):")
    print(
        f"  erasure: {took * 1000:,.0f} ms, {erased.scrubbed_forwards} forwards scrubbed, "
        f"{puts / max(1, erased.scrubbed_forwards):.2f} PutItem per forward (~1 write unit each, $0.0000006)"
    )


def inventory_items(products: int = 30) -> None:
    """DynamoDB calls per Shopify product event (learning item -> sku) and per inventory_levels/update
    (resolving it): the learning is a read per variant, a write only when the mapping changed."""
    from moto import mock_aws

    from shared.domain.api_calls import normalise
    from shared.domain.webhooks import number, shopify
    from shared.platform.aws import client, reset_clients
    from tests.aws_fixtures import FAKE_CREDENTIALS, create_world
    from tests.events import load_event

    def events(topic: str, sample: str, delivery: str) -> list[Any]:
        calls = shopify.map_webhook(topic, load_event(f"shopify/{sample}")).calls
        return normalise(number(calls, "shopify", delivery), "shop-1", time.time())[0]

    os.environ.update(FAKE_CREDENTIALS)
    with mock_aws():
        reset_clients()
        world = create_world()
        store, ddb = world.profiles(), client("dynamodb")
        counter = CallCounter()
        ddb.meta.events.register("before-call", counter)
        rounds = []
        for r in range(2):  # the first round learns, the second finds every mapping unchanged
            counter.calls.clear()
            t0 = time.perf_counter()
            for i in range(products):
                for e in events("products/update", "products_update", f"p{i}-{r}"):
                    store.apply(e)
            rounds.append((time.perf_counter() - t0, dict(counter.calls)))
        counter.calls.clear()
        announced: list[Any] = []
        t0 = time.perf_counter()
        for i in range(products):
            for e in events("inventory_levels/update", "inventory_levels_update", f"i{i}"):
                store.apply(e, announce=announced.append)
        resolve = time.perf_counter() - t0
    print(f"\nShopify inventory items ({products} products/update of 2 variants, moto in-process):")
    for label, (took, calls) in zip(("first (learns)", "again (unchanged)"), rounds, strict=True):
        print(
            f"  products/update {label}: {took * 1000 / products:.1f} ms each, "
            f"{calls.get('dynamodb.PutItem', 0) / products:.1f} PutItem and "
            f"{calls.get('dynamodb.GetItem', 0) / products:.1f} GetItem per webhook"
        )
    print(
        f"  inventory_levels/update resolved: {resolve * 1000 / products:.1f} ms each, "
        f"{counter.calls.get('dynamodb.GetItem', 0) / products:.1f} GetItem, {len(announced)} announced"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["privacy"]:
        privacy()
    elif sys.argv[1:] == ["privacy-partners"]:
        privacy_partners()
    elif sys.argv[1:] == ["inventory-items"]:
        inventory_items()
    elif sys.argv[1:] == ["templates"]:
        print_template_renders()
    elif sys.argv[1:] == ["pages"]:
        from tests.bench_pages import print_pages

        print_pages()
    elif sys.argv[1:] == ["iam"]:
        from tests.bench_iam import print_iam

        print_iam()
    elif sys.argv[1:] == ["ingest"]:
        print_validation_cost()
        print_compressed_and_webhooks()
    elif sys.argv[1:] == ["validation"]:
        print_validation_cost()
    elif sys.argv[1:] == ["partners"]:
        from tests.bench_partners import print_forwarding

        print_forwarding()
    elif sys.argv[1:] == ["fulfilment"]:
        from tests.bench_fulfilment import print_fulfilment

        print_fulfilment()
    elif sys.argv[1:] == ["forms"]:
        from tests.bench_forms import print_forms

        print_forms()
    elif sys.argv[1:] == ["webpush"]:
        from tests.bench_webpush import print_webpush

        print_webpush()
    elif sys.argv[1:] == ["faults"]:
        from tests.bench_faults import print_faults

        print_faults()
    elif sys.argv[1:] == ["broadcast"]:
        from tests.bench_broadcast import print_broadcast

        print_broadcast()
    elif sys.argv[1:] == ["emulator"]:
        from tests.bench_emulator import print_emulator

        print_emulator()
    elif sys.argv[1:] == ["cost"]:
        from tests.bench_cost import print_cost

        print_cost()
    elif sys.argv[1:] == ["dynamodb"]:
        from tests.bench_dynamodb import print_dynamodb

        print_dynamodb()
    elif sys.argv[1:] == ["imports"]:
        for mod, (ms, ratio) in cold_imports().items():
            print(f"{mod:<40} {ms:7.0f} ms  {ratio:4.2f}x boto3")
    else:
        main()
