"""Broadcasts in send pages on moto: no execution per recipient, every member once, paced.

The daily run writes the segment's members into send pages grouped by send instant and starts one
execution per instant; the step λ's broadcast mode runs each member through the step engine. The
driver from test_journey_engine plays Step Functions' loop on a fixed clock.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import time
from typing import Any

import pytest
from moto.ses.models import ses_backends

from functions.journey_step.handler import handler as step_handler
from shared.adapters.send_pace import SendPace
from shared.adapters.store_directory import StoreDirectory
from shared.domain.delivery import QuietHours
from shared.domain.journey_decisions import execution_name, in_holdout
from shared.domain.journeys import Journey
from shared.platform import clock
from shared.platform.aws import client
from shared.services import wiring
from shared.services.journeys import trigger as journey_trigger
from tests.aws_fixtures import ACCOUNT, REGION, FixedClock, LambdaContext, World, canonical
from tests.integration.test_broadcasts import T0, broadcasts, per_recipient
from tests.integration.test_journey_engine import daily_run, drain_tasks, identify, put_journey, run, track

DAY = 86400
N_MEMBERS = 60  # several pages per instant; moto's ~20 calls a member bound the test's time
ZONES = ("Europe/Warsaw", "Pacific/Honolulu", "Asia/Tokyo", "America/New_York")
SALE = """
name: Spring flash sale
kind: marketing
category: offers
trigger:
  broadcast: {segment: first-time-buyers, day: 2026-03-03}
steps:
  - id: announce
    at: "10:00"
    template: flash-sale
    offer: {code: SPRING25, description: 25% off everything}
"""


def first_time_buyers(
    world: World, fixed_clock: FixedClock, n: int, zones: tuple[str, ...] = ZONES
) -> list[str]:
    """n customers with email consent and one order, spread over `zones` (folded straight in)."""
    users = [f"b{i:03d}" for i in range(n)]
    at = fixed_clock.now = T0 - 10 * DAY
    for i, user in enumerate(users):
        calls = [
            identify(user, timezone=zones[i % len(zones)]),
            track(user, "Order Completed", f"order-{user}", order_id=f"o-{user}", total=30),
        ]
        for event in canonical(calls, at + i):
            world.profiles().apply(event)
    return users


def sale_mails() -> Counter[str]:
    mails = ses_backends[ACCOUNT][REGION].sent_messages
    return Counter(str(m.destinations[0]) for m in mails if "SPRING25" in m.raw_data)


def send_instants(world: World, ctx: LambdaContext, fixed_clock: FixedClock) -> None:
    """Each instant's execution, as Step Functions runs it: from its start to its end."""
    for state in sorted(broadcasts(world), key=lambda s: s["instant"]):
        fixed_clock.now = T0 + DAY
        assert run({**state}, ctx, fixed_clock) == []


@pytest.fixture
def fast_ses(world: World) -> None:
    """moto's sandbox quota is 1 email a second; an account out of the sandbox sends faster."""
    wiring.broadcast_tools().pace.rate = lambda: 50


def test_members_in_several_zones_each_get_it_once_with_no_execution_per_recipient(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, fast_ses: None, monkeypatch: Any
) -> None:
    # Given sixty first-time buyers in four time zones, read 20 a page
    monkeypatch.setattr(journey_trigger, "BROADCAST_PAGE", 20)
    users = first_time_buyers(world, fixed_clock, N_MEMBERS)
    put_journey(world, "spring-sale", SALE)

    # When the daily run of the day before plans the broadcast
    fixed_clock.now = T0 + DAY
    daily_run(world, ctx)

    # Then one execution per send instant, none per member
    assert len(broadcasts(world)) == len(ZONES)
    assert per_recipient(world) == []

    # And when the instants come, every member gets the sale exactly once
    send_instants(world, ctx, fixed_clock)
    assert sale_mails() == Counter({f"{u}@example.com": 1 for u in users})
    assert per_recipient(world) == []


