"""The journey-step λ on moto: decide from fresh state, send at most once through SES v2, record why."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError
from moto.ses.models import ses_backends

from functions.journey_step.handler import handler
from shared.adapters.channels.email import TransientSendError
from shared.adapters.journey_store import JourneyStore
from shared.adapters.store_directory import StoreDirectory
from shared.platform import signing
from shared.platform.aws import client
from shared.services import wiring
from tests.aws_fixtures import (
    ACCOUNT,
    REGION,
    SIGNING_SECRET,
    UNSUBSCRIBE_BASE_URL,
    FixedClock,
    LambdaContext,
    World,
    canonical,
)
from tests.events import load_event

HOUR = 3600
JOURNEY = "cart-abandonment"


@pytest.fixture
def t0(fixed_clock: FixedClock) -> float:
    return fixed_clock.now


def apply(world: World, name: str, received_at: float, **changes: Any) -> None:
    [event] = canonical([{**load_event(name), **changes}], received_at)
    assert world.profiles().apply(event).status == "applied"


def shopper(world: World, t0: float, *, consent: bool = True) -> None:
    """Ada identified herself (with or without email consent), then put the runner in cart-42 at t0."""
    identify = load_event("identify_with_consent")
    if not consent:
        for k in ("consent", "consent_source", "consent_text"):
            identify["traits"].pop(k)
    [event] = canonical([identify], t0 - 300)
    world.profiles().apply(event)
    apply(world, "product_added", t0)


def step(ctx: LambdaContext, t0: float, index: int = 0, generation: int = 0) -> dict[str, Any]:
    state = {
        "store_id": "shop-1",
        "journey": JOURNEY,
        "instance": "cart-42",
        "generation": generation,
        "step": index,
        "started_at": t0,
    }
    result: dict[str, Any] = handler({**state, "wait_seconds": 0}, ctx)
    return result


def sent() -> list[Any]:
    return list(ses_backends[ACCOUNT][REGION].sent_messages)


def parsed(message: Any) -> EmailMessage:
    msg = email.message_from_string(message.raw_data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def part(msg: EmailMessage, subtype: str) -> str:
    body = msg.get_body(preferencelist=(subtype,))
    assert body is not None
    return str(body.get_content())


def send_record(world: World, step_id: str) -> dict[str, Any] | None:
    return JourneyStore(client("dynamodb"), world.table).get_send("shop-1", JOURNEY, "cart-42", step_id)


def test_before_due_it_waits_for_the_rest_of_the_delay(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given a cart last touched at t0, and the execution waking 20 minutes later
    shopper(world, t0)
    fixed_clock.advance(20 * 60)

    # When the step runs
    out = step(ctx, t0)

    # Then it waits the remaining 40 minutes, for the same step, and sends nothing
    assert (out["action"], out["step"], out["wait_seconds"]) == ("wait", 0, 40 * 60)
    assert out["reason"] == "waiting for email-1"
    assert sent() == []


def test_due_with_consent_sends_one_compliant_email(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given a subscribed customer whose cart has been idle for an hour
    shopper(world, t0)
    fixed_clock.advance(HOUR)

    # When the step runs
    out = step(ctx, t0)

    # Then email-1 is sent and the execution waits for email-2, timed from the last cart activity
    assert [e["type"] for e in out["events"]] == ["sent", "wait"]
    assert (out["action"], out["step"], out["wait_seconds"]) == ("wait", 1, 24 * HOUR - HOUR)
    [message] = sent()
    assert out["events"][0]["message_id"] == message.id
    assert set(message.destinations) == {"ada.lovelace@example.com"}

    # And the message carries RFC 8058 one-click unsubscribe headers with a genuine token
    msg = parsed(message)
    assert msg["Subject"] == "Ada, you left something in your cart"
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Acme Outdoor", "hello@shop.example.com")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (u.strip().strip("<>") for u in str(msg["List-Unsubscribe"]).split(","))
    assert https.startswith(f"{UNSUBSCRIBE_BASE_URL}/v1/unsubscribe?t=")
    assert mailto == "mailto:unsubscribe@shop.example.com?subject=unsubscribe"
    token = parse_qs(urlsplit(https).query)["t"][0]
    claims = signing.verify(SIGNING_SECRET.encode(), token, fixed_clock.now)
    assert (claims.store_id, claims.customer_id, claims.channel) == ("shop-1", "u:user-42", "email")
    assert (msg["X-Boomerang-Journey"], msg["X-Boomerang-Step"]) == (JOURNEY, "email-1")

    # And the item name from the storefront is escaped in the HTML, plain in the text part
    html = part(msg, "html")
    assert "Trail Runner &lt;Pro&gt;" in html and "Trail Runner <Pro>" not in html
    assert "£89.50" in html
    assert "boomerang_cart=cart-42" in html
    assert "Trail Runner <Pro>" in part(msg, "plain")

    # And the send record says so
    record = send_record(world, "email-1")
    assert record is not None
    assert (record["status"], record["message_id"], record["customer_id"]) == (
        "sent",
        message.id,
        "u:user-42",
    )


def test_marketing_email_shows_the_store_address_and_a_signed_preferences_link(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given a store with a postal address and a subscribed customer whose cart is idle
    shopper(world, t0)
    fixed_clock.advance(HOUR)

    # When the reminder is sent
    step(ctx, t0)

    # Then both parts show the address (CAN-SPAM) and link the customer's own preferences page
    msg = parsed(sent()[0])
    html, text = part(msg, "html"), part(msg, "plain")
    assert "1 Harbour Street, Bristol BS1 4AA, United Kingdom" in html
    assert "1 Harbour Street, Bristol BS1 4AA, United Kingdom" in text
    [link] = re.findall(r'href="([^"]*/v1/preferences\?[^"]*)"', html)
    link = link.replace("&amp;", "&")
    assert link.startswith(f"{UNSUBSCRIBE_BASE_URL}/v1/preferences?t=") and link in text
    claims = signing.verify(SIGNING_SECRET.encode(), parse_qs(urlsplit(link).query)["t"][0], fixed_clock.now)
    assert (claims.store_id, claims.customer_id, claims.channel) == ("shop-1", "u:user-42", "email")


def test_store_without_a_postal_address_sends_no_marketing_email(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given a store whose record has no postal address
    StoreDirectory(client("dynamodb"), world.table).put(world.store.model_copy(update={"address": None}))
    shopper(world, t0)
    fixed_clock.advance(HOUR)

    # When the reminder is due
    out = step(ctx, t0)

    # Then no email goes out (recorded as a failed send, like a broken template), and the reason
    # names what is missing
    assert sent() == []
    assert out["events"][0]["type"] == "failed"
    assert "postal address (Store.address)" in out["events"][0]["reason"]


def test_running_the_same_step_again_never_sends_twice(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given email-1 went out
    shopper(world, t0)
    fixed_clock.advance(HOUR)
    step(ctx, t0)

    # When Step Functions retries the same step (e.g. the λ timed out after SES accepted the message)
    out = step(ctx, t0)

    # Then no second email, and the execution carries on to email-2
    assert len(sent()) == 1
    assert out["events"][0]["type"] == "already-handled"
    assert (out["action"], out["step"]) == ("wait", 1)


def test_a_later_generation_of_the_same_cart_has_its_own_send_records(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given email-1 went out for cart-42's first journey
    shopper(world, t0)
    fixed_clock.advance(HOUR)
    step(ctx, t0)

    # When the cart is shopped again a week later and its second journey reaches email-1
    fixed_clock.advance(7 * 24 * HOUR)
    apply(world, "product_added", fixed_clock.now, messageId="add-next-week")
    fixed_clock.advance(HOUR)
    out = step(ctx, fixed_clock.now - HOUR, generation=1)

    # Then that journey sends its own reminder, and the first journey's record stays as it was
    assert [e["type"] for e in out["events"]] == ["sent", "wait"]
    assert len(sent()) == 2
    assert out["decided_at"] == fixed_clock.now


def test_without_consent_the_step_is_skipped_and_the_journey_continues(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given a customer with an email address but no email consent
    shopper(world, t0, consent=False)
    fixed_clock.advance(HOUR)

    # When email-1 is due
    out = step(ctx, t0)

    # Then it is skipped with the reason recorded, and the journey moves on to reminder-2
    assert out["events"][0] == {
        "step": 0,
        "step_id": "email-1",
        "type": "skipped",
        "reason": "no email consent",
    }
    assert (out["action"], out["step"]) == ("wait", 1)
    record = send_record(world, "email-1")
    assert record is not None and (record["status"], record["reason"]) == ("skipped", "no email consent")

    # And the next day's reminder is skipped too (no consent on any channel) and it waits for the last
    fixed_clock.advance(24 * HOUR)
    out = step(ctx, t0, index=1)
    assert [e["type"] for e in out["events"]] == ["skipped", "wait"]
    # And the last-chance email at 72 h is skipped as well, and the journey ends
    fixed_clock.advance(48 * HOUR)
    out = step(ctx, t0, index=2)
    assert [e["type"] for e in out["events"]] == ["skipped", "exit"]
    assert (out["action"], out["reason"]) == ("exit", "all steps done")
    assert sent() == []


def test_order_completed_ends_the_journey_without_email(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    # Given the customer bought the cart 10 minutes after adding to it
    shopper(world, t0)
    apply(world, "order_completed", t0 + 600)
    fixed_clock.advance(HOUR)

    # When the step wakes up
    out = step(ctx, t0)

    # Then the journey exits, says why, and nothing is sent
    assert (out["action"], out["reason"]) == ("exit", "customer bought (order order-1001)")
    assert sent() == []
    history = JourneyStore(client("dynamodb"), world.table).history("shop-1", JOURNEY, "cart-42")
    assert [(h["type"], h.get("reason")) for h in history] == [
        ("entered", None),
        ("exited", "customer bought (order order-1001)"),
    ]


def test_emptied_cart_ends_the_journey(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float
) -> None:
    shopper(world, t0)
    apply(world, "product_removed", t0 + 60)
    fixed_clock.advance(2 * HOUR)

    out = step(ctx, t0)

    assert (out["action"], out["reason"]) == ("exit", "cart emptied")
    assert sent() == []


def test_throttled_send_releases_the_claim_so_the_retry_sends_once(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SES throttles the first attempt
    shopper(world, t0)
    fixed_clock.advance(HOUR)
    ses = wiring.step_deps().ses

    def throttled(**_: Any) -> Any:
        raise ClientError(
            {
                "Error": {"Code": "TooManyRequestsException", "Message": "Maximum sending rate exceeded."},
                "ResponseMetadata": {"HTTPStatusCode": 429},
            },
            "SendEmail",
        )

    # (a context of its own: monkeypatch.undo() would also undo the world fixture's environment)
    with monkeypatch.context() as patched:
        patched.setattr(ses, "send_email", throttled)

        # When the step runs, it fails so Step Functions retries it with backoff
        with pytest.raises(TransientSendError):
            step(ctx, t0)

    # Then nothing was sent and the claim was released (no send record blocks the retry)
    assert sent() == []
    assert send_record(world, "email-1") is None

    # And the retry, with SES healthy again, sends exactly one email
    out = step(ctx, t0)
    assert out["events"][0]["type"] == "sent"
    assert len(sent()) == 1
    record = send_record(world, "email-1")
    assert record is not None and record["status"] == "sent"


def test_template_store_outage_after_the_claim_does_not_lose_the_email(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, t0: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given S3 is briefly unavailable when the step loads the template
    shopper(world, t0)
    fixed_clock.advance(HOUR)
    s3 = wiring.step_deps().templates._s3

    def slow_down(**_: Any) -> Any:
        raise ClientError(
            {
                "Error": {"Code": "SlowDown", "Message": "Reduce your request rate."},
                "ResponseMetadata": {"HTTPStatusCode": 503},
            },
            "GetObject",
        )

    with monkeypatch.context() as patched:  # not monkeypatch.undo(): that undoes the world fixture too
        patched.setattr(s3, "get_object", slow_down)
        with pytest.raises(ClientError):
            step(ctx, t0)

    # When Step Functions retries the step once S3 is back
    out = step(ctx, t0)

    # Then the reminder goes out (exactly once)
    assert out["events"][0]["type"] == "sent"
    assert len(sent()) == 1
