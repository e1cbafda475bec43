"""Web push in the journey-step λ on moto, through the one delivery policy: consent, fallback when a
push service says the subscription is gone, quiet hours, caps, 429 Retry-After, exactly once.

The push service is the emulator's stand-in (infra/local/webpush_fake.py) reached in-process: the
sender encrypts and signs for real, the stand-in checks the VAPID JWT and decrypts with the fake
browser's private keys. The cart journey's day-after reminder lists push, webpush, sms, email.
Boomerang's clock starts at 2026-09-21 13:33 UTC, daytime in London.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from moto.sns.models import sns_backends

from functions.journey_step.handler import handler
from infra.local.webpush_fake import PushServiceFake
from shared.platform import settings as env
from shared.platform.aws import client
from shared.platform.settings import settings
from shared.platform.vapid import derive
from shared.services import wiring
from tests.aws_fixtures import ACCOUNT, REGION, FixedClock, LambdaContext, World, canonical
from tests.events import load_event

HOUR = 3600
ROOT = "integration-vapid-root-secret-0123456789abcdef"


class _Response:
    def __init__(self, status: int, headers: dict[str, str], text: str) -> None:
        self.status_code, self.headers, self.text, self.reason = status, headers, text, text


class InProcessSession:
    """A requests.Session stand-in that hands each POST to the push service fake without a socket."""

    def __init__(self, fake: PushServiceFake) -> None:
        self.fake = fake

    def post(self, url: str, data: bytes = b"", headers: Any = None, timeout: Any = None) -> _Response:
        status, out, reason = self.fake.receive(urlsplit(url).path, dict(headers or {}), data or b"")
        return _Response(status, out, reason)


@pytest.fixture
def push(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[PushServiceFake]:
    fake = PushServiceFake()
    fake.url = "https://push.example.test"  # never started: requests arrive through InProcessSession
    arn = client("secretsmanager").create_secret(Name="boomerang-vapid", SecretString=ROOT)["ARN"]
    monkeypatch.setenv(env.VAPID_SECRET_ARN, arn)
    monkeypatch.setattr(wiring, "_webpush_session", lambda ca: InProcessSession(fake))
    settings.cache_clear()
    wiring.reset()
    yield fake


def subscribe(world: World, push: PushServiceFake, at: float, n: int = 1) -> list[dict[str, Any]]:
    subs = [push.subscribe(derive(ROOT.encode(), "shop-1").public_key, f"Browser {i}") for i in range(n)]
    for i, sub in enumerate(subs):
        call = {
            "type": "track",
            "event": "Web Push Subscribed",
            "userId": "user-42",
            "messageId": f"wp-{i}-{at}",
            "properties": {**sub, "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0"},
        }
        [event] = canonical([call], at)
        world.profiles().apply(event)
    return subs


def customer(world: World, t0: float, channels: tuple[str, ...], **traits: Any) -> None:
    identify = load_event("identify_with_consent")
    identify["traits"] = {**identify["traits"], "consent": dict.fromkeys(channels, "subscribed"), **traits}
    [event] = canonical([identify], t0 - 300)
    world.profiles().apply(event)
    add = {**load_event("product_added"), "messageId": "add-cart-42"}
    add["properties"] = {**add["properties"], "cart_id": "cart-42"}
    [added] = canonical([add], t0)
    world.profiles().apply(added)


def step(ctx: LambdaContext, t0: float, index: int) -> dict[str, Any]:
    state = {
        "store_id": "shop-1",
        "journey": "cart-abandonment",
        "instance": "cart-42",
        "step": index,
        "started_at": t0,
    }
    result: dict[str, Any] = handler({**state, "wait_seconds": 0}, ctx)
    return result


def texts() -> list[tuple[str, str]]:
    return list(sns_backends[ACCOUNT][REGION].sms_messages.values())


def profile(world: World) -> Any:
    found = world.profiles().load_profile("shop-1", "u:user-42")
    assert found is not None
    return found


def test_the_reminder_goes_by_web_push_decrypted_by_the_browser_exactly_once(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, push: PushServiceFake
) -> None:
    # Given a customer with SMS consent who allowed notifications in two browsers
    t0 = fixed_clock.now
    customer(world, t0, ("sms",))
    subscribe(world, push, t0 - 60, n=2)
    fixed_clock.advance(25 * HOUR)

    # When the day-after reminder is due (no app: web push is the first usable channel)
    out = step(ctx, t0, 1)

    # Then it went by web push, to both browsers, decrypted there with their own keys
    sent = out["events"][0]
    assert (sent["type"], sent["channel"]) == ("sent", "webpush")
    notes = [m["notification"] for m in push.messages]
    assert len(notes) == 2
    assert notes[0]["title"] == "A little something for your cart"
    assert "CART10" in notes[0]["body"] and notes[0]["url"].startswith("https://")
    assert notes[0]["data"] == {"journey": "cart-abandonment", "step": "reminder-2"}
    assert {(m["ttl"], m["urgency"]) for m in push.messages} == {(24 * HOUR, "normal")}
    assert texts() == []

    # And a redelivered invocation of the same step sends nothing again
    again = step(ctx, t0, 1)
    assert again["events"][0]["type"] != "sent"
    assert len(push.messages) == 2


def test_an_expired_subscription_is_removed_and_the_reminder_falls_back_to_sms(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, push: PushServiceFake
) -> None:
    t0 = fixed_clock.now
    customer(world, t0, ("sms",))
    [sub] = subscribe(world, push, t0 - 60)
    push.expire(sub["endpoint"], 410)
    fixed_clock.advance(25 * HOUR)

    out = step(ctx, t0, 1)

    sent = out["events"][0]
    assert (sent["type"], sent["channel"]) == ("sent", "sms")
    assert sent["reason"] == "webpush: every browser subscription has expired"
    assert len(texts()) == 1 and push.messages == []
    # the subscription left the profile, with the push service's answer as the reason on record
    held = profile(world)
    assert held.webpush == {} and len(held.removed_webpush) == 1


def test_withdrawn_web_push_consent_skips_the_channel(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, push: PushServiceFake
) -> None:
    t0 = fixed_clock.now
    customer(world, t0, ("sms",))
    subscribe(world, push, t0 - 60)
    withdraw = {
        "type": "track",
        "event": "Consent Updated",
        "userId": "user-42",
        "messageId": "withdraw-webpush",
        "properties": {"consent": {"webpush": "unsubscribed"}, "consent_source": "preferences"},
    }
    world.profiles().apply(canonical([withdraw], t0)[0])
    fixed_clock.advance(25 * HOUR)

    out = step(ctx, t0, 1)

    assert (out["events"][0]["type"], out["events"][0]["channel"]) == ("sent", "sms")
    assert push.messages == []


def test_web_push_waits_for_the_end_of_quiet_hours_in_the_customers_zone(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, push: PushServiceFake
) -> None:
    t0 = fixed_clock.now
    customer(world, t0, (), timezone="Asia/Tokyo")
    subscribe(world, push, t0 - 60)
    fixed_clock.advance(25 * HOUR)  # 23:33 in Tokyo

    out = step(ctx, t0, 1)

    assert out["events"][0]["type"] == "deferred"
    assert out["events"][0]["reason"] == "quiet hours for webpush until 08:00 Asia/Tokyo"
    assert push.messages == []


def test_web_push_counts_in_the_frequency_cap(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, push: PushServiceFake
) -> None:
    # Given email-1 went by email an hour after the cart
    t0 = fixed_clock.now
    customer(world, t0, ("email",))
    subscribe(world, push, t0 - 60)
    fixed_clock.advance(HOUR)
    assert step(ctx, t0, 0)["events"][0]["channel"] == "email"

    # When the web push reminder is due 23 h later, the 1-a-day cap defers it
    fixed_clock.advance(23 * HOUR)
    out = step(ctx, t0, 1)
    assert (out["events"][0]["type"], out["events"][0]["reason"]) == ("deferred", "frequency cap reached")
    assert push.messages == []

    # And an hour later it goes by web push
    fixed_clock.advance(HOUR)
    assert step(ctx, t0, 1)["events"][0]["channel"] == "webpush"
    assert len(push.messages) == 1


def test_a_429_defers_by_retry_after_and_the_retry_sends_once(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, push: PushServiceFake
) -> None:
    t0 = fixed_clock.now
    customer(world, t0, ("sms",))
    subscribe(world, push, t0 - 60)
    fixed_clock.advance(25 * HOUR)
    push.throttle_requests(1, retry_after=120)

    out = step(ctx, t0, 1)

    assert out["events"][0]["type"] == "deferred"
    assert out["wait_seconds"] == 120
    assert push.messages == [] and texts() == []  # not sent, and not sent elsewhere either

    fixed_clock.advance(120)
    assert step(ctx, t0, 1)["events"][0]["channel"] == "webpush"
    assert step(ctx, t0, 1)["events"][0]["type"] != "sent"
    assert len(push.messages) == 1
