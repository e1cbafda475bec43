"""Journeys decide the same at --speed 3600 as at x1 when the rest of Boomerang lags (issue 16.8).

The emulator compresses Boomerang's clock, not the work: the profile λ folding an event takes the
same real seconds at any speed. Windows that wait for such work were Boomerang durations, so at
x3600 a 6 h wait for the cart gave up after 6 real seconds ("cart not found", 25 of 54 journeys)
and the 15 min wait for a consent request after 0.25 s (0 of 2 confirmations). Here the same
scenario runs at x1 and x3600 with the profile λ 20 real seconds behind, and must end the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.ses.models import ses_backends

from functions.journey_step.handler import handler as step_handler
from functions.journey_trigger.handler import handler as trigger
from shared.adapters.store_directory import StoreDirectory
from shared.platform import clock
from shared.platform.aws import client
from tests.aws_fixtures import ACCOUNT, REGION, LambdaContext, World, bus_envelope, canonical, sqs_batch
from tests.events import load_event

LAG_REAL_S = 20  # how far behind the profile λ is, on the wall clock


class SpeedClock:
    """Boomerang's clock as the emulator runs it at `speed`, moved by hand."""

    def __init__(self, now: float, speed: float) -> None:
        self.now, self.speed = now, speed

    def __call__(self) -> float:
        return self.now

    def real(self, seconds: float) -> None:
        self.now += seconds * self.speed


@pytest.fixture(params=[1, 3600], ids=["x1", "x3600"])
def speed_clock(request: pytest.FixtureRequest) -> Iterator[SpeedClock]:
    c = SpeedClock(1_790_000_000.0, request.param)
    clock.set_clock(c)
    yield c
    clock.reset_clock()


def run(
    state: dict[str, Any], ctx: LambdaContext, c: SpeedClock, *, catch_up: Any = None
) -> list[tuple[str, str]]:
    """The state machine's loop (Wait wait_seconds -> step) until the journey ends: what happened."""
    happened: list[tuple[str, str]] = []
    for _ in range(60):
        out: dict[str, Any] = step_handler(state, ctx)
        happened += [
            (e["type"], e.get("step_id") or e.get("reason", "")) for e in out["events"] if e["type"] != "wait"
        ]
        if out["action"] != "wait":
            return happened
        if catch_up is not None:
            catch_up()  # the lagging fold lands while the journey waits
            catch_up = None
        c.now += out["wait_seconds"]
        state = out
    raise AssertionError(f"journey still running: {happened}")


def test_a_cart_journey_outlives_a_slow_fold_at_any_speed(
    world: World, ctx: LambdaContext, speed_clock: SpeedClock
) -> None:
    t0 = speed_clock.now
    [identify] = canonical([load_event("identify_with_consent")], t0 - 300)
    world.profiles().apply(identify)
    [added] = canonical([load_event("product_added")], t0)
    state = {
        "store_id": "shop-1",
        "journey": "cart-abandonment",
        "instance": "cart-42",
        "generation": 0,
        "step": 0,
        "started_at": t0,
        "wait_seconds": 0,
    }
    speed_clock.real(LAG_REAL_S)  # the journey's first look: the fold of its cart is 20 s behind

    happened = run(state, ctx, speed_clock, catch_up=lambda: world.profiles().apply(added))

    assert ("exit", "cart not found") not in happened
    assert [h for h in happened if h[0] == "sent"], happened  # the reminders went out, as at x1
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == len([h for h in happened if h[0] == "sent"])


def test_a_double_opt_in_confirmation_outlives_a_slow_fold_at_any_speed(
    world: World, ctx: LambdaContext, speed_clock: SpeedClock
) -> None:
    import json

    StoreDirectory(client("dynamodb"), world.table).put(
        world.store.model_copy(update={"double_opt_in_email": True})
    )
    [identify] = canonical([load_event("identify_with_consent")], speed_clock.now)
    assert trigger(sqs_batch([bus_envelope(identify)]), ctx) == {"batchItemFailures": []}
    [execution] = world.executions()
    state = json.loads(
        client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    )
    speed_clock.real(LAG_REAL_S)  # the step runs before the profile λ folded the consent request

    happened = run(state, ctx, speed_clock, catch_up=lambda: world.profiles().apply(identify))

    assert [h[0] for h in happened] == ["sent", "exit"], happened
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == 1
