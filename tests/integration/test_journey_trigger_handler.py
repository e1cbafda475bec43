"""The journey-trigger λ on moto Step Functions: one execution per cart, however often triggers repeat."""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.journey_trigger.handler import handler, record_handler
from shared.domain.events import CanonicalEvent
from shared.domain.journey_decisions import execution_name
from shared.platform.aws import client
from tests.aws_fixtures import FixedClock, LambdaContext, World, bus_envelope, canonical, sqs_batch
from tests.events import load_event


def event(name: str, received_at: float, **changes: Any) -> CanonicalEvent:
    [e] = canonical([{**load_event(name), **changes}], received_at)
    return e


def test_first_product_added_starts_one_execution_named_for_the_cart(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a Product Added that Boomerang received 10 minutes ago (the queue was slow)
    added = event("product_added", fixed_clock.now - 600)

    # When the trigger λ handles it
    assert handler(sqs_batch([bus_envelope(added)]), ctx) == {"batchItemFailures": []}

    # Then exactly one execution runs, under the cart's deterministic name
    [execution] = world.executions()
    assert execution["name"] == execution_name("shop-1", "cart-abandonment", "cart-42")
    assert execution["status"] == "RUNNING"
    # And its first wait is timed from when the event was received, not from now
    described = client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "store_id": "shop-1",
        "journey": "cart-abandonment",
        "instance": "cart-42",
        "generation": 0,
        "trigger": "sample-product-added-1",
        "step": 0,
        "wait_seconds": 3600 - 600,
        "started_at": added.received_at,
        "customer_id": "u:user-42",
        "occasion": None,
        "context": {},
    }


def test_second_event_for_the_same_cart_joins_the_running_execution(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a journey already started for cart-42
    handler(sqs_batch([bus_envelope(event("product_added", fixed_clock.now))]), ctx)

    # When more cart events for the same cart arrive (another add, then checkout)
    fixed_clock.advance(120)
    another = event("product_added", fixed_clock.now, messageId="add-2")
    [record] = sqs_batch([bus_envelope(another)])["Records"]
    outcome = record_handler(SQSRecord(record))
    checkout = event("checkout_started", fixed_clock.now)
    result = handler(sqs_batch([bus_envelope(checkout)]), ctx)

    # Then the add joins it (no failure, still one cart journey); the checkout starts its own,
    # faster journey for the same cart (the cart journey yields to it at its next step)
    assert outcome["outcomes"] == [
        {
            "status": "joined",
            "journey": "cart-abandonment",
            "instance": "cart-42",
            "execution_arn": None,
            "reason": "",
        }
    ]
    assert result == {"batchItemFailures": []}
    assert sorted(e["name"] for e in world.executions()) == sorted(
        execution_name("shop-1", j, "cart-42") for j in ("cart-abandonment", "checkout-abandonment")
    )


def test_two_adds_for_one_cart_in_one_batch_start_one_execution(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    first = event("product_added", fixed_clock.now)
    second = event("product_added", fixed_clock.now + 1, messageId="add-2")
    other_cart = event("product_added", fixed_clock.now + 2, messageId="add-3")
    other_cart.properties["cart_id"] = "cart-99"

    assert handler(sqs_batch(bus_envelope(e) for e in (first, second, other_cart)), ctx) == {
        "batchItemFailures": []
    }

    assert sorted(e["name"] for e in world.executions()) == sorted(
        execution_name("shop-1", "cart-abandonment", c) for c in ("cart-42", "cart-99")
    )


def _status(e: CanonicalEvent) -> str:
    [record] = sqs_batch([bus_envelope(e)])["Records"]
    return str(record_handler(SQSRecord(record))["outcomes"][0]["status"])


def test_product_viewed_starts_browse_abandonment_at_most_once_per_week(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    fixed_clock.now = time.time()  # Step Functions' stopDate is wall time
    [viewed] = canonical([load_event("batch_cart_abandon")["batch"][3]], fixed_clock.now)
    assert viewed.event == "Product Viewed" and viewed.user_id

    # The first view starts the customer's browse journey; the same delivery again joins it
    assert _status(viewed) == "started"
    _status(viewed)  # (StartExecution answers a same-name, same-input call with the running execution)
    [first] = world.executions()
    assert first["name"] == execution_name("shop-1", "browse-abandonment", f"u:{viewed.user_id}")
    client("stepfunctions").stop_execution(executionArn=first["executionArn"])

    # Another view 3 days later: the once-per-7-days rule keeps them out
    fixed_clock.advance(3 * 86400)
    [again] = canonical(
        [{**load_event("batch_cart_abandon")["batch"][3], "messageId": "view-2"}], fixed_clock.now
    )
    assert _status(again) == "ignored"
    # 8 days after the first entry they may enter again (the next generation)
    fixed_clock.advance(5 * 86400)
    [later] = canonical(
        [{**load_event("batch_cart_abandon")["batch"][3], "messageId": "view-3"}], fixed_clock.now
    )
    assert _status(later) == "started"
    assert len(world.executions()) == 2


def test_cart_shopped_again_after_its_journey_ended_gets_a_new_journey(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given Boomerang's clock agrees with Step Functions' (as on AWS; stopDate is wall time)
    fixed_clock.now = time.time()
    # And cart-42's journey ran and ended (stopped here: moto cannot run the real step)
    handler(sqs_batch([bus_envelope(event("product_added", fixed_clock.now))]), ctx)
    [first] = world.executions()
    client("stepfunctions").stop_execution(executionArn=first["executionArn"])

    # When, a week later, the customer fills the same cart again
    fixed_clock.advance(7 * 24 * 3600)
    again = event("product_added", fixed_clock.now, messageId="add-next-week")
    [record] = sqs_batch([bus_envelope(again)])["Records"]

    # Then a new journey starts for it
    assert record_handler(SQSRecord(record))["outcomes"][0]["status"] == "started"
    names = sorted(e["name"] for e in world.executions())
    assert names == sorted(
        [
            execution_name("shop-1", "cart-abandonment", "cart-42"),
            execution_name("shop-1", "cart-abandonment", "cart-42", 1),
        ]
    )

    # And a late replay of last week's event joins the journey that saw it, starting nothing new
    replay = event("product_added", fixed_clock.now - 7 * 24 * 3600)
    [old] = sqs_batch([bus_envelope(replay)])["Records"]
    assert record_handler(SQSRecord(old))["outcomes"][0]["status"] == "joined"
    assert len(world.executions()) == 2
