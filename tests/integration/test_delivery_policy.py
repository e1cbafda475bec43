"""The delivery policy in the journey-step λ on moto: fallback, STOP, suppression, quiet hours, caps.

The cart journey's day-after reminder lists push, SMS, email; email-1 is email only. Boomerang's
clock starts at 2026-09-21 13:33 UTC (tests/integration/conftest.py), daytime in London.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from functions.journey_step.handler import handler
from shared.adapters.store_directory import StoreDirectory
from shared.adapters.suppression import SuppressionList
from shared.domain.delivery import Cap, QuietHours
from shared.platform.aws import client
from shared.services import wiring
from tests.aws_fixtures import ACCOUNT, REGION, FixedClock, LambdaContext, World, canonical
from tests.events import load_event

HOUR = 3600
OPTED_OUT = "+48601234599"  # moto treats numbers ending in 99 as on the SMS opt-out list


def customer(
    world: World, t0: float, *, channels: tuple[str, ...], cart: str = "cart-42", **traits: Any
) -> None:
    identify = load_event("identify_with_consent")
    identify["traits"] = {**identify["traits"], "consent": dict.fromkeys(channels, "subscribed"), **traits}
    [event] = canonical([identify], t0 - 300)
    world.profiles().apply(event)
    add = {**load_event("product_added"), "messageId": f"add-{cart}"}
    add["properties"] = {**add["properties"], "cart_id": cart}
    [added] = canonical([add], t0)
    world.profiles().apply(added)


def step(ctx: LambdaContext, t0: float, index: int, cart: str = "cart-42") -> dict[str, Any]:
    state = {
        "store_id": "shop-1",
        "journey": "cart-abandonment",
        "instance": cart,
        "step": index,
        "started_at": t0,
    }
    result: dict[str, Any] = handler({**state, "wait_seconds": 0}, ctx)
    return result


def emails() -> list[Any]:
    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def texts() -> list[tuple[str, str]]:
    return list(sns_backends[ACCOUNT][REGION].sms_messages.values())


def test_day_after_reminder_falls_back_to_sms_and_respects_the_daily_cap(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a customer with email and SMS consent and no app, who got email-1 an hour after adding
    t0 = fixed_clock.now
    customer(world, t0, channels=("email", "sms"))
    fixed_clock.advance(HOUR)
    assert step(ctx, t0, 0)["events"][0]["channel"] == "email"

    # When the day-after reminder is due, only 23 h after email-1
    fixed_clock.advance(23 * HOUR)
    out = step(ctx, t0, 1)

    # Then the 1-a-day cap defers it (not drops it) until email-1 is a day old
    assert [e["type"] for e in out["events"]] == ["deferred", "wait"]
    assert out["events"][0]["reason"] == "frequency cap reached"
    assert (out["action"], out["step"], out["wait_seconds"]) == ("wait", 1, HOUR)

    # And then it goes by SMS (no device for push), marketing type, with the STOP wording
    fixed_clock.advance(HOUR)
    out = step(ctx, t0, 1)
    assert out["events"][0]["type"] == "sent" and out["events"][0]["channel"] == "sms"
    assert out["events"][0]["reason"] == "sent"
    [(phone, body)] = texts()
    assert phone == "+442079460018"
    assert "Reply STOP" in body and "utm_medium=sms" in body
    assert len(emails()) == 1


def test_carrier_stop_withdraws_sms_consent_and_falls_back_to_email(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a customer whose number is on the carrier's opt-out list (they replied STOP)
    t0 = fixed_clock.now
    customer(world, t0, channels=("email", "sms"), phone=OPTED_OUT)
    fixed_clock.advance(25 * HOUR)

    # When the day-after reminder goes out
    out = step(ctx, t0, 1)

    # Then no SMS: the email gets it, and the reason for the fallback is on record
    sent = out["events"][0]
    assert (sent["type"], sent["channel"]) == ("sent", "email")
    assert sent["reason"] == "sms: recipient has opted out of SMS"
    assert texts() == []
    # And SMS consent is withdrawn with its source, so later journeys skip SMS at once
    profile = world.profiles().load_profile("shop-1", "u:user-42")
    assert profile is not None
    assert (profile.consent["sms"].status, profile.consent["sms"].source) == (
        "unsubscribed",
        "carrier-opt-out",
    )


def test_bounced_address_is_never_emailed_again(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given the customer's address hard-bounced
    t0 = fixed_clock.now
    customer(world, t0, channels=("email",))
    SuppressionList(client("dynamodb"), world.table).suppress(
        "shop-1", "email", "ada.lovelace@example.com", kind="hard", reason="bounce", source="ses", at=t0
    )
    fixed_clock.advance(HOUR)

    # When email-1 is due
    out = step(ctx, t0, 0)

    # Then it is skipped with the reason, and nothing is sent
    assert out["events"][0]["type"] == "skipped"
    assert out["events"][0]["reason"] == "email address suppressed (bounced)"
    assert emails() == []


def test_sms_due_at_night_waits_until_eight_in_the_customers_time_zone(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a customer in Tokyo with SMS consent only
    t0 = fixed_clock.now
    customer(world, t0, channels=("sms",), timezone="Asia/Tokyo")
    # When the reminder is due at 23:33 Tokyo time (14:33 UTC the next day)
    fixed_clock.advance(25 * HOUR)
    out = step(ctx, t0, 1)

    # Then it is deferred to 08:00 Tokyo (23:00 UTC), not dropped and not sent at night
    assert out["events"][0]["type"] == "deferred"
    assert out["events"][0]["reason"] == "quiet hours for sms until 08:00 Asia/Tokyo"
    eight = datetime(2026, 9, 22, 23, 0, tzinfo=UTC).timestamp()
    assert out["wait_seconds"] == int(eight - fixed_clock.now)
    assert texts() == []

    # And at 08:00 it goes out
    fixed_clock.now = eight
    assert step(ctx, t0, 1)["events"][0]["channel"] == "sms"
    assert len(texts()) == 1


def test_caps_count_across_journeys(world: World, ctx: LambdaContext, fixed_clock: FixedClock) -> None:
    # Given the same customer abandoned two carts at the same time
    t0 = fixed_clock.now
    customer(world, t0, channels=("email",), cart="cart-42")
    customer(world, t0, channels=("email",), cart="cart-43")
    fixed_clock.advance(HOUR)

    # When both journeys reach email-1
    first, second = step(ctx, t0, 0, cart="cart-42"), step(ctx, t0, 0, cart="cart-43")

    # Then one email goes out and the other journey waits a day instead of a second email today
    assert first["events"][0]["type"] == "sent"
    assert second["events"][0] == {
        "step": 0,
        "step_id": "email-1",
        "type": "deferred",
        "until": fixed_clock.now + 24 * HOUR,
        "reason": "frequency cap reached",
    }
    assert len(emails()) == 1


def test_sms_throttling_gives_the_cap_place_back_and_the_retry_sends_once(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = fixed_clock.now
    customer(world, t0, channels=("sms",))
    fixed_clock.advance(25 * HOUR)
    sns = wiring.step_deps().sns
    real = sns.publish
    calls = {"n": 0}

    def throttled(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish")
        return real(**kwargs)

    monkeypatch.setattr(sns, "publish", throttled)
    # When SNS throttles the first attempt, the task fails with the transient class Step Functions
    # retries on (the message is scrubbed of values: shared/platform/log_safe.py)
    with pytest.raises(Exception, match="TransientSendError"):
        step(ctx, t0, 1)
    # Then the retry sends exactly one SMS: the claim and the cap place were given back
    assert step(ctx, t0, 1)["events"][0]["channel"] == "sms"
    assert len(texts()) == 1
    entries, _ = wiring.step_deps().journeys.cap_ledger("shop-1", "u:user-42")
    assert len(entries) == 1


def store_policy(world: World, **delivery: Any) -> None:
    policy = world.store.delivery.model_copy(update=delivery)
    StoreDirectory(client("dynamodb"), world.table).put(world.store.model_copy(update={"delivery": policy}))


def test_a_cap_of_zero_turns_marketing_off_instead_of_waiting_forever(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    store_policy(world, cap=Cap(per_day=0, per_week=0))
    t0 = fixed_clock.now
    customer(world, t0, channels=("email",))
    fixed_clock.advance(HOUR)
    out = step(ctx, t0, 0)
    assert out["events"][0] == {
        "step": 0,
        "step_id": "email-1",
        "type": "skipped",
        "reason": "marketing email disabled (cap of 0)",
    }
    assert emails() == []


def test_a_fallback_channel_in_quiet_hours_is_deferred_not_dropped(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a store that keeps email quiet at night but not SMS, and a customer whose number is opted out
    store_policy(world, quiet_hours={"sms": None, "push": QuietHours(), "email": QuietHours()})
    t0 = fixed_clock.now
    customer(world, t0, channels=("email", "sms"), phone=OPTED_OUT, timezone="Asia/Tokyo")
    # When the reminder is due at 23:33 in Tokyo: SMS fails for good, email is in quiet hours
    fixed_clock.advance(25 * HOUR)
    out = step(ctx, t0, 1)
    # Then the step waits for 08:00 Tokyo rather than ending without a message
    assert out["events"][0]["type"] == "deferred"
    assert out["events"][0]["reason"] == "sms: recipient has opted out of SMS; email: quiet hours"
    assert out["action"] == "wait" and out["step"] == 1
    fixed_clock.now = datetime(2026, 9, 22, 23, 0, tzinfo=UTC).timestamp()
    assert step(ctx, t0, 1)["events"][0]["channel"] == "email"
    assert texts() == [] and len(emails()) == 1
