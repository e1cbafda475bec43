"""One-click unsubscribe through the ingest λ: signed links, a Consent Updated event, a profile that stops email."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from moto.ses.models import ses_backends

from functions.ingest.handler import handler
from functions.journey_step.handler import handler as step_handler
from functions.profile.handler import handler as profile_handler
from shared.platform import signing
from shared.services.consent.unsubscribe import unsubscribe_url
from tests.aws_fixtures import (
    ACCOUNT,
    REGION,
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


def link_token(now: float, customer_id: str = "u:user-42", key: bytes = KEY) -> str:
    url = unsubscribe_url(UNSUBSCRIBE_BASE_URL, key, "shop-1", customer_id, "email", now)
    return urlsplit(url).query.removeprefix("t=")


def request(ctx: LambdaContext, method: str, query: str, body: bytes | None = None) -> tuple[int, str]:
    """A GET, an RFC 8058 one-click POST (a mail server's), or the page's own button (a browser's)."""
    headers = FORM
    if method == "POST" and body != b"List-Unsubscribe=One-Click":
        body = with_form_token(body, request(ctx, "GET", query)[1])
        headers = SAME_ORIGIN
    result = handler(api_request(method, "/v1/unsubscribe", body, headers, query=query), ctx)
    return result["statusCode"], str(result["body"])


def subscribed_customer(world: World, at: float) -> None:
    [identify] = canonical([load_event("identify_with_consent")], at)
    world.profiles().apply(identify)
    profile = world.profiles().load_profile("shop-1", "u:user-42")
    assert profile is not None and profile.can_email() == (True, "ok")


def fold_published(world: World, ctx: LambdaContext) -> list[dict[str, Any]]:
    published = world.published("profile")
    if published:
        assert profile_handler(sqs_batch(published), ctx) == {"batchItemFailures": []}
    return published


def test_valid_link_shows_a_confirmation_form(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    token = link_token(fixed_clock.now)

    status, page = request(ctx, "GET", f"t={token}")

    assert status == 200
    assert "Stop receiving marketing email messages from this store?" in page
    assert f'<form method=post action="?t={token}">' in page
    # merely opening the page (or a mail scanner prefetching it) unsubscribes no one
    assert world.published("profile") == []


def altered(token: str) -> str:
    version, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["c"] = "u:someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{version}.{forged_payload.rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("kind", ["forged", "altered", "expired", "truncated", "missing"])
def test_bad_links_are_403_and_nothing_is_published(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, kind: str, method: str
) -> None:
    now = fixed_clock.now
    genuine = link_token(now)
    query = {
        "forged": f"t={link_token(now, key=b'not-the-real-signing-key-at-all')}",
        "altered": f"t={quote(altered(genuine))}",
        "expired": f"t={signing.sign(KEY, 'shop-1', 'u:user-42', 'email', now - 1)}",
        "truncated": f"t={genuine[:-4]}",
        "missing": "",
    }[kind]

    status, page = request(ctx, method, query, b"List-Unsubscribe=One-Click" if method == "POST" else None)

    assert status == 403
    assert "This link is not valid" in page
    assert world.published("profile") == []


def test_one_click_post_publishes_consent_withdrawal_and_email_stops(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a subscribed customer
    subscribed_customer(world, fixed_clock.now - 300)

    # When their mailbox provider makes the RFC 8058 one-click POST
    status, page = request(ctx, "POST", f"t={link_token(fixed_clock.now)}", b"List-Unsubscribe=One-Click")

    # Then the answer confirms, and a Consent Updated event went on the bus (to the profile only)
    assert status == 200 and "You are unsubscribed" in page
    [event] = fold_published(world, ctx)
    detail = event["detail"]
    assert (detail["type"], detail["event"], detail["user_id"]) == ("track", "Consent Updated", "user-42")
    assert detail["properties"]["consent"] == {"email": "unsubscribed"}
    assert detail["properties"]["consent_source"] == "one-click"
    # (offered to journeys like every track call; none starts on a withdrawal)
    assert [e["detail"]["event"] for e in world.published("journey")] == ["Consent Updated"]

    # And once the profile λ applied it, the customer can no longer be emailed
    profile = world.profiles().load_profile("shop-1", "u:user-42")
    assert profile is not None
    assert profile.can_email() == (False, "email consent withdrawn")
    assert profile.consent["email"].message_id == detail["message_id"]


def test_confirming_on_the_page_is_recorded_as_such(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    subscribed_customer(world, fixed_clock.now - 300)

    status, _ = request(ctx, "POST", f"t={link_token(fixed_clock.now)}", b"confirm=yes")

    assert status == 200
    [event] = fold_published(world, ctx)
    assert event["detail"]["properties"]["consent_source"] == "unsubscribe-page"
    profile = world.profiles().load_profile("shop-1", "u:user-42")
    assert profile is not None and profile.can_email()[0] is False


def test_the_link_in_a_sent_reminder_unsubscribes_and_stops_the_next_one(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a subscribed customer who received the first cart reminder
    t0 = fixed_clock.now
    subscribed_customer(world, t0 - 300)
    [added] = canonical([load_event("product_added")], t0)
    world.profiles().apply(added)
    fixed_clock.advance(3600)
    state = {"store_id": "shop-1", "journey": "cart-abandonment", "instance": "cart-42", "step": 0}
    first = step_handler(state, ctx)
    [sent] = [e for e in first["events"] if e["type"] == "sent"]
    assert sent["step_id"] == "email-1"

    # When they use the one-click link the email carried
    [message] = ses_backends[ACCOUNT][REGION].sent_messages
    header = next(line for line in message.raw_data.splitlines() if line.startswith("List-Unsubscribe: <"))
    link = urlsplit(header.removeprefix("List-Unsubscribe: <").split(">")[0])
    status, _ = request(ctx, "POST", link.query, b"List-Unsubscribe=One-Click")
    assert status == 200
    fold_published(world, ctx)

    # Then the second reminder is skipped because consent was withdrawn
    fixed_clock.advance(24 * 3600)
    second = step_handler({**state, "step": first["step"]}, ctx)
    assert second["events"][0]["type"] == "skipped"
    # (the day-after reminder tries push, then SMS, then email: each says why not)
    # the cart reminder's order is app push, web push, SMS, then email (issue 13)
    assert second["events"][0]["reason"] == (
        "no registered device; no browser push subscription; no sms consent; email consent withdrawn"
    )
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == 1


def test_the_unsubscribe_pages_link_to_the_preferences_page(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    token = link_token(fixed_clock.now)
    preferences = f'<a href="preferences?t={token}">'

    # The question and the confirmation both offer the finer choice, with the same token
    _, question = request(ctx, "GET", f"t={token}")
    status, confirmation = request(ctx, "POST", f"t={token}", b"List-Unsubscribe=One-Click")
    assert status == 200
    assert preferences in question and preferences in confirmation

    # relative to .../v1/unsubscribe, so it lands on .../v1/preferences behind any stage or domain
    [event] = world.published("profile")
    result = handler(api_request("GET", "/v1/preferences", None, FORM, query=f"t={token}"), ctx)
    assert result["statusCode"] == 200 and "Your message preferences" in result["body"]
    assert event["detail"]["properties"]["consent"] == {"email": "unsubscribed"}
