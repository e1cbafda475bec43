"""`python -m tests.bench emulator`: the local emulator's memory per 1,000 accepted events, with and
without its retention sweeper (infra/local/retention.py). Figures only, never asserts.

The emulator runs in this process at x3600; events go through its HTTP front door in batches
(an identify and a Product Added each, so a cart journey starts per batch); resident memory
(VmRSS) is read after the journeys had time to run, and the growth is scaled to 1,000 events.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from typing import Any


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
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


def print_emulator(batches: int = 100) -> None:
    import subprocess
    import sys

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