def test_a_replayed_daily_run_and_replayed_page_tasks_send_nothing_twice(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, fast_ses: None, monkeypatch: Any
) -> None:
    monkeypatch.setattr(journey_trigger, "BROADCAST_PAGE", 5)
    users = first_time_buyers(world, fixed_clock, 18, ZONES[:3])
    put_journey(world, "spring-sale", SALE)
    fixed_clock.now = T0 + DAY
    daily_run(world, ctx)
    first = {s["instant"]: s for s in broadcasts(world)}

    # When the daily run's tasks are delivered again (SQS at least once): the same pages, joined executions
    fixed_clock.now = T0 + DAY + 30
    daily_run(world, ctx)
    assert {s["instant"]: s for s in broadcasts(world)} == first

    # And an instant's page task runs, and runs again from the same input (a retried Task)
    one = sorted(first)[0]
    fixed_clock.now = one
    once = step_handler({**first[one]}, ctx)
    assert once["action"] == "exit" and once["counts"]["sent"] == 6
    again = step_handler({**first[one]}, ctx)
    assert again["counts"].get("sent", 0) == 0 and again["counts"]["joined"] == 6

    # And a worker near its time limit hands over mid-page; the hand-over is replayed too
    two = sorted(first)[1]
    fixed_clock.now = two
    short = LambdaContext()
    budget = iter([60_000] * 4 + [0] * 100)
    short.get_remaining_time_in_millis = lambda: next(budget)  # type: ignore[method-assign]
    handed = step_handler({**first[two]}, short)
    assert (handed["action"], handed["wait_seconds"], handed["counts"]["sent"]) == ("wait", 0, 4)
    rest = step_handler({**handed}, ctx)
    assert rest["action"] == "exit" and rest["counts"]["sent"] == 6
    replayed = step_handler({**handed}, ctx)
    assert (replayed["counts"]["sent"], replayed["counts"]["joined"]) == (4, 2)  # nothing sent again

    # Then, with every instant run to its end (twice over), everyone has exactly one
    send_instants(world, ctx, fixed_clock)
    send_instants(world, ctx, fixed_clock)
    assert sale_mails() == Counter({f"{u}@example.com": 1 for u in users})
    assert per_recipient(world) == []


def test_two_concurrent_workers_never_exceed_the_rate_together(world: World, fixed_clock: FixedClock) -> None:
    # Given two workers (two λ containers, each with its own cached quota) sharing the table's bucket
    rate = 7
    grants: Counter[int] = Counter()

    def next_second(_: float) -> None:
        fixed_clock.now = float(int(fixed_clock.now) + 1)

    workers = [SendPace(client("dynamodb"), world.table, lambda: rate, sleep=next_second) for _ in range(2)]
    fixed_clock.now = T0 + 0.25
    wanted = {0: 120, 1: 95}
    left = dict(wanted)
    rnd = random.Random(7)

    # When they ask for chunks of every size, interleaved at random
    while any(left.values()):
        w = rnd.choice([k for k, v in left.items() if v])
        n = workers[w].take(min(left[w], rnd.randint(1, 12)))
        assert 1 <= n <= left[w]
        grants[int(clock.now_ts())] += n
        left[w] -= n
        if rnd.random() < 0.2:
            fixed_clock.now += 0.3  # sending takes time too

    # Then no second ever gave out more than the rate, and the rate was used (no second wasted)
    assert max(grants.values()) == rate
    assert sum(grants.values()) == sum(wanted.values())
    assert len(grants) <= sum(wanted.values()) // rate + 3


