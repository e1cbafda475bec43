"""The journey engine on moto: journey files in the bucket drive the trigger and step λs.

A small driver plays Step Functions' part (wait, step, wait...) on a fixed clock, so each test walks
a customer through a journey in milliseconds: entry rules, holdout, variants, offer pools,
precedence, the daily schedule and the back-in-stock fan-out.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from moto.ses.models import ses_backends

from functions.journey_step.handler import handler as step_handler
from functions.journey_trigger.handler import handler as trigger_handler
from shared.adapters.journey_store import JourneyStore
from shared.adapters.offer_store import OfferStore
from shared.adapters.store_directory import StoreDirectory
from shared.domain.journey_decisions import in_holdout
from shared.platform.aws import client
from shared.services.journeys import trigger as journey_trigger
from shared.services.wiring import trigger_deps
from tests.aws_fixtures import (
    ACCOUNT,
    REGION,
    STORE,
    FixedClock,
    LambdaContext,
    World,
    bus_envelope,
    canonical,
    sqs_batch,
)

DAY = 86400


def post(world: World, ctx: LambdaContext, *calls: dict[str, Any], at: float) -> None:
    """Fold the calls into profiles (as the profile λ does), then hand them to the trigger λ."""
    events = canonical(list(calls), at)
    for e in events:
        world.profiles().apply(e)
    assert trigger_handler(sqs_batch([bus_envelope(e) for e in events]), ctx) == {"batchItemFailures": []}
    drain_tasks(world, ctx)


def drain_tasks(world: World, ctx: LambdaContext) -> None:
    """Audience tasks the trigger queued for itself (the next page): run them as SQS would."""
    sqs = client("sqs")
    while True:
        msgs = sqs.receive_message(QueueUrl=world.queues["journey"], MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not msgs:
            return
        records = [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in msgs
        ]
        batch = {
            "Records": [
                {
                    **r,
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                    "awsRegion": REGION,
                }
                for r in records
            ]
        }
        assert trigger_handler(batch, ctx) == {"batchItemFailures": []}
        for m in msgs:
            sqs.delete_message(QueueUrl=world.queues["journey"], ReceiptHandle=m["ReceiptHandle"])


def executions(world: World, journey: str | None = None) -> list[dict[str, Any]]:
    sfn = client("stepfunctions")
    found = []
    for e in world.executions():
        state = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        if journey is None or state["journey"] == journey:
            found.append(state)
    return found


def run(
    state: dict[str, Any], ctx: LambdaContext, clock: FixedClock, until: float | None = None
) -> list[dict[str, Any]]:
    """Step Functions' loop on the fixed clock: wait, step, until the journey exits (or `until`)."""
    happened: list[dict[str, Any]] = []
    while True:
        if until is not None and clock.now + state["wait_seconds"] > until:
            return happened
        clock.advance(state["wait_seconds"])
        state = step_handler({**state}, ctx)
        happened += state["events"]
        if state["action"] != "wait":
            return happened


def sent_types(happened: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["step_id"], e["type"]) for e in happened if "step_id" in e]


def put_journey(world: World, name: str, text: str, store: str = "shop-1") -> None:
    client("s3").put_object(Bucket=world.bucket, Key=f"journeys/{store}/{name}.yaml", Body=text.encode())


def identify(user: str, *, consent: bool = True, **traits: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"email": f"{user}@example.com", "first_name": user.title(), **traits}
    if consent:
        t["consent"] = {"email": "subscribed"}
    return {"type": "identify", "userId": user, "messageId": f"id-{user}-{len(traits)}", "traits": t}


def track(user: str, event: str, mid: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "messageId": mid, "properties": props}


@pytest.fixture
def ctx_clock(fixed_clock: FixedClock) -> FixedClock:
    return fixed_clock


# --- welcome: entry, re-entry once, exit on first order ------------------------------------------


