"""`python -m tests.bench emulator`: the local emulator's memory per 1,000 accepted events, with and
without its retention sweeper (infra/local/retention.py). Figures only, never asserts.

Two runs:
- in process, with and without the sweeper: the emulator at x3600, events through its HTTP front
  door in batches (an identify and a Product Added each, so a cart journey starts per batch);
  resident memory (VmRSS) is read after the journeys had time to run, scaled to 1,000 events;
- a longer one as a developer runs it: `boomerang local` in a subprocess at x3600, LONG_EVENTS
  events through its front door in batches of 50 (25 new customers, each with a cart), the
  subprocess's VmRSS read after every 1,000 once its queues are drained; the steady state is the
  growth from the first 1,000 on (what the first ones cost is imports, caches and moto's first tables). Customers are
  new every time, so some growth is data AWS keeps too (profiles, carts, running journeys).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from typing import Any

LONG_EVENTS = 5000


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


def _batch(n: int, run: str, size: int = 25) -> bytes:
    calls: list[dict[str, Any]] = []
    for i in range(n * size, (n + 1) * size):
        user = f"{run}-{i}"
        calls.append(
            {
                "type": "identify",
                "userId": user,
                "messageId": f"i-{user}",
                "traits": {"email": f"{user}@example.com", "consent": {"email": "subscribed"}},
            }
        )
        calls.append(
            {
                "type": "track",
                "userId": user,
                "messageId": f"t-{user}",
                "event": "Product Added",
                "properties": {"cart_id": f"c-{user}", "product_id": "p1", "name": "Mug", "price": 12},
            }
        )
    return json.dumps({"batch": calls}).encode()


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


def long_run(events: int = LONG_EVENTS, speed: int = 3600, every: int = 1000) -> dict[str, Any]:
    """`boomerang local` in a subprocess: its VmRSS after every 1,000 events through the front door."""
    import signal
    import socket
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "local", "--port", str(port), "--speed", str(speed)]
        + ["--api-key", "bench"],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,  # nobody reads it: a full pipe would block the emulator
        stderr=subprocess.DEVNULL,
    )
    url, auth = f"http://127.0.0.1:{port}", "Basic " + base64.b64encode(b"bench:").decode()
    run, started = uuid.uuid4().hex[:6], time.monotonic()
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(url + "/_local/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        rss, accepted, refused = [_rss_mb(proc.pid)], 0, 0
        for n in range(events // 50):
            req = urllib.request.Request(
                url + "/v1/batch",
                data=_batch(n, run),
                method="POST",
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
                accepted += 50
            except OSError:
                refused += 50
            if (n + 1) * 50 % every == 0:
                drained(url)
                rss.append(_rss_mb(proc.pid))
        steady = (rss[-1] - rss[1]) * 1000 / max(1, events - every)
        # (the list: before any event, then after every 1,000 once the queues were drained)
        return {
            "rss_mb": rss,
            "steady_per_1000_mb": steady,
            "accepted": accepted,
            "refused": refused,
            "events_per_s": events / (time.monotonic() - started),
        }
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C: the emulator stops its threads and moto
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def print_emulator(batches: int = 100) -> None:
    import subprocess
    import sys

    r = long_run()
    print(
        f"\n`boomerang local` at x3600, {LONG_EVENTS:,} events through its front door "
        f"({r['events_per_s']:.0f} events/s, {r['refused']} refused):"
    )
    print("  VmRSS after every 1,000 (MB): " + ", ".join(f"{m:.0f}" for m in r["rss_mb"]))
    print(f"  steady state: {r['steady_per_1000_mb']:,.1f} MB per 1,000 events (from the first 1,000 on)")

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
