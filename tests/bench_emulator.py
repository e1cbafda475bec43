"""`python -m tests.bench emulator`: the local emulator's memory per 1,000 accepted events, with and
without its retention sweeper (infra/local/retention.py). Figures only, never asserts.

Two runs:
- in process, with and without the sweeper: the emulator at x3600, events through its HTTP front
  door in batches (an identify and a Product Added each, so a cart journey starts per batch);
  resident memory (VmRSS) is read after the journeys had time to run, scaled to 1,000 events;
- a day-long `make local` in little time: `boomerang local` in a subprocess at x3600, fed the
  sessions of a FIXED population (POPULATION customers viewing, adding, checking out, every other
  session ending in an order), so journeys start and close and what AWS keeps levels off; the
  retention caps are lowered (BOOMERANG_LOCAL_<CAP>) so the run passes them; VmRSS after every
  block once the queues are drained; the figure is the growth per 1,000 events from the first
  block ended past WARMUP_DAYS of Boomerang time to the last, which must be near zero
  (PLATEAU_MB). Run with MALLOC_ARENA_MAX=2 (what the CLI sets), then with glibc's default arenas
  over half the blocks, for the comparison.

Measured on a 2-core machine (issue 16.8, blocks of ~211 events, ~9 Boomerang
days each, VmRSS in MB, the census of the table and buckets taken after each block):
- main before the S3 lifecycle (257e7b8), 16 blocks, 3,378 events in 55 min, the last 6 beside a
  `make test`: 327 before, then
  366, 375, 388, 417, 449 (the table fills to its 30/31-day TTL windows, ~6,800 items; the first
  monthly report and its full-table export run in block 5), then 448, 452, 452, 449, 452, 452,
  456, 456, 460, 456, 456: +2.2 MB per 1,000 events over the second half. The exports (~190 KB
  each) piled up: moto stores the bucket's 30-day rule but never runs it;
- with the sweeper running the lifecycle rules (e4403ee), 12 blocks, 2,538 events, the first 4
  beside a `make test`: 326 before, then 329, 344, 360, 386, 399, 405 (day 47), 405, 416, 416,
  413, 416, 410 (day 105): +4.2 MB per 1,000 events after the warm-up, under PLATEAU_MB; two
  exports at any time. (It ends ~40 MB below the first run at the same day; the exports were
  under 1 MB, so that is mostly run-to-run variation, not the lifecycle.) What still grows is
  the orders (kept, as on AWS: ~30 a block) and each monthly report's peak, a step of a few MB.
Earlier, with both runs side by side under load 12-15: after 4 blocks MALLOC_ARENA_MAX=2 ended 52
MB lower than glibc's default (409 against 461 MB).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from typing import Any


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _run(batches: int, sweep: bool) -> dict[str, Any]:
    from infra.local import retention
    from infra.local.emulator import Emulator
    from infra.local.server import LocalServer

    original = retention.Sweeper.sweep
    if not sweep:
        retention.Sweeper.sweep = lambda self: {}  # type: ignore[method-assign, assignment, misc]
    emu = Emulator(speed=3600, api_key="bench").start()
    srv = LocalServer(emu, port=0).start()
    auth = "Basic " + base64.b64encode(b"bench:").decode()

    def send(i: int) -> None:
        body = {
            "batch": [
                {
                    "type": "identify",
                    "userId": f"b{i}",
                    "messageId": f"i{i}-{sweep}",
                    "traits": {"email": f"b{i}@example.com", "email_consent": True},
                },
                {
                    "type": "track",
                    "userId": f"b{i}",
                    "messageId": f"t{i}-{sweep}",
                    "event": "Product Added",
                    "properties": {
                        "cart_id": f"c{i}",
                        "product_id": "p1",
                        "name": "Mug",
                        "price": 12,
                        "quantity": 1,
                    },
                },
            ]
        }
        req = urllib.request.Request(
            srv.url + "/v1/batch",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
        except OSError:
            pass

    try:
        for i in range(10):  # warm-up: imports, caches, first executions
            send(i)
        time.sleep(20)
        before = _rss_mb()
        for i in range(10, 10 + batches):
            send(i)
        time.sleep(40)  # journeys run on (at x3600 a day is 24 s)
        after = _rss_mb()
        return {
            "per_1000_mb": (after - before) * 1000 / (2 * batches),
            "forgotten": dict(emu.retention.forgotten),
        }
    finally:
        srv.stop()
        emu.stop()
        retention.Sweeper.sweep = original  # type: ignore[method-assign]


PLATEAU_MB = 5  # MB per 1,000 events the run may grow after the warm-up: a plateau
# Boomerang days before the plateau is measured: the run's longest retention window (31 days of
# event markers) has passed, the caps are reached and the first monthly report has run
WARMUP_DAYS = 45
POPULATION = 200  # customers of the long run, again and again: a store's regulars, not new ones each time
# blocks of the long run, VmRSS after each: a block took ~3.5 min (~9 Boomerang days) on a quiet
# 2-core machine, so about half of them come after the warm-up
LONG_BLOCKS = 12
BLOCK_EVENTS = 250
# the long run's caps (infra/local/retention.py's defaults would take hours to reach at the
# front door's pace): a day-long `make local` passes the defaults the same way, later
# and the store's data retention at its shortest (shared/domain/privacy.py DataRetention): 31 days of
# event markers and 30 of message history are 12 real minutes at x3600; orders stay, as on AWS
LONG_STORE = {"data_retention": {"cart_days": 7, "message_history_days": 30, "event_marker_days": 31}}
LONG_CAPS = {
    "EXECUTION_CAP": 400,
    "HISTORY_CAP": 100,
    "ARCHIVE_CAP": 1000,
    "OUTBOX_CAP": 300,
    "HANDLES_CAP": 1000,
}


def _session(run: str, n: int) -> list[dict[str, Any]]:
    """Session n of the fixed population: customer n % POPULATION views, adds and starts a checkout;
    every other session ends in an order (its cart journey exits), the rest abandon (reminders
    run to their end); a customer's first session identifies them with email consent."""
    k, s = n % POPULATION, n // POPULATION
    user, cart = f"{run}-{k}", f"c-{run}-{k}-{s}"
    product = {"product_id": f"p{n % 7}", "name": "Mug", "price": 12, "quantity": 1, "currency": "GBP"}
    calls: list[dict[str, Any]] = []
    if s == 0:
        calls.append(
            {
                "type": "identify",
                "userId": user,
                "messageId": f"i-{user}",
                "traits": {"email": f"{user}@example.com", "consent": {"email": "subscribed"}},
            }
        )
    track = [
        ("Product Viewed", {k2: v for k2, v in product.items() if k2 != "quantity"}),
        ("Product Added", {"cart_id": cart, **product}),
        ("Checkout Started", {"cart_id": cart, "value": 12, "currency": "GBP", "products": [product]}),
    ]
    if n % 2 == 0:
        track.append(
            (
                "Order Completed",
                {
                    "order_id": f"o-{cart}",
                    "cart_id": cart,
                    "total": 12,
                    "currency": "GBP",
                    "products": [product],
                },
            )
        )
    for i, (event, properties) in enumerate(track):
        calls.append(
            {
                "type": "track",
                "userId": user,
                "messageId": f"t-{cart}-{i}",
                "event": event,
                "properties": properties,
            }
        )
    return calls


