"""Segments on moto: the fold keeps RFM scores, stage and membership items; the daily run
recomputes the store's quintile edges and rescores through indexes; members() pages the by-segment
index; a journey may require a segment at its entry."""

from __future__ import annotations

import json
from typing import Any

from functions.journey_step.handler import handler as step_handler
from functions.journey_trigger.handler import handler as trigger_handler
from shared.adapters.profile_store import ProfileStore
from shared.adapters.segment_catalog import SegmentCatalog
from shared.adapters.segment_store import SegmentStore
from shared.platform import indexes, keys
from shared.platform.aws import client, from_item
from tests.aws_fixtures import REGION, FixedClock, LambdaContext, World, canonical, sqs_batch

DAY = 86400.0
T0 = 1_772_366_400.0  # 2026-03-01 12:00 UTC


def profiles(world: World) -> ProfileStore:
    # fresh caches: what a new container of the profile λ sees
    return ProfileStore(client("dynamodb"), world.table, segments=SegmentCatalog(client("s3"), world.bucket))


def fold(world: World, *calls: dict[str, Any], at: float) -> None:
    for event in canonical(list(calls), at):
        profiles(world).apply(event)


def identify(user: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user,
        "messageId": f"id-{user}",
        "traits": {"email": f"{user}@example.com", "consent": {"email": "subscribed"}},
    }


def order(user: str, n: int, total: float) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"order-{user}-{n}",
        "properties": {"order_id": f"{user}-{n}", "total": total, "currency": "EUR"},
    }


def sqs(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    batch = sqs_batch(bodies)
    for r in batch["Records"]:
        r["awsRegion"] = REGION
    return batch


def daily_run(world: World, ctx: LambdaContext) -> None:
    """The 12:00 UTC schedule, then every task it queued (as the journey queue would deliver them)."""
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    assert trigger_handler(sqs([scheduled]), ctx) == {"batchItemFailures": []}
    queue = client("sqs")
    while True:
        msgs = queue.receive_message(QueueUrl=world.queues["journey"], MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not msgs:
            return
        assert trigger_handler(sqs([json.loads(m["Body"]) for m in msgs]), ctx) == {"batchItemFailures": []}
        for m in msgs:
            queue.delete_message(QueueUrl=world.queues["journey"], ReceiptHandle=m["ReceiptHandle"])


def member_items(world: World, customer: str) -> list[str]:
    resp = client("dynamodb").query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :seg)",
        ExpressionAttributeValues={":pk": {"S": keys.customer_pk("shop-1", customer)}, ":seg": {"S": "SEG#"}},
    )
    return sorted(from_item(i)["segment"] for i in resp["Items"])


def all_members(world: World, segment: str) -> list[str]:
    out: list[str] = []
    cursor = None
    while True:
        page, cursor = SegmentStore(client("dynamodb"), world.table).members("shop-1", segment, 2, cursor)
        out += page
        if cursor is None:
            return sorted(out)


def five_buyers(world: World) -> None:
    """c1..c5: c1 ordered 5 times (latest 2 days ago) ... c5 once, 80 days ago."""
    for i in range(1, 6):
        user = f"c{i}"
        fold(world, identify(user), at=T0 - 200 * DAY)
        for n in range(6 - i):  # c1: 5 orders, c5: 1
            fold(world, order(user, n, 100.0 * (6 - i)), at=T0 - (i * 20 - 18) * DAY - n * DAY)


