"""Delivery policy end to end on `boomerang local`: channel fallback, quiet hours, carrier STOP, SES
complaints, caps across journeys, and provider throttling on every channel.

All customers are sent at once (module fixture), with throttling injected on email, SMS and push
first; each test then waits for its own outcome. The day-after reminder lists SMS, push, email;
email-1 (1 h) and last-chance (72 h) are email only.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain.journey_decisions import execution_name
from shared.platform import clock
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

HOUR = 3600
RUN = uuid.uuid4().hex[:8]
WAIT = 150  # real seconds: the 72 h last-chance email plus retries, with room for a loaded machine


def user(name: str) -> str:
    return f"{name}-{RUN}"


def identify(name: str, consent: dict[str, str], **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user(name),
        "messageId": f"id-{user(name)}",
        "traits": {
            "email": f"{user(name)}@example.com",
            "first_name": name.title(),
            "consent": consent,
            **traits,
        },
    }


def add(name: str, cart: str | None = None) -> dict[str, Any]:
    cart = cart or f"cart-{user(name)}"
    return {
        "type": "track",
        "event": "Product Added",
        "userId": user(name),
        "messageId": f"add-{cart}",
        "properties": {
            "cart_id": cart,
            "product_id": "p-1",
            "name": "Trail Runner",
            "price": 89,
            "currency": "EUR",
            "image_url": "https://shop.example.com/img/runner.png",
        },
    }


@pytest.fixture(scope="module")
def sent(local: Local) -> None:
    # Given every provider throttles its next calls (push more often than the SDK retries absorb,
    # so Step Functions retries that step)
    status, body = local.request("POST", "/_local/faults", {"email": 3, "sms": 3, "push": 6})
    assert status == 200, body
    yes = "subscribed"
    batch = [
        identify("pia", {"email": yes, "push": yes}, timezone="Asia/Tokyo"),
        {
            "type": "track",
            "event": "Device Registered",
            "userId": user("pia"),
            "messageId": f"dev-{RUN}",
            "properties": {"token": f"fcm-token-{RUN}-0123456789", "platform": "fcm"},
        },
        add("pia"),
        identify("sam", {"email": yes, "sms": yes}, phone="+48 601 234 567"),
        add("sam"),
        identify("stop", {"email": yes, "sms": yes}, phone="+48601234599"),  # on moto's opt-out list
        add("stop"),
        {
            **identify("cmp", {"email": yes}),
            "traits": {"email": "complaint@simulator.amazonses.com", "consent": {"email": yes}},
        },
        add("cmp"),
        identify("uns", {"email": yes}),
        add("uns"),
        identify("two", {"email": yes}),
        add("two", f"cart-a-{RUN}"),
        add("two", f"cart-b-{RUN}"),
    ]
    assert local.post("/v1/batch", {"batch": batch}) == (200, {"success": True, "accepted": len(batch)})


def messages(local: Local, name: str) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m["customer_id"] == f"u:{user(name)}"]


def finished(local: Local, name: str, count: int) -> list[dict[str, Any]]:
    try:
        return local.wait_for(lambda: (m := messages(local, name)) and len(m) >= count and m, WAIT, name)
    except AssertionError as exc:  # say what did happen
        got = [(m["channel"], m["step"], m["instance"], m["sent_at"]) for m in messages(local, name)]
        executions = local.request("GET", "/_local/executions")[1]["executions"]
        raise AssertionError(f"{exc}; {name} got {got}; executions {executions}") from None


def local_hour(message: dict[str, Any], tz: str) -> float:
    at = datetime.fromtimestamp(clock.parse_iso(message["sent_at"]), tz=UTC).astimezone(ZoneInfo(tz))
    return at.hour + at.minute / 60


def test_one_click_unsubscribe_stops_the_next_marketing_email(local: Local, sent: None) -> None:
    # Given email-1 arrived with its List-Unsubscribe header
    [first] = finished(local, "uns", 1)
    url = first["headers"]["List-Unsubscribe"].split(",")[0].strip().strip("<>")
    path = url.removeprefix(local.url)
    # When the mailbox provider POSTs the RFC 8058 one-click body to it
    status, _ = local.request(
        "POST", path, b"List-Unsubscribe=One-Click", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200
    # Then the journey ends without emailing the day-after reminder
    name = execution_name("demo", "cart-abandonment", f"cart-{user('uns')}")
    local.wait_for(
        lambda: (
            [e for e in local.request("GET", "/_local/executions")[1]["executions"] if e["name"] == name][0][
                "status"
            ]
            == "SUCCEEDED"
        ),
        WAIT,
        "the journey to end",
    )
    assert [m["step"] for m in messages(local, "uns")] == ["email-1"]
    profile = local.request("GET", f"/_local/profile?store=demo&customer=u:{user('uns')}")[1]
    assert (profile["consent"]["email"]["status"], profile["consent"]["email"]["source"]) == (
        "unsubscribed",
        "one-click",
    )


def test_app_user_gets_the_reminder_as_push_in_her_daytime(local: Local, sent: None) -> None:
    mails = finished(local, "pia", 3)
    assert [(m["channel"], m["step"]) for m in mails] == [
        ("email", "email-1"),
        ("push", "reminder-2"),
        ("email", "last-chance"),
    ]
    push = mails[1]
    assert push["subject"] == "A little something for your cart"
    assert "CART10" in push["text"]  # the day-after reminder carries the cart offer
    assert "utm_medium=push" in push["headers"]["deep_link"]
    assert push["headers"]["image_url"] == "https://shop.example.com/img/runner.png"
    assert 8 <= local_hour(push, "Asia/Tokyo") < 21  # quiet hours 21:00-08:00 in her own zone


def test_text_subscriber_gets_the_reminder_by_sms_in_his_daytime(local: Local, sent: None) -> None:
    mails = finished(local, "sam", 3)
    assert [(m["channel"], m["step"]) for m in mails] == [
        ("email", "email-1"),
        ("sms", "reminder-2"),
        ("email", "last-chance"),
    ]
    sms = mails[1]
    assert sms["to"] == "+48601234567"
    assert "CART10" in sms["text"]
    assert "Reply STOP" in sms["text"]
    assert 8 <= local_hour(sms, "Europe/Warsaw") < 21  # zone from the +48 number


def test_carrier_stop_moves_the_reminder_to_email_and_withdraws_sms_consent(local: Local, sent: None) -> None:
    mails = finished(local, "stop", 3)
    assert [(m["channel"], m["step"]) for m in mails] == [
        ("email", "email-1"),
        ("email", "reminder-2"),
        ("email", "last-chance"),
    ]
    profile = local.request("GET", f"/_local/profile?store=demo&customer=u:{user('stop')}")[1]
    assert profile["consent"]["sms"]["status"] == "unsubscribed"
    assert profile["consent"]["sms"]["source"] == "carrier-opt-out"


def test_a_complaint_stops_further_marketing_email(local: Local, sent: None) -> None:
    # email-1 reaches the SES complaint simulator; SES's event comes back through the default bus
    [first] = finished(local, "cmp", 1)
    assert first["step"] == "email-1"
    local.wait_for(lambda: len(messages(local, "pia")) >= 3, WAIT, "the later reminders")
    assert [m["step"] for m in messages(local, "cmp")] == ["email-1"]


def test_caps_count_across_two_cart_journeys(local: Local, sent: None) -> None:
    mails = finished(local, "two", 3)
    times = [clock.parse_iso(m["sent_at"]) for m in mails]
    # 1 marketing message a day, whichever journey sends it
    assert all(later - earlier >= 24 * HOUR for earlier, later in pairwise(times)), mails
    assert {m["instance"] for m in mails} == {f"cart-a-{RUN}", f"cart-b-{RUN}"}, [
        (m["instance"], m["step"], m["sent_at"]) for m in mails
    ]


def test_throttled_providers_still_deliver_every_message_exactly_once(local: Local, sent: None) -> None:
    local.wait_for(
        lambda: all(len(messages(local, n)) >= 3 for n in ("pia", "sam", "stop", "two")), WAIT, "all"
    )
    sends = Counter((m["customer_id"], m["journey"], m["step"], m["instance"]) for m in local.outbox())
    assert sends and max(sends.values()) == 1
