"""The report on what the real journey engine recorded: a holdout experiment with two variants is run
by the trigger and step λs (tests/integration/test_journey_engine.py's driver), some customers buy,
and the report's sent / variant / conversion / lift figures match what happened."""

from __future__ import annotations

from typing import Any

from moto.ses.models import ses_backends

from shared.adapters.report_data import collect, scan_table
from shared.domain.journey_decisions import in_holdout
from shared.platform.aws import client
from shared.services.analytics.report import build
from shared.services.wiring import trigger_deps
from tests.aws_fixtures import ACCOUNT, REGION, FixedClock, LambdaContext, World, canonical
from tests.integration.test_journey_engine import (
    HOLDOUT,
    executions,
    identify,
    post,
    put_journey,
    run,
    track,
)

DAY = 86400


def test_report_of_a_holdout_experiment_run_by_the_engine(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given twelve sign-ups entering a journey with a 50% holdout and two variants
    put_journey(world, "experiment", HOLDOUT)
    tags: list[dict[str, str]] = []  # what SES is asked to tag each email with (moto keeps no tags)

    def keep_tags(params: dict[str, Any], **_: Any) -> None:
        tags.append({t["Name"]: t["Value"] for t in params.get("EmailTags", [])})

    client("sesv2").meta.events.register("provide-client-params.sesv2.SendEmail", keep_tags)
    t0 = fixed_clock.now
    users = [f"u{n}" for n in range(12)]
    for u in users:
        post(world, ctx, identify(u), track(u, "Signed Up", f"su-{u}"), at=t0)
    outcomes: dict[str, dict[str, Any]] = {}
    for state in executions(world, "experiment"):
        [event] = [e for e in run({**state}, ctx, fixed_clock) if e.get("step_id") == "hello"]
        outcomes[state["customer_id"]] = event
    journey = trigger_deps().catalog.get("shop-1", "experiment")
    control = {c for c in outcomes if in_holdout(journey, c)}
    treatment = set(outcomes) - control
    # every journey email carries its variant as an SES tag (delivered/opened/clicked per variant)
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == len(treatment)
    assert sorted(t["variant"] for t in tags) == sorted(outcomes[c]["variant"] for c in treatment)
    assert {(t["journey"], t["step"], t["store"]) for t in tags} == {("experiment", "hello", "shop-1")}

    # When the first half of the customers buy (30 each) two days later
    buyers = {f"u:{u}" for u in users[:6]}
    for n, u in enumerate(users[:6]):
        call = track(u, "Order Completed", f"order-{u}", order_id=f"o-{u}", total=30)
        world.profiles().apply(canonical([call], t0 + 2 * DAY + n)[0])

    data = collect(scan_table(client("dynamodb"), world.table, "shop-1"), "shop-1")
    report = build(data, t0 - DAY, t0 + 10 * DAY)
    [experiment] = [j for j in report["journeys"] if j["journey"] == "experiment"]

    # Then: entered 12, one email per treatment customer, split over the variants as the engine chose
    assert experiment["entered"] == 12
    assert experiment["sent"] == len(treatment) and experiment["channels"] == {"email": len(treatment)}
    by_variant: dict[str, int] = {}
    for customer in treatment:
        by_variant[outcomes[customer]["variant"]] = by_variant.get(outcomes[customer]["variant"], 0) + 1
    assert {k: v["sent"] for k, v in experiment["variants"].items()} == by_variant
    # conversions: the buyers who got the email (last touch, within 5 days), 30 each
    converted = buyers & treatment
    assert experiment["conversions"] == len(converted) and experiment["revenue"] == 30 * len(converted)
    # lift: conversion from entry in each group
    lift = experiment["lift"]
    assert lift["treatment"]["entries"] == len(treatment)
    assert lift["treatment"]["conversions"] == len(converted)
    assert lift["control"]["entries"] == len(control)
    assert lift["control"]["conversions"] == len(buyers & control)
    expected = len(converted) / len(treatment) - len(buyers & control) / len(control)
    assert lift["lift"] == round(expected, 4)
    assert lift["ci95"][0] <= lift["lift"] <= lift["ci95"][1]
    # the history's sends carry the step's kind (the welcome email is marketing)
    assert {s.kind for s in data.sends if s.journey == "experiment"} == {"marketing"}