def _batches(run: str, events: int, size: int = 50) -> list[bytes]:
    """`events` events of whole sessions, in batches of about `size`."""
    batches, calls, n, total = [], [], 0, 0
    while total < events:
        session = _session(run, n)
        n += 1
        calls += session
        total += len(session)
        if len(calls) >= size:
            batches.append(json.dumps({"batch": calls}).encode())
            calls = []
    if calls:
        batches.append(json.dumps({"batch": calls}).encode())
    return batches


def drained(url: str, timeout: float = 600) -> None:
    """Wait until the emulator's queues are empty: a backlog of events not yet folded is not what the
    emulator keeps (on a loaded machine the front door takes events faster than the pollers fold)."""
    import os

    import boto3

    with urllib.request.urlopen(url + "/_local/health", timeout=10) as r:
        endpoint = json.loads(r.read())["aws_endpoint"]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backlog = 0
        for queue in sqs.list_queues().get("QueueUrls", []):
            a = sqs.get_queue_attributes(
                QueueUrl=queue,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            backlog += int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
        if backlog == 0:
            return
        time.sleep(1)


def long_run(
    blocks: int = LONG_BLOCKS,
    block_events: int = BLOCK_EVENTS,
    speed: int = 3600,
    arena_max: str | None = None,
    caps: dict[str, int] | None = None,
    trace: str | None = None,
) -> dict[str, Any]:
    """`boomerang local` in a subprocess, as a developer runs it, fed sessions of a fixed population:
    its VmRSS after each block once the queues are drained. At x3600 a journey's week of waits
    takes three real minutes, so journeys start and close throughout and the running ones level
    off (faster, the daily run fires before the last one is done and the queues never drain).
    `arena_max` sets MALLOC_ARENA_MAX ("" leaves glibc's default: the CLI sets its own);
    `trace` a file for BOOMERANG_TRACEMALLOC's reports (one per block, by SIGUSR1)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import tempfile
    import uuid
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = Path(tempfile.mkdtemp()) / "store.json"
    store.write_text(json.dumps(LONG_STORE), encoding="utf-8")
    env = {**os.environ, **{f"BOOMERANG_LOCAL_{k}": str(v) for k, v in (caps or LONG_CAPS).items()}}
    env.pop("MALLOC_ARENA_MAX", None)
    if arena_max:
        env["MALLOC_ARENA_MAX"] = arena_max
    elif arena_max == "":
        env["MALLOC_ARENA_MAX"] = str(8 * (os.cpu_count() or 1))  # glibc's own default, kept by the CLI
    if trace:
        env["BOOMERANG_TRACEMALLOC"] = "1"
    err = open(trace, "w", encoding="utf-8") if trace else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "local", "--port", str(port), "--speed", str(speed)]
        + ["--api-key", "bench", "--store", str(store)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,  # nobody reads it: a full pipe would block the emulator
        stderr=err,
    )
    url, auth = f"http://127.0.0.1:{port}", "Basic " + base64.b64encode(b"bench:").decode()
    run, started = uuid.uuid4().hex[:6], time.monotonic()
    try:
        deadline = time.monotonic() + 600  # tracing makes start-up slow on a loaded machine
        while True:
            try:
                with urllib.request.urlopen(url + "/_local/health", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("boomerang local did not start") from None
                time.sleep(0.5)
        up = time.monotonic()  # Boomerang's clock started about now, at x`speed`

        def days() -> float:
            return (time.monotonic() - up) * speed / 86400

        rss, at, accepted, refused, sent = [_rss_mb(proc.pid)], [days()], 0, 0, 0
        batches = _batches(run, blocks * block_events)
        per_block = max(1, len(batches) // blocks)
        for b in range(blocks):
            for body in batches[b * per_block : (b + 1) * per_block]:
                req = urllib.request.Request(
                    url + "/v1/batch",
                    data=body,
                    method="POST",
                    headers={"Authorization": auth, "Content-Type": "application/json"},
                )
                events = len(json.loads(body)["batch"])
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        r.read()
                    accepted += events
                except OSError:
                    refused += events
                sent += events
            drained(url)
            if trace:
                proc.send_signal(signal.SIGUSR1)
            rss.append(_rss_mb(proc.pid))
            at.append(days())
            print(
                f"  block {b + 1}/{blocks}: VmRSS {rss[-1]:.0f} MB, day {at[-1]:.0f}",
                file=sys.stderr,
                flush=True,
            )
        per_event = sent / blocks
        # the plateau: from the first block ended past the warm-up to the last (None: the run was
        # too short to pass it)
        first = next((i for i, d in enumerate(at) if d >= WARMUP_DAYS), len(at))
        plateau = (
            (rss[-1] - rss[first]) * 1000 / (per_event * (len(rss) - 1 - first))
            if first < len(rss) - 1
            else None
        )
        # (the lists: before any event, then after every block once drained and settled)
        return {
            "rss_mb": rss,
            "days": at,
            "block_events": per_event,
            "plateau_from_block": first,
            "plateau_per_1000_mb": plateau,
            "accepted": accepted,
            "refused": refused,
            "events_per_s": sent / (time.monotonic() - started),
        }
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C: the emulator stops its threads and moto
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if trace:
            err.close()  # type: ignore[union-attr]


def print_emulator(batches: int = 100) -> None:
    import subprocess
    import sys

    caps = ", ".join(f"{k.lower()} {v:,}" for k, v in LONG_CAPS.items())
    print(
        f"\n`boomerang local` at x3600, {POPULATION} customers' sessions again and again (view, add, checkout;"
        f" every other one an order, the rest abandoned), {LONG_BLOCKS} blocks of ~{BLOCK_EVENTS} events,"
        f" retention caps lowered so the run passes them ({caps}):"
    )
    # glibc's default arenas only for the comparison, over the warm-up: half the blocks
    for label, arena, blocks in (
        ("MALLOC_ARENA_MAX=2, as `boomerang local` sets it", "2", LONG_BLOCKS),
        ("glibc's default arenas", "", LONG_BLOCKS // 2),
    ):
        long = long_run(blocks=blocks, arena_max=arena)
        print(f"  {label} ({long['events_per_s']:.0f} events/s, {long['refused']} refused):")
        print(
            "    VmRSS before, then after each block (MB, Boomerang day): "
            + ", ".join(f"{m:.0f} (d{d:.0f})" for m, d in zip(long["rss_mb"], long["days"], strict=True))
        )
        plateau = long["plateau_per_1000_mb"]
        if plateau is None:
            print(f"    (too short to pass the {WARMUP_DAYS}-day warm-up: no plateau measured)")
            continue
        verdict = "PASS" if plateau < PLATEAU_MB else "MISS"
        print(
            f"    after the warm-up (from block {long['plateau_from_block']}): {plateau:+,.1f} MB per 1,000 events"
            f" (the plateau's bound: under {PLATEAU_MB} MB): {verdict}"
        )

    print(f"\nLocal emulator memory ({2 * batches} events at x3600, VmRSS growth scaled, one process each):")
    for label, sweep in (("without retention", "0"), ("with retention", "1")):
        out = (
            subprocess.run(
                [sys.executable, "-m", "tests.bench_emulator", str(batches), sweep],
                capture_output=True,
                text=True,
                check=False,
            )
            .stdout.strip()
            .splitlines()
        )
        r = json.loads(out[-1]) if out and out[-1].startswith('{"per_1000_mb') else None
        if r is None:
            print(f"  {label}: run failed")
            continue
        print(f"  {label}: {r['per_1000_mb']:,.1f} MB per 1,000 events; forgotten: {r['forgotten']}")


if __name__ == "__main__":
    import logging
    import sys

    logging.disable(logging.CRITICAL)
    print(json.dumps(_run(int(sys.argv[1]), sys.argv[2] == "1")))