def test_daily_run_scores_every_buyer_and_the_fold_keeps_memberships(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given five buyers and no edges yet: nobody has an RFM score, only lifecycle segments
    fixed_clock.now = T0 - 200 * DAY
    five_buyers(world)
    fixed_clock.now = T0
    store = profiles(world)
    c1 = store.load_profile("shop-1", "u:c1")
    assert c1 is not None and c1.rfm is None and c1.lifecycle == "repeat-buyer"
    assert member_items(world, "u:c5") == ["first-time-buyers"]

    # When the daily run computes the store's edges and rescores
    daily_run(world, ctx)

    # Then the edges are on the store item (recency in days: 2, 22, 42, 62, 82)
    edges = store._get(keys.store_pk("shop-1"), "RFM")
    assert edges is not None and edges["buyers"] == 5
    assert edges["recency_days"] == [2, 22, 42, 62] and edges["frequency"] == [1, 2, 3, 4]
    scored = {c: profiles(world).load_profile("shop-1", f"u:{c}") for c in ("c1", "c2", "c3", "c4", "c5")}
    assert {c: (p.rfm.r, p.rfm.f, p.rfm.m, p.rfm.group) for c, p in scored.items() if p and p.rfm} == {
        "c1": (5, 5, 5, "champions"),
        "c2": (4, 4, 4, "loyal"),
        "c3": (3, 3, 3, "loyal"),
        "c4": (2, 2, 2, "hibernating"),
        "c5": (1, 1, 1, "lost"),
    }
    # And membership is queryable from the by-segment index, a page at a time
    assert all_members(world, "champions") == ["u:c1"]
    assert all_members(world, "loyal") == ["u:c2", "u:c3"]
    assert member_items(world, "u:c1") == ["champions"]

    # A second daily run the same day rescores nobody and writes nothing (idempotent)
    before = {c: profiles(world).load_profile("shop-1", f"u:{c}") for c in ("c1", "c2", "c3", "c4")}
    daily_run(world, ctx)
    after = {c: profiles(world).load_profile("shop-1", f"u:{c}") for c in ("c1", "c2", "c3", "c4")}
    assert {c: p.version for c, p in after.items() if p} == {c: p.version for c, p in before.items() if p}

    # When c5 orders again, the fold rescores with the store's latest edges in its own transaction
    fixed_clock.now = T0 + 60
    fold(world, order("c5", 9, 50.0), at=fixed_clock.now)
    c5 = profiles(world).load_profile("shop-1", "u:c5")
    assert c5 is not None and c5.rfm is not None
    assert (c5.rfm.r, c5.rfm.f, c5.rfm.group, c5.lifecycle) == (5, 2, "promising", "repeat-buyer")
    assert c5.segments == member_items(world, "u:c5") == []  # left first-time-buyers

    # And a replayed order changes nothing
    fold(world, order("c5", 9, 50.0), at=fixed_clock.now)
    assert profiles(world).load_profile("shop-1", "u:c5") == c5


def test_daily_run_rechecks_customers_whose_stage_changes_with_time(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    fixed_clock.now = T0 - 200 * DAY
    five_buyers(world)
    fixed_clock.now = T0
    daily_run(world, ctx)
    c5 = profiles(world).load_profile("shop-1", "u:c5")
    assert c5 is not None and c5.lifecycle == "first-time-buyer"  # ordered 82 days ago
    risk_day = str(c5.at_risk_on)
    assert risk_day == "2026-03-09"  # 90 days after the order
    # the profile waits on the segments-due index for the day time alone changes it
    item = client("dynamodb").get_item(
        TableName=world.table, Key={"pk": {"S": keys.customer_pk("shop-1", "u:c5")}, "sk": {"S": "PROFILE"}}
    )["Item"]
    assert item[indexes.SEGMENTS_DUE.partition]["S"] == indexes.segments_due_key("shop-1", "2026-03-09")

    # Eight days later the daily run finds c5 through that index: at risk, in the at-risk segment
    fixed_clock.now = T0 + 8 * DAY
    daily_run(world, ctx)
    c5 = profiles(world).load_profile("shop-1", "u:c5")
    assert c5 is not None and c5.lifecycle == "at-risk"
    assert "at-risk" in member_items(world, "u:c5")
    assert all_members(world, "at-risk") == ["u:c5"]
    # Recency is relative to the store: everyone aged 8 days, the edges moved with them, and c1
    # still scores R5; c5's scores did not change either
    edges = profiles(world)._get(keys.store_pk("shop-1"), "RFM")
    assert edges is not None and edges["recency_days"] == [10, 30, 50, 70]
    c1 = profiles(world).load_profile("shop-1", "u:c1")
    assert c1 is not None and c1.rfm is not None and c1.rfm.r == 5
    assert c5.rfm is not None and (c5.rfm.r, c5.rfm.f) == (1, 1)


def test_a_journey_may_require_a_segment_at_entry(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    journey = """
name: VIP thanks
per: customer
trigger: {event: Product Viewed}
entry:
  segment: champions
steps:
  - id: thanks
    template: welcome
"""
    client("s3").put_object(Bucket=world.bucket, Key="journeys/shop-1/vip-thanks.yaml", Body=journey.encode())
    fixed_clock.now = T0 - 200 * DAY
    five_buyers(world)
    fixed_clock.now = T0
    daily_run(world, ctx)

    outcomes: dict[str, list[dict[str, Any]]] = {}
    for user in ("c1", "c2"):
        viewed = {
            "type": "track",
            "userId": user,
            "event": "Product Viewed",
            "messageId": f"view-{user}",
            "properties": {"sku": "TENT-2"},
        }
        [event] = canonical([viewed], fixed_clock.now)
        profiles(world).apply(event)
        from tests.aws_fixtures import bus_envelope

        assert trigger_handler(sqs([bus_envelope(event)]), ctx) == {"batchItemFailures": []}
    sfn = client("stepfunctions")
    for e in world.executions():
        state = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        if state["journey"] != "vip-thanks":
            continue
        events: list[dict[str, Any]] = []
        for _ in range(5):  # Step Functions' loop: a customer turned away is looked at once more
            fixed_clock.advance(state["wait_seconds"])
            state = step_handler({**state}, ctx)
            events += state["events"]
            if state["action"] != "wait":
                break
        outcomes[state["customer_id"]] = events
    # c1 is a champion and gets the message; c2 (loyal) is stopped at the door, with the reason
    assert [e["type"] for e in outcomes["u:c1"] if e["type"] == "sent"] == ["sent"]
    [exited] = [e for e in outcomes["u:c2"] if e["type"] == "exit"]
    assert exited["reason"] == "not eligible: not in segment champions: RFM group loyal not in champions"


def test_a_visitor_merged_into_a_customer_takes_their_memberships_along(
    world: World, fixed_clock: FixedClock
) -> None:
    # Given an anonymous visitor who ordered once: a first-time buyer under the visitor's id
    fixed_clock.now = T0
    anon_order = {
        "type": "track",
        "anonymousId": "v-1",
        "event": "Order Completed",
        "messageId": "order-v-1",
        "properties": {"order_id": "v-1-0", "total": 40, "currency": "EUR"},
    }
    fold(world, anon_order, at=T0)
    assert member_items(world, "a:v-1") == ["first-time-buyers"]

    # When they sign in, the fold merges the visitor into the customer in one transaction
    fold(world, {**identify("zoe"), "anonymousId": "v-1", "messageId": "id-zoe-v1"}, at=T0 + 60)

    # Then the membership moved: the visitor is in no segment, the customer is
    assert member_items(world, "a:v-1") == []
    assert member_items(world, "u:zoe") == ["first-time-buyers"]
    assert all_members(world, "first-time-buyers") == ["u:zoe"]


def test_an_s3_outage_fails_the_fold_instead_of_emptying_segments(
    world: World, fixed_clock: FixedClock
) -> None:
    import pytest
    from botocore.exceptions import ClientError

    fixed_clock.now = T0
    fold(world, identify("ada"), order("ada", 0, 30.0), at=T0)
    assert member_items(world, "u:ada") == ["first-time-buyers"]
    store = profiles(world)
    s3 = store.segments._files._s3

    def down(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Reduce your request rate."}}, "ListObjectsV2"
        )

    [event] = canonical([order("ada", 1, 30.0)], T0 + 60)
    # a context of its own: undoing the test's monkeypatch would undo the world's environment too
    with pytest.MonkeyPatch.context() as outage:
        outage.setattr(s3, "get_paginator", lambda name: type("P", (), {"paginate": staticmethod(down)})())
        with pytest.raises(ClientError):
            store.apply(event)
    # nothing committed: the message is retried once S3 answers, and ada is still a member
    assert member_items(world, "u:ada") == ["first-time-buyers"]
    assert profiles(world).apply(event).status == "applied"
    assert member_items(world, "u:ada") == []  # a repeat buyer now
