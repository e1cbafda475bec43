"""Boomerang's AWS resources on in-process moto, built from infra/description.py, for integration tests.

Everything the handlers read comes from here: the table with the described keys, the bus with its
rules delivering to SQS queues (so a test can read what was published), the templates bucket seeded
from infra/templates/, the signing secret, a verified SES sender, the journey state machine, and one
store with a write key. Handlers are called in-process with API Gateway / SQS shaped events.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from infra import description as d
from infra.local.server import proxy_event
from shared.adapters.profile_store import ProfileStore
from shared.adapters.segment_catalog import SegmentCatalog
from shared.adapters.store_directory import StoreDirectory
from shared.domain.api_calls import normalise
from shared.domain.events import CanonicalEvent
from shared.domain.stores import PostalAddress, Store
from shared.platform import settings as env
from shared.platform.aws import client
from shared.templates.publish import validate_prefix

REGION = "us-east-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bk_integration_test_key"
UNSUBSCRIBE_BASE_URL = "https://api.shop.example.com/prod"
SIGNING_SECRET = "integration-test-signing-secret-0123456789"
STORE = Store(
    store_id="shop-1",
    name="Acme Outdoor",
    url="https://shop.example.com",
    sender_email="hello@shop.example.com",
    sender_name="Acme Outdoor",
    unsubscribe_email="unsubscribe@shop.example.com",
    address=PostalAddress(lines=["1 Harbour Street"], city="Bristol", postal_code="BS1 4AA", country="GB"),
)

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "boomerang",
    "POWERTOOLS_METRICS_NAMESPACE": "Boomerang",
}


@dataclass
class LambdaContext:
    """What Powertools reads from a Lambda context."""

    function_name: str = "boomerang-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:boomerang-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "test"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class FixedClock:
    """Boomerang's clock (shared.platform.clock), stopped at `now` until a test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def sleep(self, seconds: float) -> None:
        """What shared.platform.clock.sleep does on this clock: time passes, nobody waits."""
        self.now += seconds


@dataclass
class World:
    table: str
    bus: str
    queues: dict[str, str]  # QueueSpec.id -> queue URL
    bucket: str
    secret_arn: str
    state_machine_arn: str
    api_key: str = API_KEY
    store: Store = field(default_factory=lambda: STORE)

    def env(self) -> dict[str, str]:
        return {
            env.TABLE_NAME: self.table,
            env.BUS_NAME: self.bus,
            env.TEMPLATES_BUCKET: self.bucket,
            env.STATE_MACHINE_ARN: self.state_machine_arn,
            env.EMAIL_CONFIGURATION_SET: "",
            env.UNSUBSCRIBE_BASE_URL: UNSUBSCRIBE_BASE_URL,
            env.SIGNING_SECRET_ARN: self.secret_arn,
            env.JOURNEY_QUEUE_URL: self.queues["journey"],
        }

    def profiles(self) -> ProfileStore:
        """As the profile λ builds it: with the bucket's segment files."""
        return ProfileStore(
            client("dynamodb"), self.table, segments=SegmentCatalog(client("s3"), self.bucket)
        )

    def published(self, queue: str = "profile") -> list[dict[str, Any]]:
        """Every bus event the queue behind `queue`'s rule received (consumed as read)."""
        sqs = client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            msgs = sqs.receive_message(
                QueueUrl=self.queues[queue], MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.queues[queue], ReceiptHandle=m["ReceiptHandle"])

    def executions(self) -> list[dict[str, Any]]:
        resp = client("stepfunctions").list_executions(stateMachineArn=self.state_machine_arn)
        return list(resp["executions"])


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION)


def use_shared_boto3_session() -> None:
    """Reuse one boto3 session across tests (inside mock_aws): service models load once, not per test.

    mock_aws patches boto3.DEFAULT_SESSION to None while active and restores it afterwards.
    """
    boto3.DEFAULT_SESSION = _session()


