"""The functions no other integration test reaches through its handler, run through it here.

The IAM check (infra/iam_check.py) can only prove the calls it saw: the recorder (infra/aws_calls.py)
attributes a call to a function when that function's handler is on the stack, so these drive the key
rotation λ through Secrets Manager's four steps and the partner forwarder λ through one SQS batch.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from functions.key_rotation.handler import handler as rotation_handler
from shared.adapters import partner_http
from shared.adapters.fulfilment_store import FulfilmentStore
from shared.adapters.partner_http import Answer
from shared.platform import settings as env
from shared.platform.settings import settings
from shared.services import wiring
from tests.aws_fixtures import REGION, FixedClock, LambdaContext, World, sqs_batch


def test_key_rotation_handler_runs_the_four_rotation_steps(
    world: World, fixed_clock: FixedClock, ctx: LambdaContext
) -> None:
    token = str(uuid.uuid4())
    outcomes = [
        rotation_handler({"SecretId": world.secret_arn, "ClientRequestToken": token, "Step": step}, ctx)
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret")
    ]
    assert [o["step"] for o in outcomes] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    sm = boto3.client("secretsmanager", region_name=REGION)
    stages = sm.describe_secret(SecretId=world.secret_arn)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[token]


def test_partner_forwarder_handler_forwards_an_order_and_records_the_answer(
    world: World, fixed_clock: FixedClock, ctx: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer:
        sent.append(url)
        return Answer(200, '{"id": "A-1"}', None, 5)

    monkeypatch.setattr(partner_http, "post", post)  # the partner's endpoint: no socket leaves the test
    dlq = boto3.client("sqs", region_name=REGION).create_queue(QueueName="boomerang-partners-dlq")["QueueUrl"]
    monkeypatch.setenv(env.PARTNERS_QUEUE_URL, world.queues["partners"])
    monkeypatch.setenv(env.PARTNERS_DLQ_URL, dlq)
    settings.cache_clear()
    wiring.reset()
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(
        Bucket=world.bucket,
        Key=f"partners/{world.store.store_id}/acme.yaml",
        Body=b'match: {sku_prefixes: [ACME-]}\nendpoint: {orders: "https://acme.example/orders"}\n'
        b"auth: {type: api_key}\n",
    )
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"boomerang/partners/{world.store.store_id}/acme",
        SecretString=json.dumps({"api_key": "k", "signing_secret": "s"}),
    )
    event: dict[str, Any] = {
        "detail": {
            "store_id": world.store.store_id,
            "event": "Order Completed",
            "user_id": "ada",
            "received_at": fixed_clock.now,
            "properties": {"order_id": "o-1", "products": [{"sku": "ACME-1"}]},
        }
    }
    from functions.partner_forwarder.handler import handler as forwarder

    result = forwarder(sqs_batch([event]), ctx)
    assert result == {"batchItemFailures": []}
    assert sent == ["https://acme.example/orders"]
    store = FulfilmentStore(boto3.client("dynamodb", region_name=REGION), world.table)
    record = store.get(world.store.store_id, "o-1", "acme", "create")
    assert record is not None and record["status"] == "accepted"
