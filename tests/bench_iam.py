"""`python -m tests.bench iam`: what recording AWS calls costs the tests, and what the IAM check costs.

The recorder (infra/aws_calls.py) wraps every botocore call during the integration and e2e tests:
this times 2,000 DynamoDB GetItem calls on in-process moto from inside a handler's frame, with and
without it, and the recording step alone (who is calling, what IAM authorises). Then the check
itself: synthesising the stack and evaluating every recorded call against its role. A benchmark:
it asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

N = 2000


def _timed_calls(ddb: Any, table: str) -> float:
    # run with this module's frame looking like the profile λ's handler (what the recorder looks for)
    t0 = time.perf_counter()
    for i in range(N):
        ddb.get_item(TableName=table, Key={"pk": {"S": f"p{i % 50}"}, "sk": {"S": "s"}})
    return (time.perf_counter() - t0) / N


def print_iam() -> None:
    import boto3
    from moto import mock_aws

    from infra import aws_calls, iam_check

    for k, v in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(k, v)
    os.environ["TABLE_NAME"] = "bench-table"
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="bench-table",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        globals()["__name__"] = "functions.profile.handler"  # calls below are "the profile λ's"
        try:
            plain = statistics.median(_timed_calls(ddb, "bench-table") for _ in range(3))
            recorder = aws_calls.Recorder().install()
            try:
                recorded = statistics.median(_timed_calls(ddb, "bench-table") for _ in range(3))
            finally:
                recorder.uninstall()
            frame = sys._getframe()
            t0 = time.perf_counter()
            for _ in range(N):
                recorder.observe(ddb, "GetItem", {"TableName": "bench-table"}, frame)
            observe = (time.perf_counter() - t0) / N
        finally:
            globals()["__name__"] = "tests.bench_iam"
    print(f"\nRecording AWS calls ({N} GetItem on in-process moto, from a handler's frame):")
    print(
        f"  per call: {plain * 1e6:.0f} µs plain, {recorded * 1e6:.0f} µs recorded (+{(recorded - plain) * 1e6:.0f} µs)"
    )
    print(f"  the recording step alone: {observe * 1e6:.1f} µs per call; recorded: {sorted(recorder.calls)}")

    t0 = time.perf_counter()
    template = iam_check.synthesise()
    synth = time.perf_counter() - t0
    calls = aws_calls.load_snapshot()
    t0 = time.perf_counter()
    report = iam_check.check(template, calls)
    took = time.perf_counter() - t0
    print("\nThe IAM check (python -m infra.iam_check):")
    print(f"  synthesis (no cdk-nag, no asset dependencies): {synth:.1f} s")
    print(
        f"  {len(calls)} recorded calls against {len({w for w, _, _ in calls})} roles: {took * 1000:.0f} ms; "
        f"{len(report.ungranted)} ungranted; {len(report.unused)} granted (action, resource) pairs unused, "
        f"{len(report.partly_used)} used on only part of their resources"
    )
