"""Broadcasts on moto: a journey file whose trigger is a segment and a day. The daily run of the day
before reads the segment's members from the by-segment index, a page at a time, into send pages
grouped by send instant, and starts one execution per instant (none per recipient); each customer
gets the message at 10:00 on the day in their own time zone, once, and only if the segment's
definition still holds for them when the instant's worker reaches them."""

from __future__ import annotations

from typing import Any

from moto.ses.models import ses_backends

from functions.journey_step.handler import handler as step_handler
from shared.platform.aws import client
from shared.services.journeys import step
from shared.services.journeys import trigger as journey_trigger
from tests.aws_fixtures import ACCOUNT, REGION, FixedClock, LambdaContext, World
from tests.integration.test_journey_engine import (
    daily_run,
    drain_tasks,
    executions,
    identify,
    post,
    put_journey,
    run,
    track,
)

DAY = 86400
T0 = 1_772_366_400.0  # 2026-03-01 12:00 UTC: a daily run
FLASH_SALE = """
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


def broadcasts(world: World) -> list[dict[str, Any]]:
    """The executions of send instants (a broadcast's, one per instant and daily run)."""
    return [s for s in executions(world) if s.get("mode") == "broadcast"]


def per_recipient(world: World, journey: str = "spring-sale") -> list[dict[str, Any]]:
    return [s for s in executions(world, journey) if s.get("mode") != "broadcast"]


def members_by_instant(world: World) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for item in client("dynamodb").scan(TableName=world.table)["Items"]:
        if "#BCAST#" in item["pk"]["S"] and item["sk"]["S"].startswith("AT#"):
            instant = int(item["sk"]["S"].split("#")[1])
            found.setdefault(instant, []).extend(c["S"] for c in item["customers"]["L"])
    return {k: sorted(v) for k, v in found.items()}


def history_reasons(world: World, customer: str) -> list[tuple[str, str]]:
    """What the customer's history says happened in the broadcast (entered lines left out)."""
    resp = client("dynamodb").query(
        TableName=world.table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :h)",
        ExpressionAttributeValues={":p": {"S": f"STORE#shop-1#CUST#{customer}"}, ":h": {"S": "HIST#"}},
    )
    return [
        (i["type"]["S"], i.get("reason", {}).get("S", "").removeprefix("not eligible: ").split(":")[0])
        for i in resp["Items"]
        if i["type"]["S"] != "entered"
    ]


def _to(mail: Any) -> str:
    return str(mail.destinations[0] if mail.destinations else "")


def buyer(
    world: World, ctx: LambdaContext, clock: FixedClock, user: str, at: float, orders: int = 1, **traits: Any
) -> None:
    clock.now = at
    post(world, ctx, identify(user, **traits), at=at)
    for n in range(orders):
        order = track(user, "Order Completed", f"order-{user}-{n}", order_id=f"o-{user}-{n}", total=30)
        post(world, ctx, order, at=at + 60 + n)


def test_a_broadcast_reaches_the_segment_at_ten_local_on_its_day_once(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: Any
) -> None:
    # Given first-time buyers in Warsaw and Honolulu, one more in Warsaw, a repeat buyer and a subscriber
    # who never ordered; and pages of 2 members, so the audience takes more than one task
    monkeypatch.setattr(journey_trigger, "BROADCAST_PAGE", 2)
    put_journey(world, "spring-sale", FLASH_SALE)
    ordered = T0 - 10 * DAY
    buyer(world, ctx, fixed_clock, "ala", ordered, timezone="Europe/Warsaw")
    buyer(world, ctx, fixed_clock, "hoku", ordered, timezone="Pacific/Honolulu")
    buyer(world, ctx, fixed_clock, "bart", ordered, timezone="Europe/Warsaw")
    buyer(world, ctx, fixed_clock, "rita", ordered, orders=2)
    buyer(world, ctx, fixed_clock, "sub", ordered, orders=0)

    # When the daily run two days before the broadcast comes: nothing starts yet
    fixed_clock.now = T0
    daily_run(world, ctx)
    assert executions(world, "spring-sale") == []

    # The run of the day before starts one execution per send instant, none per member: Warsaw's
    # 10:00 on 3 March is 09:00 UTC, Honolulu's 20:00 UTC
    fixed_clock.now = T0 + DAY
    daily_run(world, ctx)
    assert per_recipient(world) == []
    instants = {s["instant"]: s for s in broadcasts(world)}
    warsaw, honolulu = int(T0 + 2 * DAY - 3 * 3600), int(T0 + 2 * DAY + 8 * 3600)
    assert sorted(instants) == [warsaw, honolulu]
    assert {s["day"] for s in instants.values()} == {"2026-03-03"}
    # and its send pages hold the segment's members, and only them
    assert members_by_instant(world) == {warsaw: ["u:ala", "u:bart"], honolulu: ["u:hoku"]}

    # Bart orders again before his instant comes: no longer a first-time buyer, he gets nothing
    post(
        world,
        ctx,
        track("bart", "Order Completed", "order-bart-9", order_id="o-bart-9", total=30),
        at=T0 + DAY + 60,
    )
    mails = ses_backends[ACCOUNT][REGION].sent_messages
    sent_at = {}
    for instant in sorted(instants):
        fixed_clock.now = T0 + DAY  # when the daily run started the instant's execution
        before = len(mails)
        assert run({**instants[instant]}, ctx, fixed_clock) == []
        sent_at.update({_to(m): fixed_clock.now for m in mails[before:]})

    # Then 10:00 on 3 March in each one's time zone (within the pacing of SES's rate: moto's is 1/s)
    assert sorted(sent_at) == ["ala@example.com", "hoku@example.com"]
    assert warsaw <= sent_at["ala@example.com"] <= warsaw + 2
    assert honolulu <= sent_at["hoku@example.com"] <= honolulu + 2
    flash = [m for m in mails if "SPRING25" in m.raw_data]
    assert len(flash) == 2
    assert history_reasons(world, "u:bart") == [("exited", "not in segment first-time-buyers")]
    assert per_recipient(world) == []

    # And the run on the day (a catch-up) and the day after send nobody anything again
    for day in (2, 3):
        fixed_clock.now = T0 + day * DAY
        daily_run(world, ctx)
        for state in broadcasts(world):
            run({**state}, ctx, fixed_clock)
    assert len([m for m in mails if "SPRING25" in m.raw_data]) == 2
    assert per_recipient(world) == []


