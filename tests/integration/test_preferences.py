"""The preferences page on the ingest λ: signed link in, one Consent Updated event out."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from functions.ingest.handler import handler
from functions.profile.handler import handler as profile_handler
from shared.platform import signing
from shared.services.consent.preferences import (
    CATEGORIES,
    CHANNELS,
    CONSENT_SOURCE,
    CONSENT_TEXT,
    changes,
    preferences_url,
)
from tests.aws_fixtures import (
    SIGNING_SECRET,
    UNSUBSCRIBE_BASE_URL,
    FixedClock,
    LambdaContext,
    World,
    api_request,
    canonical,
    sqs_batch,
)
from tests.events import load_event
from tests.pages import SAME_ORIGIN, with_form_token

KEY = SIGNING_SECRET.encode()
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token(now: float, customer_id: str = "u:user-42", key: bytes = KEY, channel: str = "sms") -> str:
    url = preferences_url(UNSUBSCRIBE_BASE_URL, key, "shop-1", customer_id, channel, now)
    assert urlsplit(url).path == "/prod/v1/preferences"
    return urlsplit(url).query.removeprefix("t=")


def request(ctx: LambdaContext, method: str, query: str, body: bytes | None = None) -> tuple[int, str]:
    """A GET, or a POST made with the page's own form (a browser's same-origin post)."""
    headers = FORM
    if method == "POST":
        body = with_form_token(body, request(ctx, "GET", query)[1])
        headers = SAME_ORIGIN
    result = handler(api_request(method, "/v1/preferences", body, headers, query=query), ctx)
    assert result["multiValueHeaders"]["Content-Type"][0].startswith("text/html")
    return result["statusCode"], str(result["body"])


def form(channels: list[str], categories: list[str], shown: list[str]) -> bytes:
    fields: list[tuple[str, str]] = [("form", "preferences")]
    fields += [("shown", c) for c in shown] + [("channel", c) for c in channels]
    fields += [("category", c) for c in categories]
    return urlencode(fields).encode()


def checked(page: str, name: str) -> set[str]:
    return set(re.findall(rf'name={name} value="([a-z]+)" checked', page))


def subscribed_customer(world: World, at: float) -> None:
    [identify] = canonical([load_event("identify_with_consent")], at)  # email: subscribed
    world.profiles().apply(identify)


def consent_events(world: World) -> list[dict[str, Any]]:
    return [e for e in world.published("profile") if e["detail"].get("event") == "Consent Updated"]


def test_page_shows_a_box_per_channel_and_category_ticked_from_the_profile(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    subscribed_customer(world, fixed_clock.now - 300)
    t = token(fixed_clock.now)

    status, page = request(ctx, "GET", f"t={t}")

    assert status == 200
    assert "<title>Your message preferences</title>" in page
    for value, label in {**CHANNELS, **CATEGORIES}.items():
        assert f'value="{value}"' in page and html.escape(label) in page
    # email is the only channel consented to; every category is wanted until said otherwise
    assert checked(page, "channel") == {"email"}
    assert checked(page, "category") == set(CATEGORIES)
    assert '<input type=hidden name=shown value="email">' in page
    assert html.escape(CONSENT_TEXT) in page
    assert f'<form method=post action="?t={t}">' in page
    assert "<legend>" in page and "<script" not in page  # labelled fieldsets, no JS
    # looking is not choosing
    assert world.published("profile") == []


def test_saving_publishes_one_consent_updated_with_the_choices(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a customer subscribed to email only
    subscribed_customer(world, fixed_clock.now - 300)

    # When they untick email, tick SMS, and keep only offers
    body = form(channels=["sms"], categories=["offers"], shown=["email"])
    status, page = request(ctx, "POST", f"t={token(fixed_clock.now)}", body)

    # Then exactly one Consent Updated went on the bus, carrying the choices and the page's wording
    assert status == 200 and "Your preferences are saved" in page
    [event] = consent_events(world)
    detail = event["detail"]
    assert (detail["type"], detail["user_id"], detail["store_id"]) == ("track", "user-42", "shop-1")
    assert detail["properties"] == {
        "consent": {"email": "unsubscribed", "sms": "subscribed"},
        "categories": {"reminders": "unsubscribed", "offers": "subscribed", "news": "unsubscribed"},
        "consent_source": CONSENT_SOURCE,
        "consent_text": CONSENT_TEXT,
    }
    # (offered to journeys like every track call; none starts on a withdrawal)
    assert [e["detail"]["event"] for e in world.published("journey")] == ["Consent Updated"]

    # And once the profile λ folds it, email is withdrawn and SMS consented, with proof
    assert profile_handler(sqs_batch([event]), ctx) == {"batchItemFailures": []}
    profile = world.profiles().load_profile("shop-1", "u:user-42")
    assert profile is not None
    assert profile.consent["email"].status == "unsubscribed"
    assert profile.consent["sms"].status == "subscribed"
    assert profile.consent["sms"].source == "preferences-page"
    assert profile.consent["sms"].message_id == detail["message_id"]


def test_keeping_a_pre_ticked_box_does_not_rewrite_its_consent(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    subscribed_customer(world, fixed_clock.now - 300)

    status, _ = request(
        ctx, "POST", f"t={token(fixed_clock.now)}", form(["email"], list(CATEGORIES), shown=["email"])
    )

    assert status == 200
    [event] = consent_events(world)
    # the checkout form's consent stays the proof: nothing about email, nothing about never-used channels
    assert event["detail"]["properties"]["consent"] == {}
    assert set(event["detail"]["properties"]["categories"].values()) == {"subscribed"}


def test_a_pre_ticked_box_never_undoes_a_withdrawal_made_meanwhile(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given the page was shown with email ticked, and the customer then unsubscribed by another link
    subscribed_customer(world, fixed_clock.now - 300)
    [withdrawal] = canonical(
        [
            {
                "type": "track",
                "event": "Consent Updated",
                "userId": "user-42",
                "properties": {"consent": {"email": "unsubscribed"}, "consent_source": "one-click"},
            }
        ],
        fixed_clock.now - 10,
    )
    world.profiles().apply(withdrawal)

    # When the old page is submitted with email still ticked
    request(ctx, "POST", f"t={token(fixed_clock.now)}", form(["email"], [], shown=["email"]))

    # Then email is not re-subscribed
    [event] = consent_events(world)
    assert "email" not in event["detail"]["properties"]["consent"]


def test_an_incomplete_form_changes_nothing(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    status, page = request(ctx, "POST", f"t={token(fixed_clock.now)}", b"")

    assert status == 400 and "Nothing was changed" in page
    assert world.published("profile") == []


def forged_query(kind: str, now: float) -> str:
    genuine = token(now)
    version, payload, signature = genuine.split(".")
    return {
        "forged": f"t={token(now, key=b'not-the-real-signing-key-at-all')}",
        "altered": f"t={quote(f'{version}.{payload[:-2]}AA.{signature}')}",
        "expired": f"t={signing.sign(KEY, 'shop-1', 'u:user-42', 'email', now - 1)}",
        "missing": "",
    }[kind]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("kind", ["forged", "altered", "expired", "missing"])
def test_bad_links_are_403_and_nothing_is_published(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, kind: str, method: str
) -> None:
    subscribed_customer(world, fixed_clock.now - 300)
    body = form([], [], shown=["email"]) if method == "POST" else None

    status, page = request(ctx, method, forged_query(kind, fixed_clock.now), body)

    assert status == 403
    assert "This link is not valid" in page
    assert "Ada" not in page and "example.com" not in page.lower()
    assert world.published("profile") == []


# --- the consent rules, without AWS --------------------------------------------------------------


def test_unticked_channels_are_withdrawn_only_where_there_is_something_to_withdraw() -> None:
    props = changes(ticked=set(), shown_ticked={"email"}, subscribed_now={"email"}, ticked_categories=set())
    assert props["consent"] == {"email": "unsubscribed"}


def test_when_the_profile_cannot_be_read_every_unticked_channel_is_withdrawn() -> None:
    props = changes(ticked={"push"}, shown_ticked=set(), subscribed_now=None, ticked_categories={"news"})
    assert props["consent"] == {
        "email": "unsubscribed",
        "sms": "unsubscribed",
        "push": "subscribed",
        "webpush": "unsubscribed",
    }
    assert props["categories"] == {
        "reminders": "unsubscribed",
        "offers": "unsubscribed",
        "news": "subscribed",
    }


def test_a_channel_subscribed_meanwhile_is_not_rewritten_by_a_tick() -> None:
    props = changes(ticked={"sms"}, shown_ticked=set(), subscribed_now={"sms"}, ticked_categories=set())
    assert props["consent"] == {}
