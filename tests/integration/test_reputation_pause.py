"""The account's bounce and complaint rates on moto: the feedback λ counts each SES outcome once, and
the journey step λ pauses marketing email near SES's review thresholds while transactional mail goes on."""

from __future__ import annotations

from typing import Any

from moto.ses.models import ses_backends

from functions.feedback.handler import handler as feedback
from shared.adapters.reputation_store import PK, ReputationStore, _hour
from shared.platform.aws import client
from shared.services.consent.feedback import EMAIL_DELIVERED
from tests.aws_fixtures import ACCOUNT, REGION, FixedClock, LambdaContext, World, sqs_batch
from tests.integration.test_feedback_handler import engagement, permanent_bounce
from tests.integration.test_journey_from_delivery import ordered, run_one

DAY = 86400


def hour_counts(world: World, at: float, **counts: int) -> None:
    """The hour's counters as the feedback λ leaves them (volume without 1,000 events)."""
    client("dynamodb").update_item(
        TableName=world.table,
        Key={"pk": {"S": PK}, "sk": {"S": _hour(at)}},
        UpdateExpression="ADD " + ", ".join(f"{k} :{k}" for k in counts),
        ExpressionAttributeValues={f":{k}": {"N": str(v)} for k, v in counts.items()},
    )


def test_each_outcome_is_counted_once_however_often_it_arrives(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    events = [
        engagement(EMAIL_DELIVERED, "Delivery", "ses-a"),
        engagement(EMAIL_DELIVERED, "Delivery", "ses-b"),
        permanent_bounce(message_id="ses-c"),
    ]
    assert feedback(sqs_batch(events), ctx) == {"batchItemFailures": []}
    # at-least-once delivery, an archive replay, even twice in one batch
    assert feedback(sqs_batch([*events, events[2]]), ctx) == {"batchItemFailures": []}
    rep = ReputationStore(client("dynamodb"), world.table, cache_s=0).window(1789984805.0)
    assert (rep.delivered, rep.bounced, rep.complained) == (2, 1, 0)


def test_marketing_email_pauses_near_review_and_the_order_confirmation_still_goes(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a buyer, and an account whose bounce rate is 4.5% over the week the review request is due in
    t0 = fixed_clock.now
    state = ordered(world, ctx, fixed_clock, "dee", "ord-dee")
    for day in range(8):
        hour_counts(world, t0 + day * DAY, delivered=120, bounced=6)

    # When the post-purchase journey runs: the confirmation is transactional, it goes
    events: list[dict[str, Any]] = []
    while not any(e.get("step_id") == "review" for e in events):
        fixed_clock.advance(state["wait_seconds"])
        state = run_one(state, ctx)
        events += state["events"]
        assert state["action"] == "wait" or any(e.get("step_id") == "review" for e in events)
    confirmation = next(e for e in events if e.get("step_id") == "confirmation")
    assert confirmation["type"] == "sent"

    # Then the review request (marketing) is skipped, and the history says why
    review = next(e for e in events if e.get("step_id") == "review")
    assert review["type"] == "skipped"
    assert "marketing email paused: bounce rate 4.8% over 7 days" in review["reason"]
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == 1
