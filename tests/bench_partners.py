"""`python -m tests.bench partners`: forwarding to fulfilment partners, cost and added latency.

Runs the forwarder service on in-process moto against a loopback partner (http.server on
127.0.0.1, answering 201 at once): N orders, each with items for two partners and one the store
ships itself. Prints the forwarder's own time per order (split, records, two signed requests) and
the AWS calls it makes, priced at us-east-1 list prices (December 2026) per 1,000 orders. A
benchmark: it asserts nothing.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# us-east-1 list prices (USD)
LAMBDA_GB_SECOND_ARM = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
SQS_REQUEST = 0.40 / 1e6
DDB_WRU = 0.625 / 1e6  # on-demand write request unit (1 KB)
DDB_RRU = 0.125 / 1e6  # on-demand read request unit (4 KB strongly consistent)
SECRETS_CALL = 0.05 / 10_000
FORWARDER_MB = 512
BATCH = 5  # QueueSpec partners.batch_size: order events per invocation


class _Partner(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"id": "P-1"}'
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def forwarding(n: int = 200) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from shared.adapters.fulfilment_store import FulfilmentStore
    from shared.adapters.partner_catalog import PartnerCatalog
    from shared.adapters.partner_http import PartnerSecrets, post
    from shared.services.partners.forwarding import ForwardDeps, handle_message
    from tests.aws_fixtures import FAKE_CREDENTIALS, REGION, create_world

    os.environ.update(FAKE_CREDENTIALS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Partner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/orders"
    with mock_aws():
        world = create_world()
        store = world.store.store_id
        s3, sm, ddb = (boto3.client(s, region_name=REGION) for s in ("s3", "secretsmanager", "dynamodb"))
        for pid, match in (("acme", "sku_prefixes: [ACME-]"), ("globex", "vendors: [Globex]")):
            text = f"match: {{{match}}}\nendpoint: {{orders: '{url}'}}\nauth: {{type: api_key}}\n"
            s3.put_object(Bucket=world.bucket, Key=f"partners/{store}/{pid}.yaml", Body=text.encode())
            sm.create_secret(
                Name=f"boomerang/partners/{store}/{pid}",
                SecretString=json.dumps({"api_key": "k", "signing_secret": "s"}),
            )
        calls: Counter[str] = Counter()
        for c in (s3, sm, ddb):
            c.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
        deps = ForwardDeps(
            catalog=PartnerCatalog(s3, world.bucket, 60),
            store=FulfilmentStore(ddb, world.table),
            secrets=PartnerSecrets(sm),
            post=post,
            send_task=lambda task, delay: None,
            dead_letter=lambda task: None,
        )

        def event(i: int) -> dict[str, Any]:
            products = [
                {"sku": "ACME-1", "name": "Tent", "price": 80, "quantity": 1},
                {"sku": "ACME-2", "name": "Stove", "price": 30, "quantity": 2},
                {"sku": "GX-9", "name": "Lamp", "price": 20, "vendor": "Globex"},
                {"sku": "OWN-1", "name": "Socks", "price": 10},
            ]
            address = {
                "name": "Ada Lovelace",
                "line1": "1 Harbour Street",
                "city": "Bristol",
                "postal_code": "BS1 4AA",
            }
            return {
                "detail": {
                    "store_id": store,
                    "event": "Order Completed",
                    "user_id": f"u{i}",
                    "received_at": time.time(),
                    "properties": {
                        "order_id": f"o-{i}",
                        "currency": "EUR",
                        "products": products,
                        "shipping_address": address,
                    },
                }
            }

        handle_message(event(-1), deps)  # warm: catalog, secrets, connections
        calls.clear()
        took = []
        for i in range(n):
            t0 = time.perf_counter()
            out = handle_message(event(i), deps)
            took.append(time.perf_counter() - t0)
            assert [r["outcome"] for r in out] == ["accepted", "accepted"], out
        item = ddb.get_item(
            TableName=world.table,
            Key={"pk": {"S": f"STORE#{store}#ORDER#o-0"}, "sk": {"S": "FWD#acme#create"}},
        )["Item"]
        item_kb = len(json.dumps(item)) / 1024
    server.shutdown()
    per_order = {k: v / n for k, v in calls.items()}
    # each forward: PutItem (open), 2 UpdateItems (claim, record), 1 strongly consistent GetItem
    writes = per_order.get("PutItem", 0) + per_order.get("UpdateItem", 0)
    wru = writes * math.ceil(item_kb)
    rru = per_order.get("GetItem", 0) * math.ceil(item_kb / 4)
    seconds = statistics.mean(took)
    costs = {
        "Lambda duration": seconds * FORWARDER_MB / 1024 * LAMBDA_GB_SECOND_ARM,
        "Lambda requests": LAMBDA_REQUEST / BATCH,
        "SQS (send by the rule, receive, delete)": SQS_REQUEST * (1 + 2 / BATCH),
        "DynamoDB writes": wru * DDB_WRU,
        "DynamoDB reads": rru * DDB_RRU,
        "Secrets Manager (cached 5 min)": per_order.get("GetSecretValue", 0) * SECRETS_CALL,
    }
    return {
        "n": n,
        "median_ms": statistics.median(took) * 1000,
        "p90_ms": statistics.quantiles(took, n=10)[-1] * 1000,
        "calls_per_order": per_order,
        "item_kb": item_kb,
        "costs_per_1000": {k: v * 1000 for k, v in costs.items()},
    }


def print_forwarding() -> None:
    r = forwarding()
    print(f"partners: {r['n']} orders, each to 2 partners (loopback, 201 at once) + 1 item the store ships")
    print(
        f"  forwarder time per order: median {r['median_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms (moto in-process)"
    )
    print(
        "  AWS calls per order: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["calls_per_order"].items()))
    )
    print(f"  forward record: {r['item_kb']:.2f} KB")
    total = sum(r["costs_per_1000"].values())
    print(f"  cost per 1,000 orders: ${total:.4f}")
    for k, v in r["costs_per_1000"].items():
        print(f"    {k:<40} ${v:.5f}")
