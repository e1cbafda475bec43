"""`python -m tests.bench faults`: what the fault handling of issue 16 adds, on moto in-process.

1. The claim's lease: every send now writes its record three times (claim, hand-off, outcome) instead
   of twice; the hand-off UpdateItem is timed and priced at on-demand write request units.
2. The sender reputation: the feedback λ's count (one TransactWriteItems of a marker and the hour's
   counter, per delivery, hard bounce or complaint) and the step λ's read of the 7-day window (one
   Query of 168 hourly items, cached 5 min per container). A benchmark: it asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

DDB_WRU = 1.25 / 1e6  # on-demand write request unit (1 KB), us-east-1
DDB_RRU = 0.125 / 1e6  # on-demand read request unit (4 KB strongly consistent)


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.2f} ms (p90 {sorted(samples)[int(len(samples) * 0.9)] * 1000:.2f})"


def figures(n: int = 300) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from shared.adapters.journey_store import JourneyStore
    from shared.adapters.reputation_store import ReputationStore
    from shared.domain.reputation import WINDOW_H
    from tests.aws_fixtures import FAKE_CREDENTIALS, REGION, create_world

    os.environ.update(FAKE_CREDENTIALS)
    with mock_aws():
        world = create_world()
        ddb = boto3.client("dynamodb", region_name=REGION)
        journeys = JourneyStore(ddb, world.table)
        claim, hand_off, finish = [], [], []
        for i in range(n):
            record = {"step": 0, "step_id": "email-1", "customer_id": f"u:c{i}", "channels": ["email"],
                      "at": 1.79e9, "lease_until": 1.79e9 + 180}  # fmt: skip
            t0 = time.perf_counter()
            token = journeys.claim_send("bench", "cart-abandonment", f"cart-{i}", "email-1", record)
            t1 = time.perf_counter()
            assert token is not None
            journeys.finish_send("bench", "cart-abandonment", f"cart-{i}", "email-1", token,
                                 {"status": "handed-off", "handed_off_at": 1.79e9})  # fmt: skip
            t2 = time.perf_counter()
            journeys.finish_send("bench", "cart-abandonment", f"cart-{i}", "email-1", token,
                                 {"status": "sent", "channel": "email", "message_id": f"ses-{i}"})  # fmt: skip
            t3 = time.perf_counter()
            claim.append(t1 - t0)
            hand_off.append(t2 - t1)
            finish.append(t3 - t2)
        reputation = ReputationStore(ddb, world.table, cache_s=0)
        count = []
        now = 1.79e9
        for i in range(n):
            t0 = time.perf_counter()
            reputation.count("delivered", f"ses-{i}", now - (i % WINDOW_H) * 3600)
            count.append(time.perf_counter() - t0)
        window = []
        for _ in range(30):
            t0 = time.perf_counter()
            rep = reputation.window(now)
            window.append(time.perf_counter() - t0)
        item = ddb.get_item(
            TableName=world.table, Key={"pk": {"S": "ACCOUNT#SES"}, "sk": {"S": "REP#2026-09-21T10"}}
        )
    return {
        "claim": claim,
        "hand_off": hand_off,
        "finish": finish,
        "count": count,
        "window": window,
        "counted": rep.delivered,
        "bucket_bytes": len(str(item.get("Item", {}))),
    }


def print_faults() -> None:
    f = figures()
    print("\nFaults (issue 16.7), moto in-process:")
    print(
        f"  send record: claim {_ms(f['claim'])}, hand-off {_ms(f['hand_off'])}, outcome {_ms(f['finish'])}"
    )
    print(
        f"  the hand-off write: 1 UpdateItem of a <1 KB item = 1 WRU, ${DDB_WRU * 1e6:.2f} per million sends"
    )
    print(
        f"  reputation count per SES event: {_ms(f['count'])}; TransactWriteItems of 2 small items "
        f"= 4 WRU, ${4 * DDB_WRU * 1e6:.2f} per million delivery/bounce/complaint events"
    )
    kb = 168 * max(60, f["bucket_bytes"]) / 1024
    print(
        f"  reputation window (168 hourly items, {f['counted']} counted): {_ms(f['window'])}; "
        f"~{kb:.0f} KB read = {max(1, round(kb / 4 + 0.5))} RRU, at most once per 5 min per step container"
    )