def test_a_member_in_quiet_hours_continues_in_their_own_execution_and_still_gets_it_once(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, fast_ses: None
) -> None:
    # Given a store whose email is quiet 09:00-11:00 local, and three members in Warsaw
    policy = world.store.delivery.model_copy(
        update={"quiet_hours": {"email": QuietHours(start=time(9), end=time(11))}}
    )
    StoreDirectory(client("dynamodb"), world.table).put(world.store.model_copy(update={"delivery": policy}))
    users = first_time_buyers(world, fixed_clock, 3, ("Europe/Warsaw",))
    put_journey(world, "spring-sale", SALE)
    fixed_clock.now = T0 + DAY
    daily_run(world, ctx)
    [instant] = broadcasts(world)

    # When their instant comes (10:00 local), quiet hours defer each to its own ordinary execution
    fixed_clock.now = T0 + DAY
    run({**instant}, ctx, fixed_clock)
    assert sale_mails() == Counter()
    drain_tasks(world, ctx)
    own = {s["instance"]: s for s in per_recipient(world)}
    assert sorted(own) == [f"u:{u}@2026-03-03" for u in users]
    names = {e["name"] for e in world.executions()}
    assert {execution_name("shop-1", "spring-sale", i) for i in own} <= names

    # Then each member's execution sends at 11:00 local, once, however often the instant replays
    run({**instant}, ctx, fixed_clock)
    drain_tasks(world, ctx)
    assert len(per_recipient(world)) == 3
    eleven = T0 + 2 * DAY - 3 * 3600 + 3600
    for state in own.values():
        fixed_clock.now = T0 + DAY + 1
        happened = run({**state}, ctx, fixed_clock)
        [sent] = [e for e in happened if e["type"] == "sent"]
        assert eleven <= sent["sent_at"] < eleven + 60
    assert sale_mails() == Counter({f"{u}@example.com": 1 for u in users})


def test_holdout_members_get_nothing_and_are_counted_as_control(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, fast_ses: None
) -> None:
    text = SALE.replace("kind: marketing\n", "kind: marketing\nholdout: 0.5\n")
    journey = Journey.model_validate(__import__("yaml").safe_load(text) | {"id": "spring-sale"})
    users = first_time_buyers(world, fixed_clock, 12, ("Europe/Warsaw",))
    control = {u for u in users if in_holdout(journey, f"u:{u}")}
    assert 0 < len(control) < len(users)
    put_journey(world, "spring-sale", text)
    fixed_clock.now = T0 + DAY
    daily_run(world, ctx)
    send_instants(world, ctx, fixed_clock)

    assert sale_mails() == Counter({f"{u}@example.com": 1 for u in users if u not in control})
    groups: Counter[str] = Counter()
    for u in users:
        resp = client("dynamodb").query(
            TableName=world.table,
            KeyConditionExpression="pk = :p AND begins_with(sk, :h)",
            ExpressionAttributeValues={":p": {"S": f"STORE#shop-1#CUST#u:{u}"}, ":h": {"S": "HIST#"}},
        )
        entered = [
            i for i in resp["Items"] if i["type"]["S"] == "entered" and i["journey"]["S"] == "spring-sale"
        ]
        assert len(entered) == 1
        groups[entered[0]["group"]["S"]] += 1
    assert groups == Counter({"control": len(control), "treatment": len(users) - len(control)})


def test_a_member_the_provider_turns_away_is_sent_once_by_their_own_execution(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, fast_ses: None, monkeypatch: Any
) -> None:
    from shared.adapters.channels.email import TransientSendError
    from shared.services.journeys import broadcast

    users = first_time_buyers(world, fixed_clock, 3, ("Europe/Warsaw",))
    put_journey(world, "spring-sale", SALE)
    fixed_clock.now = T0 + DAY
    daily_run(world, ctx)
    [instant] = broadcasts(world)

    # Given SES throttles the first send of the second member (after it entered)
    real, refused = broadcast.run_step, []

    def flaky(state: Any, deps: Any) -> Any:
        if state.customer_id == f"u:{users[1]}" and not refused:
            refused.append(state.customer_id)
            deps.journeys.mark_started(state.store_id, state.journey, state.instance, 0, clock.now_ts())
            raise TransientSendError("Maximum sending rate exceeded.", code="Throttling")
        return real(state, deps)

    monkeypatch.setattr(broadcast, "run_step", flaky)
    run({**instant}, ctx, fixed_clock)
    assert sale_mails() == Counter({f"{users[0]}@example.com": 1, f"{users[2]}@example.com": 1})

    # Then that member continues in their own execution, and gets it once
    drain_tasks(world, ctx)
    [own] = per_recipient(world)
    run({**own}, ctx, fixed_clock)
    run({**instant}, ctx, fixed_clock)  # a replayed instant joins them
    assert sale_mails() == Counter({f"{u}@example.com": 1 for u in users})
