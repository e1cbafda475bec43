"""Double opt-in for email: new consent waits as 'pending' until the customer clicks the link that
Boomerang emails to the address; until then no marketing email goes out."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from moto.ses.models import ses_backends

from functions.ingest.handler import handler as ingest
from functions.journey_step.handler import handler as step
from functions.journey_trigger.handler import handler as trigger
from functions.profile.handler import handler as fold
from shared.adapters.store_directory import StoreDirectory
from shared.domain.api_calls import normalise
from shared.platform import signing
from shared.platform.aws import client
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
    bus_envelope,
    canonical,
    sqs_batch,
)
from tests.events import load_event
from tests.pages import SAME_ORIGIN, with_form_token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def doi(world: World) -> World:
    """The shop asks new email subscribers to confirm."""
    StoreDirectory(client("dynamodb"), world.table).put(
        world.store.model_copy(update={"double_opt_in_email": True})
    )
    return world


def profile(world: World) -> Any:
    found = world.profiles().load_profile("shop-1", "u:user-42")
    assert found is not None
    return found


def sent() -> list[Any]:
    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def confirm_link() -> str:
    [message] = sent()
    raw = message.raw_data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
    start = raw.index(f"{UNSUBSCRIBE_BASE_URL}/v1/confirm?t=")
    return raw[start:].split()[0].split('"')[0]


def confirm_request(ctx: LambdaContext, method: str, link: str) -> tuple[int, str]:
    """Opening the link, or pressing the page's button (a browser's same-origin form post)."""
    query = urlsplit(link).query
    body, headers = None, FORM
    if method == "POST":
        body = with_form_token(b"confirm=yes", confirm_request(ctx, "GET", link)[1])
        headers = SAME_ORIGIN
    result = ingest(api_request(method, "/v1/confirm", body, headers, query=query), ctx)
    return result["statusCode"], str(result["body"])


def test_new_email_consent_is_pending_until_confirmed(
    doi: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    world = doi
    # Given a customer gives email consent at the shop's checkout
    [identify] = canonical([load_event("identify_with_consent")], fixed_clock.now)
    world.profiles().apply(identify)

    # Then the consent is held as pending, and marketing email is not allowed yet
    assert profile(world).consent["email"].status == "pending"
    assert profile(world).can_email() == (False, "email consent awaiting confirmation")

    # And the trigger starts the confirmation journey for that customer
    assert trigger(sqs_batch([bus_envelope(identify)]), ctx) == {"batchItemFailures": []}
    [execution] = world.executions()
    state = json.loads(
        client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    )
    assert (state["journey"], state["instance"], state["wait_seconds"]) == (
        "email-confirmation",
        "u:user-42",
        0,
    )

    # When its step runs, one confirmation email goes out, even without marketing consent
    out = step(state, ctx)
    assert [e["type"] for e in out["events"]] == ["sent", "exit"]
    link = confirm_link()
    assert sent()[0].source.endswith("<hello@shop.example.com>")

    # And a link scanner's GET changes nothing
    status, page = confirm_request(ctx, "GET", link)
    assert status == 200 and "Yes, subscribe me" in page
    assert world.published("profile") == []

    # When the customer presses the button, the confirmed consent travels the bus to the profile
    status, page = confirm_request(ctx, "POST", link)
    assert status == 200 and "confirmed" in page
    published = world.published("profile")
    assert [p["detail"]["properties"]["consent_source"] for p in published] == ["boomerang:double-opt-in"]
    assert fold(sqs_batch(published), ctx) == {"batchItemFailures": []}
    assert profile(world).consent["email"].status == "subscribed"
    assert profile(world).can_email() == (True, "ok")

    # And the journey, woken again, has nothing left to do
    again = step(state, ctx)
    assert again["reason"] == "email consent already confirmed"
    assert len(sent()) == 1


def test_stores_without_double_opt_in_start_no_confirmation(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    [identify] = canonical([load_event("identify_with_consent")], fixed_clock.now)
    world.profiles().apply(identify)
    assert profile(world).consent["email"].status == "subscribed"
    assert trigger(sqs_batch([bus_envelope(identify)]), ctx) == {"batchItemFailures": []}
    assert world.executions() == []


def test_a_restated_consent_does_not_undo_a_confirmation(doi: World, fixed_clock: FixedClock) -> None:
    world = doi
    [identify] = canonical([load_event("identify_with_consent")], fixed_clock.now)
    world.profiles().apply(identify)
    confirmed = canonical(
        [
            {
                "type": "track",
                "event": "Consent Updated",
                "userId": "user-42",
                "messageId": "c1",
                "properties": {"consent": {"email": "subscribed"}},
            }
        ],
        fixed_clock.now + 10,
    )[0].model_copy(
        update={
            "properties": {"consent": {"email": "subscribed"}, "consent_source": "boomerang:double-opt-in"}
        }
    )
    world.profiles().apply(confirmed)
    assert profile(world).consent["email"].status == "subscribed"
    # the shop sends the same checkout consent again a week later
    [again] = canonical(
        [{**load_event("identify_with_consent"), "messageId": "again"}], fixed_clock.now + 7 * 86400
    )
    world.profiles().apply(again)
    assert profile(world).consent["email"].status == "subscribed"
    assert profile(world).consent["email"].source == "boomerang:double-opt-in"


def test_stores_cannot_claim_a_confirmation_themselves() -> None:
    call = {
        "type": "identify",
        "userId": "u",
        "traits": {"consent": {"email": "subscribed"}, "consent_source": "boomerang:double-opt-in"},
    }
    events, errors = normalise([call], "shop-1", 0)
    assert events == [] and errors[0].field == "traits.consent_source"
    assert "reserved" in errors[0].message


def test_links_only_do_what_they_were_made_for(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # An unsubscribe link cannot confirm, and a confirmation link cannot unsubscribe
    unsub = unsubscribe_url(
        UNSUBSCRIBE_BASE_URL, SIGNING_SECRET.encode(), "shop-1", "u:user-42", "email", fixed_clock.now
    )
    assert confirm_request(ctx, "POST", unsub.replace("/v1/unsubscribe", "/v1/confirm"))[0] == 403
    token = signing.sign(
        SIGNING_SECRET.encode(), "shop-1", "u:user-42", "confirm:email", fixed_clock.now + 3600
    )
    result = ingest(
        api_request("POST", "/v1/unsubscribe", b"List-Unsubscribe=One-Click", FORM, query=f"t={token}"), ctx
    )
    assert result["statusCode"] == 403
    assert world.published("profile") == []


def test_logging_in_again_and_again_sends_one_confirmation(
    doi: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given the storefront sends the same checkout consent on every login, while it is pending
    # (Boomerang's clock agrees with Step Functions' here, as on AWS: stopDate is wall time)
    fixed_clock.now = time.time()
    world = doi
    first, second = canonical(
        [
            load_event("identify_with_consent"),
            {**load_event("identify_with_consent"), "messageId": "login-2"},
        ],
        fixed_clock.now,
    )
    second = second.model_copy(update={"received_at": fixed_clock.now + 3600})
    for event in (first, second):
        world.profiles().apply(event)
        assert trigger(sqs_batch([bus_envelope(event)]), ctx) == {"batchItemFailures": []}
        fixed_clock.advance(10)
        [execution] = [e for e in world.executions() if e["status"] == "RUNNING"]
        state = json.loads(
            client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
        )
        step(state, ctx)
        client("stepfunctions").stop_execution(executionArn=execution["executionArn"])  # its run ended

    # Then the request stays the first one, and only one confirmation email went out
    assert profile(world).consent["email"].message_id == first.message_id
    assert len(sent()) == 1


def test_the_journey_waits_for_the_profile_to_record_the_request(
    doi: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given the trigger ran before the profile λ folded the consent (they read separate queues)
    world = doi
    [identify] = canonical([load_event("identify_with_consent")], fixed_clock.now)
    assert trigger(sqs_batch([bus_envelope(identify)]), ctx) == {"batchItemFailures": []}
    [execution] = world.executions()
    state = json.loads(
        client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    )
    out = step(state, ctx)
    # Then it waits instead of ending, and sends once the request is there
    assert (out["action"], out["reason"]) == ("wait", "waiting for the consent request to reach the profile")
    world.profiles().apply(identify)
    fixed_clock.advance(300)
    assert [e["type"] for e in step(out, ctx)["events"]] == ["sent", "exit"]
    assert len(sent()) == 1


def test_the_confirmation_itself_starts_no_new_journey(
    doi: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    confirmed = canonical(
        [
            {
                "type": "track",
                "event": "Consent Updated",
                "userId": "user-42",
                "messageId": "c1",
                "properties": {"consent": {"email": "subscribed"}},
            }
        ],
        fixed_clock.now,
    )[0]
    confirmed = confirmed.model_copy(
        update={
            "properties": {"consent": {"email": "subscribed"}, "consent_source": "boomerang:double-opt-in"}
        }
    )
    assert trigger(sqs_batch([bus_envelope(confirmed)]), ctx) == {"batchItemFailures": []}
    assert doi.executions() == []
