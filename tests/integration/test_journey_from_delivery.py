"""Post-purchase's review request, `after: 7d` `from: delivery`, through the real fold, trigger and
step λs on moto: a week after the order arrived when Boomerang knows it did (the store's own
Order Delivered, or every part a partner accepted reported delivered), a week after the order when
it does not."""

from __future__ import annotations

from typing import Any

from shared.adapters.fulfilment_store import FulfilmentStore
from shared.platform import keys
from shared.platform.aws import client, from_item, key
from tests.aws_fixtures import FixedClock, LambdaContext, World
from tests.integration.test_journey_engine import executions, identify, post, track

DAY = 86400
STORE = "shop-1"


def review_sent_at(state: dict[str, Any], ctx: LambdaContext, clock: FixedClock) -> float | None:
    """Runs the order's post-purchase instance until the review request goes out: when it did."""
    while True:
        clock.advance(state["wait_seconds"])
        state = run_one(state, ctx)
        if any(e.get("step_id") == "review" and e["type"] == "sent" for e in state["events"]):
            return clock.now
        if state["action"] != "wait":
            return None


def run_one(state: dict[str, Any], ctx: LambdaContext) -> dict[str, Any]:
    from functions.journey_step.handler import handler

    result: dict[str, Any] = handler({**state}, ctx)
    return result


def ordered(world: World, ctx: LambdaContext, clock: FixedClock, user: str, order_id: str) -> dict[str, Any]:
    order = track(user, "Order Completed", f"oc-{order_id}", order_id=order_id, total=40)
    post(world, ctx, identify(user), order, at=clock.now)
    [state] = [s for s in executions(world, "post-purchase") if s["instance"] == order_id]
    return state


def order_item(world: World, order_id: str) -> dict[str, Any]:
    resp = client("dynamodb").get_item(
        TableName=world.table, Key=key(keys.order_pk(STORE, order_id), keys.ORDER_SK)
    )
    return from_item(resp["Item"])


def test_the_review_request_waits_a_week_from_the_stores_own_delivery(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    t0 = fixed_clock.now
    state = ordered(world, ctx, fixed_clock, "dee", "ord-dee")
    # the store ships it itself and tells Boomerang it arrived three days later (twice: once counts)
    delivered = track("dee", "Order Delivered", "od-dee", order_id="ord-dee")
    post(world, ctx, delivered, at=t0 + 3 * DAY)
    post(world, ctx, {**delivered, "messageId": "od-dee-again"}, at=t0 + 4 * DAY)
    assert order_item(world, "ord-dee")["delivered_at"] == t0 + 3 * DAY
    fixed_clock.now = t0
    assert review_sent_at(state, ctx, fixed_clock) == t0 + 10 * DAY


def test_the_review_request_waits_for_every_partner_part(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    t0 = fixed_clock.now
    state = ordered(world, ctx, fixed_clock, "eve", "ord-eve")
    fulfilment = FulfilmentStore(client("dynamodb"), world.table)
    for partner, delivered_after in (("acme", 2 * DAY), ("ship-it", 5 * DAY)):
        record = {"store_id": STORE, "order_id": "ord-eve", "partner_id": partner, "action": "create"}
        assert fulfilment.open(
            {**record, "customer_id": "u:eve", "order_at": t0, "first_at": t0, "document": "{}"}
        )
        assert fulfilment.claim_attempt(STORE, "ord-eve", partner, "create", 1, t0, t0 - 1)
        fulfilment.record_attempt(
            STORE,
            "ord-eve",
            partner,
            "create",
            {"n": 1, "outcome": "accepted"},
            "accepted",
            {"accepted_at": t0 + 60},
        )
        fulfilment.record_shipment(STORE, "ord-eve", partner, "delivered", t0 + delivered_after, {})
    # a partner's Order Delivered is kept on its forward record, not on the order
    partner_event = track("eve", "Order Delivered", "od-eve", order_id="ord-eve", partner_id="acme")
    post(world, ctx, partner_event, at=t0 + 2 * DAY)
    assert (
        "delivered_at" not in order_item(world, "ord-eve")
        or order_item(world, "ord-eve")["delivered_at"] is None
    )
    fixed_clock.now = t0
    # the order arrived when its last part did (day 5): the review goes out on day 12
    assert review_sent_at(state, ctx, fixed_clock) == t0 + 12 * DAY


def test_without_a_known_delivery_the_review_request_counts_from_the_order(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    t0 = fixed_clock.now
    state = ordered(world, ctx, fixed_clock, "fay", "ord-fay")
    assert review_sent_at(state, ctx, fixed_clock) == t0 + 7 * DAY
