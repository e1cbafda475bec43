"""Faults around a send, in the journey-step λ on moto: a step λ that dies holding its claim (before
the provider, and while the provider answers), and SES's daily quota running out.

Exactly once is the rule throughout: a claim's lease lets a retry finish what a dead attempt left,
without ever sending twice (shared/services/journeys/claim.py states the guarantee).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.services import wiring
from shared.services.journeys.claim import LEASE_S, Claim
from tests.aws_fixtures import FixedClock, LambdaContext, World
from tests.integration.test_delivery_policy import HOUR, customer, emails, step


class Killed(BaseException):
    """The λ's runtime stopping it (timeout, out of memory): no except clause of ours runs."""


def send_record() -> dict[str, Any] | None:
    deps = wiring.step_deps()
    return deps.journeys.get_send("shop-1", "cart-abandonment", "cart-42", "email-1")


def cap_entries() -> list[dict[str, Any]]:
    entries, _ = wiring.step_deps().journeys.cap_ledger("shop-1", "u:user-42")
    return entries


def test_a_step_killed_between_claim_and_send_sends_exactly_once_after_the_lease(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer due email-1, and a step λ that dies after claiming, before the provider call
    t0 = fixed_clock.now
    customer(world, t0, channels=("email",))
    fixed_clock.advance(HOUR)
    real = Claim.hand_off

    def dies(self: Claim) -> None:
        raise Killed()

    monkeypatch.setattr(Claim, "hand_off", dies)
    with pytest.raises(Killed):
        step(ctx, t0, 0)
    assert (send_record() or {}).get("status") == "claimed" and emails() == []
    monkeypatch.setattr(Claim, "hand_off", real)

    # When Step Functions retries at once, the lease still holds: the step waits, it does not decide twice
    out = step(ctx, t0, 0)
    assert out["events"][0]["type"] == "deferred" and "lease" in out["events"][0]["reason"]
    assert out["action"] == "wait" and 0 < out["wait_seconds"] <= LEASE_S
    assert emails() == []

    # Then after the lease the retry takes the claim over and sends: one email, one cap place
    fixed_clock.advance(LEASE_S)
    out = step(ctx, t0, 0)
    assert (out["events"][0]["type"], out["events"][0]["channel"]) == ("sent", "email")
    assert len(emails()) == 1
    assert len(cap_entries()) == 1
    # And any later retry finds it handled
    assert step(ctx, t0, 0)["events"][0]["type"] in ("already-handled", "wait")
    assert len(emails()) == 1


def test_a_step_killed_while_the_provider_answers_is_never_sent_again(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a step λ that dies after SES accepted the email, before it could record it
    t0 = fixed_clock.now
    customer(world, t0, channels=("email",))
    fixed_clock.advance(HOUR)
    ses = wiring.step_deps().ses
    real = ses.send_email

    def accepted_then_died(**kwargs: Any) -> Any:
        real(**kwargs)
        raise Killed()

    monkeypatch.setattr(ses, "send_email", accepted_then_died)
    with pytest.raises(Killed):
        step(ctx, t0, 0)
    monkeypatch.setattr(ses, "send_email", real)
    assert (send_record() or {}).get("status") == "handed-off"

    # When the retry comes after the lease, the outcome is unknown: recorded, never sent again
    fixed_clock.advance(LEASE_S + 1)
    out = step(ctx, t0, 0)
    assert out["events"][0]["type"] == "unknown"
    assert (send_record() or {}).get("status") == "unknown"
    assert len(emails()) == 1
    assert step(ctx, t0, 0)["events"][0]["type"] in ("already-handled", "wait")
    assert len(emails()) == 1


def test_ses_daily_quota_parks_the_send_until_room_comes_back(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SES has used up the account's daily quota
    t0 = fixed_clock.now
    customer(world, t0, channels=("email",))
    fixed_clock.advance(HOUR)
    ses = wiring.step_deps().ses
    real = ses.send_email
    exhausted = {"on": True}

    def quota(**kwargs: Any) -> Any:
        if exhausted["on"]:
            error = {"Code": "ThrottlingException", "Message": "Daily message quota exceeded."}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "SendEmail")
        return real(**kwargs)

    monkeypatch.setattr(ses, "send_email", quota)

    # When email-1 is due, the step parks (waits) instead of failing the journey
    out = step(ctx, t0, 0)
    assert out["events"][0]["type"] == "deferred" and "quota" in out["events"][0]["reason"]
    assert out["action"] == "wait" and out["wait_seconds"] >= 1800 and out["step"] == 0
    # nothing held meanwhile: no send record, no cap place
    assert send_record() is None and cap_entries() == [] and emails() == []

    # Then once the quota has room again, the parked step sends it, once
    exhausted["on"] = False
    fixed_clock.advance(out["wait_seconds"])
    out = step(ctx, t0, 0)
    assert out["events"][0]["type"] == "sent"
    assert len(emails()) == 1 and len(cap_entries()) == 1
