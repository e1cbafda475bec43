"""The emulator's memory stays flat over a long run: what AWS forgets, it forgets (issue 16.8).

moto keeps every journey execution with its whole history, every archived bus event, every TTL'd
item, every sent message and every deleted receipt handle: main grew ~2 MB per accepted event.
Here each simulated event leaves what a real one leaves in moto (an execution with a history, an
archived event, an expired idempotency item, a sent email, an SMS, a deleted SQS message); the
sweeper runs as in `make local`, with caps made small so a short run reaches them, and each kind
must stay within its bound. tracemalloc measures what stays per event after a warm-up block, over
three more blocks: below GROWTH_BOUND bytes (it measures about 0.1 KB here; the bound leaves room
for a loaded machine's stray allocations, not for anything kept per event: the smallest thing
moto keeps per event, a receipt handle or an SMS record, is a few hundred bytes, an execution or
an email several KB, so an unswept kind shows above it).

The ~11 KB per event this harness used to show were werkzeug's access-log records of moto's
server, kept by pytest's log capture: the emulator quiets that logger (Emulator.start), so the
harness does too. `python -m tests.bench emulator` measures the whole emulator through its front
door in a `boomerang local` subprocess.
"""

from __future__ import annotations

import gc
import json
import logging
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from infra.local import retention
from shared.platform import clock
from tests.aws_fixtures import ACCOUNT, FAKE_CREDENTIALS, REGION

TABLE = "retention"
BLOCK = 25  # events per measured block
GROWTH_BOUND = 2048  # bytes a simulated event may leave behind, after the warm-up
PAD = "x" * 2000  # a journey state's size


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for cap in ("EXECUTION_CAP", "HISTORY_CAP", "ARCHIVE_CAP", "OUTBOX_CAP", "HANDLES_CAP"):
        monkeypatch.setattr(retention, cap, 10)
    # moto as the emulator runs it: a ThreadedMotoServer in this process, on loopback
    # the emulator's moto server logs at ERROR only (Emulator.start): an access-log record per request
    # would otherwise be kept by pytest's log capture and measured here as the emulator's growth
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("MOTO_PORT", str(port))
    requests.post(
        f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
    )
    try:
        c: dict[str, Any] = {
            s: boto3.client(s, region_name=REGION, endpoint_url=url)  # type: ignore[call-overload]
            for s in ("dynamodb", "events", "sqs", "ses", "sns", "stepfunctions", "iam")
        }
        c["dynamodb"].create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        bus = c["events"].create_event_bus(Name="bus")["EventBusArn"]
        c["events"].create_archive(ArchiveName="archive", EventSourceArn=bus, RetentionDays=30)
        c["ses"].verify_email_identity(EmailAddress="shop@example.com")
        c["queue"] = c["sqs"].create_queue(QueueName="q")["QueueUrl"]
        role = c["iam"].create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        steps = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(8)}
        steps["S8"] = {"Type": "Succeed"}
        c["sm"] = c["stepfunctions"].create_state_machine(
            name="journey", definition=json.dumps({"StartAt": "S0", "States": steps}), roleArn=role
        )["stateMachineArn"]
        yield c
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        # moto's config is process-wide: put back what the integration tests' mock_aws expects
        requests.post(
            f"{url}/moto-api/config", json={"stepfunctions": {"execute_state_machine": False}}, timeout=10
        )
        server.stop()
        werkzeug.setLevel(level)


def _event(c: dict[str, Any], i: int) -> None:
    """What one accepted event leaves behind in moto, in kind and roughly in size."""
    c["stepfunctions"].start_execution(
        stateMachineArn=c["sm"], name=f"e{i}", input=json.dumps({"pad": PAD, "i": i})
    )
    c["events"].put_events(
        Entries=[
            {"EventBusName": "bus", "Source": "s", "DetailType": "d", "Detail": json.dumps({"pad": PAD})}
        ]
    )
    c["dynamodb"].put_item(
        TableName=TABLE,
        Item={"pk": {"S": f"idem#{i}"}, "pad": {"S": PAD}, "expires_at": {"N": str(int(clock.now_ts()) - 1)}},
    )
    c["ses"].send_raw_email(
        RawMessage={"Data": f"From: shop@example.com\nTo: a{i}@example.com\nSubject: hi\n\n{PAD}"}
    )
    c["sns"].publish(PhoneNumber="+447700900123", Message="Your cart is waiting")
    c["sqs"].send_message(QueueUrl=c["queue"], MessageBody=PAD)
    for m in c["sqs"].receive_message(QueueUrl=c["queue"], MaxNumberOfMessages=10)["Messages"]:
        c["sqs"].delete_message(QueueUrl=c["queue"], ReceiptHandle=m["ReceiptHandle"])


def _block(c: dict[str, Any], start: int, sweeper: retention.Sweeper | None) -> int:
    for i in range(start, start + BLOCK):
        _event(c, i)
    deadline = time.monotonic() + 30
    while any(
        e["status"] == "RUNNING"
        for e in c["stepfunctions"].list_executions(stateMachineArn=c["sm"])["executions"]
    ):
        assert time.monotonic() < deadline, "executions did not finish"
        time.sleep(0.05)
    if sweeper is not None:
        sweeper.sweep()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _growth(c: dict[str, Any], sweeper: retention.Sweeper | None) -> list[float]:
    """Bytes kept per event in each of three blocks after a warm-up block (the caps reached)."""
    tracemalloc.start(1)
    try:
        mem = [_block(c, 0, sweeper)]
        for b in range(1, 4):
            mem.append(_block(c, b * BLOCK, sweeper))
    finally:
        tracemalloc.stop()
    return [(after - before) / BLOCK for before, after in zip(mem, mem[1:], strict=False)]


def test_the_sweeper_bounds_what_moto_keeps_per_event(aws: dict[str, Any]) -> None:
    from moto.dynamodb.models import dynamodb_backends
    from moto.ses.models import ses_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    clock.set_clock(clock.CompressedClock(3600))  # as `make local` runs
    sweeper = retention.Sweeper(ACCOUNT, REGION, TABLE, "expires_at")
    growth = _growth(aws, sweeper)
    clock.reset_clock()
    assert sweeper.forgotten["ttl_items"] == 4 * BLOCK  # every expired item went, as TTL does
    assert len(dynamodb_backends[ACCOUNT][REGION].tables[TABLE].items) == 0
    executions = [
        e for sm in stepfunctions_parser_backends[ACCOUNT][REGION].state_machines for e in sm.executions
    ]
    assert len(executions) <= retention.EXECUTION_CAP
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) <= retention.OUTBOX_CAP
    assert sweeper.forgotten["archived_events"] > 0 and sweeper.forgotten["untracked"] > 0
    # and nothing else stays: over the three blocks (one block alone is noisier: a dict resizing),
    # memory is flat within the bound
    print(f"bytes per event, blocks 2-4: {growth}")
    assert sum(growth) / len(growth) < GROWTH_BOUND, growth