def create_world(templates: bool = True) -> World:
    """Create every resource; call inside an active mock_aws. `templates=False` leaves the default
    templates out (their validation takes seconds): for tests of ingest and the profile fold only."""
    ddb, events, sqs, s3 = (boto3.client(s, region_name=REGION) for s in ("dynamodb", "events", "sqs", "s3"))
    table = f"{d.APP_NAME}-table"
    ddb.create_table(**d.TABLE.create_table_args(table))
    events.create_event_bus(Name=d.BUS_NAME)
    queues: dict[str, str] = {}
    for rule in d.RULES:
        url = sqs.create_queue(QueueName=f"{d.APP_NAME}-{rule.queue}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues[rule.queue] = url
        if rule.schedule:
            continue  # tests fire the daily run themselves
        events.put_rule(Name=rule.id, EventBusName=d.BUS_NAME, EventPattern=json.dumps(rule.pattern))
        events.put_targets(Rule=rule.id, EventBusName=d.BUS_NAME, Targets=[{"Id": rule.queue, "Arn": arn}])

    bucket = f"{d.APP_NAME}-templates"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for path in sorted((ROOT / d.JOURNEYS_DIR).glob("*.yaml")):
        s3.put_object(Bucket=bucket, Key=f"{d.DEFAULT_JOURNEY_PREFIX}{path.name}", Body=path.read_bytes())
    for path in sorted((ROOT / d.SEGMENTS_DIR).glob("*.yaml")):
        s3.put_object(Bucket=bucket, Key=f"{d.DEFAULT_SEGMENT_PREFIX}{path.name}", Body=path.read_bytes())
    templates_dir = ROOT / d.TEMPLATES_DIR
    for path in sorted(p for p in templates_dir.rglob("*") if p.is_file() and templates):
        s3.put_object(
            Bucket=bucket,
            Key=f"templates/{path.relative_to(templates_dir).as_posix()}",
            Body=path.read_bytes(),
        )
    if templates:
        validate_prefix(s3, bucket)  # what the validator λ does when the defaults land: make them active

    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"{d.APP_NAME}-signing", SecretString=SIGNING_SECRET
    )["ARN"]
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=STORE.sender_email)

    step_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{d.APP_NAME}-journey-step"
    state_machine_arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=f"{d.APP_NAME}-{d.STATE_MACHINE.id}",
        definition=d.STATE_MACHINE.definition_json(step_arn),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{d.APP_NAME}-journey",
        type="STANDARD",
    )["stateMachineArn"]

    StoreDirectory(ddb, table).put(STORE, API_KEY)
    return World(
        table=table,
        bus=d.BUS_NAME,
        queues=queues,
        bucket=bucket,
        secret_arn=secret_arn,
        state_machine_arn=state_machine_arn,
    )


# --- events handed to handlers -----------------------------------------------------------------------


def basic_auth(api_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()}


def api_request(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> dict[str, Any]:
    """The API Gateway REST proxy event for one request (same shape the local emulator builds)."""
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    return proxy_event(method, path, query, hdrs, raw)


def canonical(calls: Iterable[dict[str, Any]], received_at: float | None = None) -> list[CanonicalEvent]:
    events, errors = normalise(
        list(calls), STORE.store_id, time.time() if received_at is None else received_at
    )
    assert not errors, errors
    return events


def bus_envelope(event: CanonicalEvent) -> dict[str, Any]:
    """What an EventBridge rule puts in the SQS message body."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event.type,
        "source": "boomerang.ingest",
        "account": ACCOUNT,
        "time": "2026-11-23T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": json.loads(event.model_dump_json()),
    }


def sqs_batch(bodies: Iterable[dict[str, Any] | str]) -> dict[str, Any]:
    """An SQS event source mapping batch; each record gets a fresh SQS messageId."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "rh-" + uuid.uuid4().hex,
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{d.APP_NAME}-profile",
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


@contextlib.contextmanager
def world_for_module(templates: bool = False) -> Iterator[World]:
    """One world for a whole test module (creating one takes seconds on a busy machine): for tests
    that each leave nothing behind, or that keep their own customers apart by id."""
    from shared.platform import clock
    from shared.platform.aws import reset_clients
    from shared.platform.settings import settings
    from shared.services import wiring

    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name, value in FAKE_CREDENTIALS.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
            mp.delenv(name, raising=False)
        use_shared_boto3_session()
        created = create_world(templates)
        for name, value in created.env().items():
            mp.setenv(name, value)
        settings.cache_clear()
        reset_clients()
        wiring.reset()
        try:
            yield created
        finally:
            clock.reset_clock()
            reset_clients()
            settings.cache_clear()
            wiring.reset()
