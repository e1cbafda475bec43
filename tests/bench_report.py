"""`make bench-report`: the report at scale on a synthetic 20,000-customer store. A benchmark, not a test.

The store's table items (profiles, orders, journey history, SES engagement: the shapes the fold and the
journey engine write, with ids only) are written as a DynamoDB export in AWS's own layout to
in-process moto S3; the report λ's collect phase (shared/services/analytics/report_job.py) then reads the export and
writes the store's report. Printed: items, export size, seconds to read and parse the export, to
compute the report, and the peak memory of the whole (the figure to hold against the Lambda's memory).

    python -m tests.bench_report [--customers 20000] [--stores 1]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time
import tracemalloc
from datetime import UTC, date, datetime
from typing import Any

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

DAY = 86400.0
START = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 5, 1, tzinfo=UTC).timestamp()
JOURNEYS = ("cart-abandonment", "win-back", "welcome", "post-purchase")


def store_items(store: str, customers: int, seed: int = 6) -> list[dict[str, Any]]:
    """A store's items as the table holds them (plain values; shared.aws.to_item encodes them)."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for n in range(customers):
        cust = f"u:c{n}"
        pk = f"STORE#{store}#CUST#{cust}"
        first = START - 300 * DAY + rng.random() * (END - START + 250 * DAY)
        orders, at, k = [], first, 0
        while at < END:
            total = round(rng.uniform(15, 160), 2)
            status = "cancelled" if rng.random() < 0.04 else "completed"
            refunded = round(total / 2, 2) if rng.random() < 0.05 else 0.0
            orders.append((f"o{n}-{k}", at, total, refunded, status))
            k += 1
            at += rng.expovariate(1 / (60 * DAY)) if rng.random() < 0.7 else 400 * DAY
            if rng.random() < 0.25:
                break
        items.append(
            {
                "pk": pk,
                "sk": "PROFILE",
                "customer_id": cust,
                "user_id": f"c{n}",
                "created_at": first,
                "locale": "en",
                "timezone": "Europe/Paris",
                "consent": {"email": "subscribed", "sms": "unknown"},
                "orders": {"count": len(orders), "total": sum(o[2] for o in orders), "first_order_at": first},
                "rfm": {"r": rng.randint(1, 5), "f": rng.randint(1, 5), "m": rng.randint(1, 5)},
                "segments": ["champions"] if rng.random() < 0.2 else [],
            }
        )
        for order_id, at, total, refunded, status in orders:
            items.append(
                {
                    "pk": f"STORE#{store}#ORDER#{order_id}",
                    "sk": "ORDER",
                    "order_id": order_id,
                    "customer_id": cust,
                    "at": at,
                    "total": total,
                    "refunded": refunded,
                    "status": status,
                    "currency": "EUR",
                }
            )
        for j in range(rng.randint(0, 3)):
            journey = rng.choice(JOURNEYS)
            entered = START + rng.random() * (END - START)
            group = "control" if rng.random() < 0.1 else "treatment"
            items.append(
                {
                    "pk": pk,
                    "sk": f"HIST#{entered:.3f}#{journey}#{j}",
                    "type": "entered",
                    "journey": journey,
                    "at": entered,
                    "group": group,
                }
            )
            if group == "treatment":
                message_id = f"ses-{n}-{j}"
                channel = rng.choice(("email", "email", "sms", "push"))
                items.append(
                    {
                        "pk": pk,
                        "sk": f"HIST#{entered + 3600:.3f}#{journey}#{j}s",
                        "type": "sent",
                        "journey": journey,
                        "at": entered + 3600,
                        "step_id": "step-1",
                        "variant": rng.choice(("a", "b")) if journey == JOURNEYS[0] else None,
                        "channel": channel,
                        "message_id": message_id,
                        "kind": "marketing",
                    }
                )
                if channel == "email":
                    engage: dict[str, Any] = {
                        "pk": f"STORE#{store}#MSG#{message_id}",
                        "sk": "ENGAGE",
                        "journey": journey,
                        "step": "step-1",
                        "delivered_at": entered + 3700,
                    }
                    if rng.random() < 0.4:
                        engage["opened_at"] = entered + 7200
                    items.append(engage)
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_report", description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--stores", type=int, default=1)
    args = parser.parse_args(argv)

    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3
    from moto import mock_aws

    from shared.adapters.report_data import export_lines
    from shared.services.analytics.report_job import ReportJobDeps, ReportTask, run_collect

    stores = [f"bench-{i}" for i in range(args.stores)]
    t0 = time.perf_counter()
    items = [item for s in stores for item in store_items(s, args.customers, seed=6 + stores.index(s))]
    generated = time.perf_counter() - t0
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bench-analytics")
        export_id = "01777600000000-b3nch000"
        folder = f"exports/2026-05-01/AWSDynamoDB/{export_id}"
        size, files = 0, 0
        chunk = 50_000  # items per data file (DynamoDB writes files of ~ tens of MB)
        for i in range(0, len(items), chunk):
            body = export_lines(items[i : i + chunk])
            s3.put_object(Bucket="bench-analytics", Key=f"{folder}/data/part{i // chunk}.json.gz", Body=body)
            size, files = size + len(body), files + 1

        class Exports:
            def describe_export(self, ExportArn: str) -> dict[str, Any]:  # noqa: N803
                return {
                    "ExportDescription": {
                        "ExportArn": ExportArn,
                        "ExportStatus": "COMPLETED",
                        "S3Prefix": "exports/2026-05-01",
                    }
                }

        deps = ReportJobDeps(
            ddb=Exports(),
            s3=s3,
            table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/bench",
            bucket="bench-analytics",
            store_ids=lambda: stores,
            send=lambda task, delay: None,
        )
        task = ReportTask(
            phase="collect",
            run_date=date(2026, 5, 1),
            export_arn=f"arn:aws:dynamodb:us-east-1:123456789012:table/bench/export/{export_id}",
        )
        del items  # what the λ holds is what it reads back from S3
        started = time.perf_counter()
        outcome = run_collect(task, deps)
        took = time.perf_counter() - started
        # again under tracemalloc (which slows Python down several times): the peak, not the time
        tracemalloc.start()
        run_collect(task, deps)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        html = s3.head_object(Bucket="bench-analytics", Key=f"metrics/{stores[0]}/latest.html")[
            "ContentLength"
        ]
        js = s3.head_object(Bucket="bench-analytics", Key=f"metrics/{stores[0]}/latest.json")["ContentLength"]
    per_store = [r["seconds"] for r in outcome.reports.values()]
    print(
        f"report at scale: {args.stores} store(s) x {args.customers:,} customers (generated in {generated:.1f} s)"
    )
    print(
        f"  export: {outcome.items_read:,} items in {files} gzip'd DynamoDB JSON file(s), {size / 1e6:.1f} MB"
    )
    print(f"  collect: {took:.1f} s in all (read + parse + {len(per_store)} report(s) + 4 writes each)")
    print(
        f"  per report (collect + figures): {max(per_store):.1f} s; HTML {html / 1e3:.0f} kB, JSON {js / 1e3:.0f} kB"
    )
    print(f"  peak Python memory during collect: {peak / 1e6:.0f} MB (tracemalloc)")
    print(f"  max RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")
    for store, figures in outcome.reports.items():
        print(f"  {store}: {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
