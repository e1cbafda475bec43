"""End to end: a customer erased through the API on `boomerang local` (time x3600).

Ada has a profile, a merged anonymous visitor, a running cart journey that has emailed her, segment
memberships, a push device and an offer code; Bob shops beside her. The store's backend asks for
her erasure (POST /v1/customers/erase); the privacy λ takes it from the bus. Then a scan of the
whole table finds nothing of her, her cart journey sends nothing more while Bob's carries on,
replaying the bus archive (her old events included) creates nothing, and Bob's export is as it was.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra import description as d
from infra.local.emulator import resource_name
from shared.adapters.offer_store import OfferStore
from shared.domain.journey_decisions import execution_name
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
ADA, BOB, VISITOR = f"ada-{RUN}", f"bob-{RUN}", f"visitor-{RUN}"
ADA_EMAIL, ADA_PHONE = f"ada.{RUN}@example.com", "+44 20 7946 0958"
HOUR = 3600


def _aws(local: Local) -> tuple[dict[str, Any], dict[str, Any]]:
    health = local.request("GET", "/_local/health")[1]
    kwargs = {
        "endpoint_url": health["aws_endpoint"],
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    return kwargs, health


def _scan(local: Local) -> list[str]:
    kwargs, health = _aws(local)
    ddb = boto3.client("dynamodb", **kwargs)
    items, args = [], {"TableName": health["table"]}
    while True:
        resp = ddb.scan(**args)
        items += [json.dumps(i).lower() for i in resp["Items"]]
        if "LastEvaluatedKey" not in resp:
            return items
        args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _hers(items: list[str]) -> list[str]:
    needles = (ADA, VISITOR, ADA_EMAIL, "+442079460958", f"cart-{ADA}")
    return [i[:160] for i in items if any(n.lower() in i for n in needles)]


def _export(local: Local, customer: str) -> dict[str, Any]:
    status, body = local.request("GET", f"/v1/customers/export?customer={customer}", headers=_auth(local))
    assert status == 200, body
    return {k: v for k, v in body.items() if k not in ("generated_at", "journey_history", "messages_sent")}


def _auth(local: Local) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{local.key}:".encode()).decode()}


def _sent_to(local: Local, customer: str) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m.get("customer_id") == f"u:{customer}"]


def test_an_erased_customer_leaves_nothing_and_is_not_brought_back(local: Local) -> None:
    kwargs, health = _aws(local)
    replay_from = datetime.now(UTC) - timedelta(minutes=1)
    # Given Ada, first an anonymous visitor, then signed in with consent, a device and a cart
    ada = [
        {
            "type": "track",
            "anonymousId": VISITOR,
            "event": "Product Viewed",
            "messageId": f"v-{RUN}",
            "properties": {"product_id": "p1", "sku": "S1", "name": "Boots", "price": 50},
        },
        {
            "type": "identify",
            "userId": ADA,
            "anonymousId": VISITOR,
            "messageId": f"i-{RUN}",
            "traits": {
                "email": ADA_EMAIL,
                "phone": ADA_PHONE,
                "first_name": "Ada",
                "consent": {"email": "subscribed", "sms": "subscribed"},
                "consent_source": "e2e",
            },
        },
        {"type": "track", "userId": ADA, "event": "Signed Up", "messageId": f"s-{RUN}", "properties": {}},
        {
            "type": "track",
            "userId": ADA,
            "event": "Device Registered",
            "messageId": f"d-{RUN}",
            "properties": {"token": f"tok-{RUN}", "platform": "fcm"},
        },
        {
            "type": "track",
            "userId": ADA,
            "event": "Product Added",
            "messageId": f"a-{RUN}",
            "properties": {"cart_id": f"cart-{ADA}", "product_id": "p1", "price": 50, "quantity": 1},
        },
    ]
    bob = [
        {
            "type": "identify",
            "userId": BOB,
            "messageId": f"ib-{RUN}",
            "traits": {"email": f"{BOB}@example.com", "consent": {"email": "subscribed"}},
        },
        {
            "type": "track",
            "userId": BOB,
            "event": "Product Added",
            "messageId": f"ab-{RUN}",
            "properties": {"cart_id": f"cart-{BOB}", "product_id": "p2", "price": 20, "quantity": 1},
        },
    ]
    assert local.post("/v1/batch", {"batch": ada + bob})[0] == 200
    # her cart journey emails her an hour on (a second here)
    local.wait_for(lambda: _sent_to(local, ADA), 30, "Ada's first cart email")
    OfferStore(boto3.client("dynamodb", **kwargs), health["table"]).upload(
        "demo", f"pool-{RUN}", [f"CODE-{RUN}"]
    )
    assert OfferStore(boto3.client("dynamodb", **kwargs), health["table"]).draw(
        "demo", f"pool-{RUN}", f"cart-abandonment|cart-{ADA}|reminder-2"
    )
    held = _scan(local)
    assert any(f"cust#u:{ADA}".lower() in i and '"seg#' in i for i in held), "a segment membership"
    assert any(f"u:{ADA}".lower() in i and "tok-" in i for i in held), "a device"
    bob_before = _export(local, f"u:{BOB}")

    # When the store's backend asks for her erasure
    status, body = local.request(
        "POST",
        "/v1/customers/erase",
        json.dumps({"email": ADA_EMAIL.upper()}).encode(),
        {**_auth(local), "Content-Type": "application/json"},
    )
    assert status == 202 and ADA not in json.dumps(body)

    # Then a table scan soon finds nothing with her id, email, phone, visitor id or cart
    local.wait_for(lambda: not _hers(_scan(local)), 30, "her items to be gone")
    sfn = boto3.client("stepfunctions", **kwargs)
    cart_run = sfn.describe_execution(
        executionArn=health["state_machine_arn"].replace(":stateMachine:", ":execution:")
        + ":"
        + execution_name("demo", "cart-abandonment", f"cart-{ADA}")
    )
    assert cart_run["status"] == "ABORTED"
    emails_before = len(_sent_to(local, ADA))

    # And replaying the archive (her old events with everyone else's) creates nothing of hers
    events = boto3.client("events", **kwargs)
    archive = events.describe_archive(ArchiveName=f"{d.BUS_NAME}-archive")["ArchiveArn"]
    bus = events.describe_event_bus(Name=d.BUS_NAME)["Arn"]
    events.start_replay(
        ReplayName=f"replay-{RUN}",
        EventSourceArn=archive,
        EventStartTime=replay_from,
        EventEndTime=datetime.now(UTC) + timedelta(seconds=5),
        Destination={"Arn": bus},
    )
    # her cart journey's next reminder (24 h after the add) would be due now: Bob's arrives, hers not
    local.wait_for(lambda: len(_sent_to(local, BOB)) >= 2, 60, "Bob's day-after reminder")
    time.sleep(3)  # the replayed events have been through the profile and journey queues
    assert _hers(_scan(local)) == []
    assert len(_sent_to(local, ADA)) == emails_before
    # And Bob's export is as it was (his messages go on, his data is untouched)
    assert _export(local, f"u:{BOB}") == bob_before


def test_the_emulators_buckets_carry_the_stacks_lifecycle_rules(local: Local) -> None:
    """Erasure leans on exports/ expiring within 30 days (shared/services/privacy/erase.py): the
    emulator's buckets carry the rules the stack states, and its sweeper runs them (moto does not;
    tests/integration/test_local_s3_lifecycle.py)."""
    kwargs, health = _aws(local)
    s3 = boto3.client("s3", **kwargs)
    for bucket, rules in (
        (resource_name("analytics", "bucket"), d.ANALYTICS_LIFECYCLE),
        (health["templates_bucket"], d.TEMPLATES_LIFECYCLE),
    ):
        assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == [e.s3_rule() for e in rules]