def test_welcome_series_sends_in_order_and_ends_at_the_first_order(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    t0 = fixed_clock.now
    post(world, ctx, identify("gus"), track("gus", "Signed Up", "signup-gus"), at=t0)
    [state] = executions(world, "welcome")
    assert state["wait_seconds"] == 0 and state["customer_id"] == "u:gus"

    # welcome at once, brand story at +2 d; an order on day 3 ends it before the best sellers
    happened = run({**state}, ctx, fixed_clock, until=t0 + 3 * DAY)
    assert sent_types(happened) == [("welcome", "sent"), ("brand-story", "sent")]
    world.profiles().apply(
        canonical(
            [track("gus", "Order Completed", "order-gus", order_id="o-gus", total=30)], fixed_clock.now
        )[0]
    )
    last = step_handler({**state, "step": 2, "wait_seconds": 0}, ctx)
    assert (last["action"], last["reason"]) == ("exit", "Order Completed after the journey started")
    welcome = ses_backends[ACCOUNT][REGION].sent_messages[0].raw_data
    assert "WELCOME10" in welcome  # the static first-order code is in the email

    # signing up again starts nothing: once per customer
    post(world, ctx, track("gus", "Signed Up", "signup-gus-again"), at=fixed_clock.now + DAY)
    assert len(executions(world, "welcome")) == 1

    # and "why did I get this?" is answered from the customer's history
    history = JourneyStore(client("dynamodb"), world.table).customer_history("shop-1", ["u:gus"])
    assert [(h["type"], h.get("step_id")) for h in history if h["journey"] == "welcome"] == [
        ("entered", None),
        ("sent", "welcome"),
        ("sent", "brand-story"),
        ("exited", None),
    ]


def test_a_customer_stopped_at_the_entry_conditions_may_enter_later(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    fixed_clock.now = t0 = time.time()  # Step Functions' stopDate is wall time
    post(world, ctx, identify("nia", consent=False), track("nia", "Signed Up", "signup-nia"), at=t0)
    [state] = executions(world, "welcome")
    out = step_handler({**state}, ctx)
    # (a consent folded late, out of its batch's order, gets one more look an hour on)
    assert (out["action"], out["wait_seconds"]) == ("wait", 3600)
    fixed_clock.advance(3600)
    out = step_handler({**out}, ctx)
    assert (out["action"], out["reason"]) == ("exit", "not eligible: no email consent")
    assert ses_backends[ACCOUNT][REGION].sent_messages == []
    [execution] = world.executions()  # (the driver plays Step Functions; end the execution as it would)
    client("stepfunctions").stop_execution(executionArn=execution["executionArn"])
    fixed_clock.advance(DAY)

    # she opts in and signs up again (a new account flow): the once-only rule did not count the first
    post(world, ctx, identify("nia"), track("nia", "Signed Up", "signup-nia-2"), at=fixed_clock.now)
    assert len(executions(world, "welcome")) == 2


def test_consent_folded_after_the_sign_up_still_gets_the_welcome(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given the sign-up reached the profile before the identify carrying the consent (SQS order)
    t0 = fixed_clock.now
    signup, consent = canonical([track("lea", "Signed Up", "su-lea"), identify("lea")], t0)
    world.profiles().apply(signup)
    assert trigger_handler(sqs_batch([bus_envelope(signup)]), ctx) == {"batchItemFailures": []}
    [state] = executions(world, "welcome")
    out = step_handler({**state}, ctx)
    assert out["action"] == "wait"
    # When the consent is folded a moment later
    world.profiles().apply(consent)
    # Then the second look lets her in, and the welcome goes out
    happened = run({**out}, ctx, fixed_clock, until=t0 + DAY)
    assert sent_types(happened)[0] == ("welcome", "sent")


# --- precedence, holdout, variants, offers ---------------------------------------------------------


def test_the_cart_journey_yields_to_checkout_abandonment_on_the_same_cart(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    t0 = fixed_clock.now
    post(
        world,
        ctx,
        identify("cy"),
        track("cy", "Product Added", "add-cy", cart_id="cart-cy", sku="A", price=10),
        at=t0,
    )
    post(
        world,
        ctx,
        track("cy", "Checkout Started", "co-cy", cart_id="cart-cy", products=[{"sku": "A", "price": 10}]),
        at=t0 + 60,
    )
    [cart] = executions(world, "cart-abandonment")
    [checkout] = executions(world, "checkout-abandonment")
    # the take-over holds from the checkout's start, before its own first step has run
    out = step_handler({**cart, "wait_seconds": 0}, ctx)
    assert (out["action"], out["reason"]) == ("exit", "checkout-abandonment took over")
    checkout_events = run({**checkout}, ctx, fixed_clock, until=t0 + 2 * 3600)
    assert sent_types(checkout_events) == [("checkout-1", "sent")]
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == 1


HOLDOUT = """
trigger: {event: Signed Up}
holdout: 0.5
steps:
  - id: hello
    template: welcome
    variants:
      - {id: plain, weight: 1}
      - {id: story, weight: 1, template: brand-story}
"""


def test_holdout_customers_enter_but_receive_nothing_and_variants_are_recorded(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    put_journey(world, "experiment", HOLDOUT)
    t0 = fixed_clock.now
    users = [f"u{n}" for n in range(12)]
    for u in users:
        post(world, ctx, identify(u), track(u, "Signed Up", f"su-{u}"), at=t0)
    journey = trigger_deps().catalog.get("shop-1", "experiment")
    outcomes: dict[str, dict[str, Any]] = {}
    for state in executions(world, "experiment"):
        [event] = [e for e in run({**state}, ctx, fixed_clock) if e.get("step_id") == "hello"]
        outcomes[state["customer_id"]] = event
    control = {c for c in outcomes if in_holdout(journey, c)}
    assert control and len(control) < len(users)  # both groups present (hash-stable, so deterministic)
    for customer, event in outcomes.items():
        if customer in control:
            assert event["type"] == "skipped" and event["reason"].startswith("control group")
        else:
            assert event["type"] == "sent" and event["variant"] in ("plain", "story")
    history = JourneyStore(client("dynamodb"), world.table).customer_history("shop-1", sorted(outcomes))
    groups = {h["instance"].split("~")[0]: h["group"] for h in history if h["type"] == "entered"}
    assert {c for c, g in groups.items() if g == "control"} == control
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == len(users) - len(control)


POOL = """
trigger: {event: Signed Up}
steps:
  - id: gift
    template: welcome
    offer: {pool: welcome-unique, description: 10% off your first order, expires_after_days: 7}
"""


def test_unique_codes_go_to_one_customer_each_and_an_empty_pool_skips_the_step(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    put_journey(world, "gift", POOL)
    OfferStore(client("dynamodb"), world.table).upload("shop-1", "welcome-unique", ["UNIQ-ONE", "UNIQ-TWO"])
    for u in ("p1", "p2", "p3"):
        post(world, ctx, identify(u), track(u, "Signed Up", f"su-{u}"), at=fixed_clock.now)
    results = {}
    for state in executions(world, "gift"):
        [event] = [e for e in run({**state}, ctx, fixed_clock) if e.get("step_id") == "gift"]
        results[state["customer_id"]] = event
    assert sorted(e["type"] for e in results.values()) == ["sent", "sent", "skipped"]
    [skipped] = [e for e in results.values() if e["type"] == "skipped"]
    assert skipped["reason"] == "offer pool welcome-unique has no codes left"
    bodies = [m.raw_data for m in ses_backends[ACCOUNT][REGION].sent_messages]
    assert sorted(c for c in ("UNIQ-ONE", "UNIQ-TWO") for b in bodies if c in b) == ["UNIQ-ONE", "UNIQ-TWO"]
    status = OfferStore(client("dynamodb"), world.table).status("shop-1", "welcome-unique")
    assert (status.given, status.remaining) == (2, 0) and status.exhausted_at is not None


# --- audiences: back in stock and the daily schedule ---------------------------------------------


def test_back_in_stock_notifies_every_subscriber_once_in_pages(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journey_trigger, "PAGE", 2)  # five subscribers: three pages, two queued tasks
    t0 = fixed_clock.now
    for n in range(5):
        u = f"s{n}"
        post(
            world,
            ctx,
            identify(u),
            track(u, "Back In Stock Subscribed", f"bis-{u}", sku="TENT-2", name="Tent"),
            at=t0,
        )
    store_event = track(
        "store-backend",
        "Back In Stock",
        "restock-1",
        sku="TENT-2",
        name="Two-person Tent",
        url="https://shop.example.com/p/tent",
    )
    post(world, ctx, store_event, at=t0 + DAY)
    states = executions(world, "back-in-stock")
    assert sorted(s["customer_id"] for s in states) == [f"u:s{n}" for n in range(5)]
    for state in states:
        assert sent_types(run({**state}, ctx, fixed_clock)) == [("notify", "sent")]
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == 5

    # the same restock delivered again, or a replay, starts nothing new
    post(world, ctx, store_event, at=t0 + DAY)
    assert len(executions(world, "back-in-stock")) == 5
    # and a later restock of the same SKU notifies no one: each asked to be told once
    post(world, ctx, {**store_event, "messageId": "restock-2"}, at=t0 + 30 * DAY)
    assert len(executions(world, "back-in-stock")) == 5
    # until someone subscribes again
    post(world, ctx, track("s9", "Back In Stock Subscribed", "bis-s9", sku="TENT-2"), at=t0 + 31 * DAY)
    post(world, ctx, {**store_event, "messageId": "restock-3"}, at=t0 + 32 * DAY)
    assert sorted(s["customer_id"] for s in executions(world, "back-in-stock"))[-1] == "u:s9"
    assert len(executions(world, "back-in-stock")) == 6


def test_daily_schedule_starts_birthdays_for_tomorrow_at_ten_local(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # 12:00 UTC on 2026-07-14; Zofia (Warsaw, UTC+2 in summer) was born on 15 July
    fixed_clock.now = 1_784_030_400.0
    post(world, ctx, identify("zofia", birthday="1990-07-15", timezone="Europe/Warsaw"), at=fixed_clock.now)
    post(world, ctx, identify("tom", birthday="1985-03-02"), at=fixed_clock.now)
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    batch = {
        "Records": [
            {
                "messageId": "tick",
                "receiptHandle": "r",
                "body": json.dumps(scheduled),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": REGION,
            }
        ]
    }
    assert trigger_handler(batch, ctx) == {"batchItemFailures": []}
    drain_tasks(world, ctx)
    [state] = executions(world, "birthday")
    assert (state["customer_id"], state["occasion"]) == ("u:zofia", "2026-07-15")
    happened = run({**state}, ctx, fixed_clock)
    [sent] = [e for e in happened if e["type"] == "sent"]
    assert sent["sent_at"] == 1_784_102_400.0  # 2026-07-15 08:00 UTC = 10:00 in Warsaw
    assert "BIRTHDAY15" in ses_backends[ACCOUNT][REGION].sent_messages[0].raw_data

    # tomorrow's run (a catch-up for "today") joins the same execution: one birthday message
    assert trigger_handler(batch, ctx) == {"batchItemFailures": []}
    drain_tasks(world, ctx)
    assert len(executions(world, "birthday")) == 1


def test_the_scheduled_run_lists_every_store(world: World, fixed_clock: FixedClock) -> None:
    StoreDirectory(client("dynamodb"), world.table).put(STORE.model_copy(update={"store_id": "shop-2"}))
    tasks = journey_trigger.schedule_tasks(fixed_clock.now, trigger_deps())
    assert {(t["store_id"], t["journey"]) for t in tasks if t["task"] == "audience"} == {
        (s, j) for s in ("shop-1", "shop-2") for j in ("birthday", "order-anniversary", "win-back")
    }
    # and each store's daily segments run (shared/adapters/segment_store.py)
    assert {(t["store_id"], t["phase"]) for t in tasks if t["task"] == "segments"} == {
        ("shop-1", "edges"),
        ("shop-2", "edges"),
    }


def daily_run(world: World, ctx: LambdaContext) -> None:
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    record = {
        "messageId": "tick",
        "receiptHandle": "r",
        "body": json.dumps(scheduled),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": REGION,
    }
    assert trigger_handler({"Records": [record]}, ctx) == {"batchItemFailures": []}
    drain_tasks(world, ctx)


def test_win_back_reaches_a_customer_on_the_day_they_become_at_risk(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    run_at = 1_772_366_400.0  # 2026-03-01 12:00 UTC, the daily run
    # Wes (New York) ordered once, exactly 90 days earlier: at risk from today (the store's minimum)
    post(world, ctx, identify("wes", timezone="America/New_York"), at=run_at - 91 * DAY)
    order = track("wes", "Order Completed", "order-wes", order_id="o-wes", total=80)
    post(world, ctx, order, at=run_at - 90 * DAY)
    # Oda ordered 30 days ago: not at risk, not found
    post(
        world,
        ctx,
        identify("oda"),
        track("oda", "Order Completed", "order-oda", order_id="o-oda", total=20),
        at=run_at - 30 * DAY,
    )

    fixed_clock.now = run_at
    daily_run(world, ctx)
    [state] = executions(world, "win-back")
    assert state["customer_id"] == "u:wes"
    happened = run({**state}, ctx, fixed_clock)
    sent = [(e["step_id"], e["sent_at"]) for e in happened if e["type"] == "sent"]
    # the next 10:00 in New York (EST), then 14 days later at 10:00 (EDT since 8 March)
    assert sent == [("reactivate", 1_772_377_200.0), ("stronger-offer", 1_773_583_200.0)]
    assert "COMEBACK20" in ses_backends[ACCOUNT][REGION].sent_messages[-1].raw_data


def test_first_order_anniversary_a_year_later_at_ten_local(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    run_at = 1_772_366_400.0  # 2026-03-01 12:00 UTC; the run starts tomorrow's anniversaries
    post(world, ctx, identify("ana", timezone="Europe/Lisbon"), at=run_at - 400 * DAY)
    first = run_at - 364 * DAY  # 2025-03-02
    post(world, ctx, track("ana", "Order Completed", "order-ana", order_id="o-ana", total=50), at=first)
    fixed_clock.now = run_at
    daily_run(world, ctx)
    [state] = executions(world, "order-anniversary")
    assert state["occasion"] == "2026-03-02"
    happened = run({**state}, ctx, fixed_clock)
    [sent] = [e for e in happened if e["type"] == "sent"]
    assert sent["sent_at"] == 1_772_445_600.0  # 2026-03-02 10:00 in Lisbon (UTC+0)


def test_an_anonymous_view_starts_no_browse_journey(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    view = {
        "type": "track",
        "anonymousId": "visitor-1",
        "event": "Product Viewed",
        "messageId": "anon-view",
        "properties": {"sku": "A", "name": "Tent"},
    }
    post(world, ctx, view, at=fixed_clock.now)
    assert executions(world, "browse-abandonment") == []


# --- found in review ------------------------------------------------------------------------------

TIER = """
trigger: {event: Signed Up}
steps:
  - id: hello
    template: welcome
"""


def test_a_run_under_a_recycled_execution_name_still_sends(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Step Functions forgets a closed execution's name after 90 days, so generation 0 can start again;
    # its send records are keyed by the trigger, so the earlier run's records do not silence it
    put_journey(world, "again", TIER)
    post(world, ctx, identify("rae"), at=fixed_clock.now)
    state = {
        "store_id": "shop-1",
        "journey": "again",
        "instance": "u:rae",
        "customer_id": "u:rae",
        "step": 0,
        "wait_seconds": 0,
        "started_at": fixed_clock.now,
    }
    first = run({**state, "trigger": "t-1"}, ctx, fixed_clock)
    fixed_clock.advance(100 * DAY)
    state["started_at"] = fixed_clock.now
    second = run({**state, "trigger": "t-2"}, ctx, fixed_clock)
    retried = step_handler({**state, "trigger": "t-2", "wait_seconds": 0}, ctx)
    assert [sent_types(x) for x in (first, second)] == [[("hello", "sent")], [("hello", "sent")]]
    assert sent_types(retried["events"]) == [("hello", "already-handled")]


HELD_OUT_ORDERS = """
trigger: {event: Order Completed}
per: order
holdout: 0.5
steps:
  - id: confirmation
    kind: transactional
    template: order-confirmation
  - id: review
    after: 7d
    template: review-request
"""


def test_the_control_group_still_gets_what_it_is_owed(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    put_journey(world, "orders-held-out", HELD_OUT_ORDERS)
    journey = trigger_deps().catalog.get("shop-1", "orders-held-out")
    users = [f"h{n}" for n in range(10)]
    for u in users:
        post(
            world,
            ctx,
            identify(u),
            track(u, "Order Completed", f"o-{u}", order_id=f"ord-{u}", total=10),
            at=fixed_clock.now,
        )
    for state in executions(world, "orders-held-out"):
        types = dict(sent_types(run({**state}, ctx, fixed_clock, until=fixed_clock.now + 8 * DAY)))
        control = in_holdout(journey, state["customer_id"])
        assert types == {"confirmation": "sent", "review": "skipped" if control else "sent"}, state[
            "customer_id"
        ]
    assert any(in_holdout(journey, f"u:{u}") for u in users)


def test_a_provider_timeout_after_sending_is_never_retried(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    from botocore.exceptions import ReadTimeoutError

    from shared.services.wiring import step_deps

    post(world, ctx, identify("tim"), track("tim", "Signed Up", "su-tim"), at=fixed_clock.now)
    [state] = executions(world, "welcome")

    def timeout(**_: Any) -> Any:
        raise ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")

    # (a patch of its own: undoing the test's monkeypatch would also undo the world's environment)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(step_deps().ses, "send_email", timeout)
        out = step_handler({**state}, ctx)
    [first] = [e for e in out["events"] if e.get("step_id") == "welcome"]
    assert first["type"] == "unknown" and "not sent again" in first["reason"]
    again = step_handler({**state}, ctx)  # Step Functions replays the step: nothing is sent
    assert [e["type"] for e in again["events"] if e.get("step_id") == "welcome"] == ["already-handled"]
    assert ses_backends[ACCOUNT][REGION].sent_messages == []


def test_an_order_event_sent_again_later_never_restarts_its_journey(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    fixed_clock.now = time.time()
    order = track("rob", "Order Completed", "o-rob-1", order_id="ord-rob", total=10)
    post(world, ctx, identify("rob"), order, at=fixed_clock.now)
    [execution] = [e for e in world.executions() if "post-purchase" in e["name"]]
    client("stepfunctions").stop_execution(executionArn=execution["executionArn"])
    fixed_clock.advance(40 * DAY)
    post(world, ctx, {**order, "messageId": "o-rob-1-resent"}, at=fixed_clock.now)
    assert len(executions(world, "post-purchase")) == 1


CAPPED_POOL = """
trigger: {event: Signed Up}
steps:
  - id: gift
    template: welcome
    on_cap: skip
    offer: {pool: capped-pool, description: 10% off}
"""


def test_a_step_skipped_by_the_cap_draws_no_code(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    put_journey(world, "capped", CAPPED_POOL)
    offers = OfferStore(client("dynamodb"), world.table)
    offers.upload("shop-1", "capped-pool", ["ONLY-ONE"])
    # Given Cal got a marketing email an hour ago (the 1-a-day cap is used)
    post(world, ctx, identify("cal"), track("cal", "Signed Up", "su-cal"), at=fixed_clock.now)
    [welcome] = executions(world, "welcome")
    assert sent_types(run({**welcome}, ctx, fixed_clock, until=fixed_clock.now + 3600))[0] == (
        "welcome",
        "sent",
    )
    [state] = executions(world, "capped")
    [event] = [e for e in run({**state}, ctx, fixed_clock) if e.get("step_id") == "gift"]
    assert (event["type"], event["reason"]) == ("skipped", "frequency cap reached")
    assert offers.status("shop-1", "capped-pool").remaining == 1


def test_a_checkout_journey_that_sent_nothing_does_not_silence_the_cart(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a store whose checkout journey only takes customers who have ordered before
    put_journey(
        world,
        "checkout-abandonment",
        "trigger: {event: Checkout Started}\nper: cart\nentry: {has_ordered: true}\nsteps:\n  - id: c1\n    after: 30m\n    from: activity\n    template: checkout-abandoned\n",
    )
    t0 = fixed_clock.now
    post(
        world,
        ctx,
        identify("fay"),
        track("fay", "Product Added", "add-fay", cart_id="cart-fay", sku="A", price=5),
        at=t0,
    )
    post(world, ctx, track("fay", "Checkout Started", "co-fay", cart_id="cart-fay"), at=t0 + 60)
    [checkout] = executions(world, "checkout-abandonment")
    assert (
        run({**checkout}, ctx, fixed_clock, until=t0 + 3 * 3600)[-1]["reason"]
        == "not eligible: has not ordered yet"
    )
    # Then the cart journey goes on: a first-time buyer still hears about their cart
    [cart] = executions(world, "cart-abandonment")
    fixed_clock.now = t0
    assert sent_types(run({**cart}, ctx, fixed_clock, until=t0 + 2 * 3600)) == [("email-1", "sent")]


def test_a_step_inserted_by_an_edit_does_not_shift_running_journeys(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    two = "trigger: {event: Signed Up}\nsteps:\n  - id: first\n    template: welcome\n  - id: second\n    after: 2d\n    template: brand-story\n"
    put_journey(world, "edited", two)
    post(world, ctx, identify("eda"), track("eda", "Signed Up", "su-eda"), at=fixed_clock.now)
    [state] = executions(world, "edited")
    out = step_handler({**state}, ctx)
    assert (out["step"], out["step_id"]) == (1, "second")
    # the marketer inserts a step before "second" while Eda waits for it
    put_journey(
        world,
        "edited",
        two.replace("  - id: second", "  - id: extra\n    after: 1d\n    template: welcome\n  - id: second"),
    )
    trigger_deps().catalog.forget()
    from shared.services.wiring import step_deps

    step_deps().catalog.forget()
    fixed_clock.advance(2 * DAY)
    later = step_handler({**out}, ctx)
    assert sent_types(later["events"]) == [("second", "sent")]
