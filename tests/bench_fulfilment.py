"""`python -m tests.bench fulfilment`: what fulfilment speed adds to the report, and what a step timed
`from: delivery` adds to the journey step.

1. The report: N orders of one store, each with two partner parts (accepted, shipped, delivered),
   as table items: parsing them (`collect`, the same parser for the table and an export) and
   computing the per-partner speeds and the repeat rate by delivery band, per 100,000 orders.
2. The step: a `from: delivery` step reads the order's forward records (one strongly consistent
   Query of the order's partition, next to the GetItem the per-order step already makes), timed on
   moto and priced at on-demand read request units. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from typing import Any

DDB_RRU = 0.125 / 1e6  # on-demand read request unit (4 KB strongly consistent), us-east-1
DAY = 86400.0
STORE = "bench"


def _items(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    t0 = 1_780_000_000.0
    items: list[dict[str, Any]] = []
    for i in range(n):
        at = t0 + rng.random() * 180 * DAY
        customer = f"u:c{rng.randrange(n // 2 + 1)}"
        pk = f"STORE#{STORE}#ORDER#o{i}"
        items.append({"pk": pk, "sk": "ORDER", "order_id": f"o{i}", "customer_id": customer, "at": at,
                      "total": 40, "status": "completed"})  # fmt: skip
        for partner in ("acme", "globex"):
            accepted = at + rng.random() * 6 * 3600
            shipped = accepted + rng.random() * 3 * DAY
            items.append({"pk": pk, "sk": f"FWD#{partner}#create", "order_id": f"o{i}", "partner_id": partner,
                          "order_at": at, "status": "accepted", "accepted_at": accepted, "shipped_at": shipped,
                          "delivered_at": shipped + rng.random() * 8 * DAY, "attempts": [{"n": 1}]})  # fmt: skip
    return items


def report_figures(n: int = 20_000) -> dict[str, float]:
    from shared.adapters.report_data import collect
    from shared.domain import metrics as m

    items = _items(n)
    started = time.perf_counter()
    data = collect(items, STORE)
    parsed = time.perf_counter() - started
    start, end = m.month_start(min(o.at for o in data.orders)), max(o.at for o in data.orders) + 1
    started = time.perf_counter()
    m.fulfilment_speed(data.forwards, start, end)
    speed = time.perf_counter() - started
    started = time.perf_counter()
    m.repeat_by_delivery_speed(data.orders, data.forwards, start, end)
    bands = time.perf_counter() - started
    scale = 100_000 / n
    return {"parse_s": parsed * scale, "speed_s": speed * scale, "bands_s": bands * scale}


def step_read(n: int = 200) -> dict[str, float]:
    import boto3
    from moto import mock_aws

    from shared.adapters.fulfilment_store import FulfilmentStore
    from shared.platform.aws import to_item
    from tests.aws_fixtures import FAKE_CREDENTIALS, REGION, create_world

    os.environ.update(FAKE_CREDENTIALS)
    with mock_aws():
        world = create_world()
        ddb = boto3.client("dynamodb", region_name=REGION)
        for item in _items(n):
            ddb.put_item(TableName=world.table, Item=to_item(item))
        store = FulfilmentStore(ddb, world.table)
        took = []
        for i in range(n):
            started = time.perf_counter()
            store.for_order(STORE, f"o{i}")
            took.append(time.perf_counter() - started)
    # the capacity one such Query consumes (moto reports none): its items' size (approximated by their
    # DynamoDB JSON), rounded up to 4 KB units
    size = sum(len(json.dumps(to_item(it))) for it in _items(1) if it["sk"].startswith("FWD#"))
    return {"ms": statistics.median(took) * 1000, "rru": float(math.ceil(size / 4096)), "bytes": size}


def print_fulfilment() -> None:
    r = report_figures()
    print("\nFulfilment speed in the report (per 100,000 orders, two partner parts each, this machine):")
    print(
        f"  parse the items {r['parse_s']:.2f} s; per-partner speeds {r['speed_s']:.2f} s; "
        f"repeat rate by delivery band {r['bands_s']:.2f} s"
    )
    s = step_read()
    per_million = 2 * s["rru"] * DDB_RRU * 1e6  # the review step wakes twice: at 7 d from the order, then due
    print("A step timed from: delivery (the post-purchase review request):")
    print(
        f"  one more Query of the order's partition per wake-up: {s['ms']:.1f} ms median on moto, "
        f"{s['rru']:.0f} RRU ({s['bytes']:.0f} bytes of forward records); "
        f"${per_million:.2f} per million orders (two wake-ups)"
    )


if __name__ == "__main__":
    print_fulfilment()