def test_broadcast_tasks_only_on_the_day_before_and_the_day(world: World, fixed_clock: FixedClock) -> None:
    from shared.services.wiring import trigger_deps

    put_journey(world, "spring-sale", FLASH_SALE)
    by_day = {}
    for offset in range(-1, 4):
        now = T0 + offset * DAY
        tasks = journey_trigger.schedule_tasks(now, trigger_deps())
        by_day[offset] = [
            (t["audience"], t["key"])
            for t in tasks
            if t.get("journey") == "spring-sale" and t["store_id"] == "shop-1"
        ]
    assert by_day == {
        -1: [],
        0: [],
        1: [("segment:first-time-buyers", "2026-03-03")],
        2: [("segment:first-time-buyers", "2026-03-03")],
        3: [],
    }


def _quota_used_up(monkeypatch: Any) -> dict[str, bool]:
    """SES refuses every send with its daily-quota answer while `on` is True."""
    from botocore.exceptions import ClientError

    from shared.services import wiring

    ses = wiring.step_deps().ses
    real, used_up = ses.send_email, {"on": True}

    def send_email(**kwargs: Any) -> Any:
        if used_up["on"]:
            error = {"Code": "ThrottlingException", "Message": "Daily message quota exceeded."}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendEmail")
        return real(**kwargs)

    monkeypatch.setattr(ses, "send_email", send_email)
    return used_up


def _steps(
    state: dict[str, Any], ctx: LambdaContext, clock: FixedClock, until: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Step Functions' loop (as `run`), keeping the state to go on from: until `until` or the end."""
    happened: list[dict[str, Any]] = []
    while clock.now + state["wait_seconds"] <= until:
        clock.advance(state["wait_seconds"])
        state = step_handler({**state}, ctx)
        happened += state["events"]
        if state["action"] != "wait":
            break
    return state, happened


def _parked_broadcast(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: Any
) -> tuple[dict[str, Any], dict[str, bool]]:
    """Ala's flash-sale run, parked at 10:00 Warsaw on 3 March by SES's used-up daily quota."""
    put_journey(world, "spring-sale", FLASH_SALE)
    buyer(world, ctx, fixed_clock, "ala", T0 - 10 * DAY, timezone="Europe/Warsaw")
    fixed_clock.now = T0 + DAY
    daily_run(world, ctx)
    [instant] = broadcasts(world)
    used_up = _quota_used_up(monkeypatch)
    ten = T0 + 2 * DAY - 3 * 3600  # 10:00 on 3 March in Warsaw
    # the send instant's worker finds SES's quota used up: Ala goes on in her own execution
    run({**instant}, ctx, fixed_clock)
    assert flash_mails() == [] and ten <= fixed_clock.now < ten + 60
    drain_tasks(world, ctx)
    [state] = per_recipient(world)
    assert state["parked_at"] == ten and state["step"] == 0
    return state, used_up


def flash_mails() -> list[Any]:
    return [m for m in ses_backends[ACCOUNT][REGION].sent_messages if "SPRING25" in m.raw_data]


def test_a_broadcast_parked_by_the_ses_quota_on_its_day_goes_when_the_quota_has_room(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: Any
) -> None:
    # Given Ala's broadcast email parked on its day: SES's daily quota is used up
    state, used_up = _parked_broadcast(world, ctx, fixed_clock, monkeypatch)

    # When the rolling 24 h has room again, the next morning (past the broadcast day in Warsaw)
    room = T0 + 3 * DAY - 2 * 3600
    state, happened = _steps(state, ctx, fixed_clock, until=room)
    assert flash_mails() == [] and state["action"] == "wait", happened[-1]
    used_up["on"] = False
    state, happened = _steps(state, ctx, fixed_clock, until=room + DAY)

    # Then it goes then, once: the message was owed on its day, only SES held it back
    [sent] = [e for e in happened if e["type"] == "sent"]
    assert room <= sent["sent_at"] < room + 3600
    assert len(flash_mails()) == 1
    assert state["action"] == "exit" and state["reason"] == "all steps done"


def test_a_broadcast_parked_for_days_is_dropped_as_stale(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: Any
) -> None:
    # Given Ala's broadcast email parked on its day, and SES still refusing days after it
    state, _ = _parked_broadcast(world, ctx, fixed_clock, monkeypatch)
    state, _ = _steps(state, ctx, fixed_clock, until=T0 + 10 * DAY)

    # Then the journey ends, unsent, once the grace after the day is over
    assert flash_mails() == []
    assert state["action"] == "exit" and state["reason"] == "the day has passed"
    assert fixed_clock.now >= T0 + 2 * DAY + 11 * 3600 + step.PARKED_GRACE_S  # 3 March ends 23:00 UTC
