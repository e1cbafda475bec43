"""Checkout abandonment end to end on its own `boomerang local`, and how the cart journey yields to it.

A shopper who starts checking out and leaves gets the checkout email 30 minutes after that last
activity; the cart journey for the same cart (due an hour after it) sees that the checkout journey
took the cart over and ends without sending. Buying ends the checkout journey before its day-after
reminder. A shopper without consent gets nothing, and the history says why.

The emulator runs at x900 here (not the suite's x3600): the checkout journey's first step must come
before the cart journey's, and 30 Boomerang minutes are then 2 real seconds rather than half of one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.domain.journey_decisions import execution_name
from shared.platform import clock
from tests.e2e.conftest import Local, start_local, stop_local

pytestmark = pytest.mark.e2e

SPEED = 900
MINUTE, HOUR = 60, 3600
LATE_TOLERANCE = 3 * HOUR  # emulator latency (12 real seconds here); never early
WAIT = 240  # real seconds: the checkout journey's day-after step is 96 s away at x900, plus latency
RUN = uuid.uuid4().hex[:8]
TOOK_OVER = "checkout-abandonment took over"


def user(name: str) -> str:
    return f"{name}-{RUN}"


def cart(name: str) -> str:
    return f"cart-{user(name)}"


def identify(name: str, consent: bool) -> dict[str, Any]:
    traits: dict[str, Any] = {"email": f"{user(name)}@example.com", "first_name": name.title()}
    if consent:
        traits |= {"consent": {"email": "subscribed"}, "consent_source": "e2e"}
    return {"type": "identify", "userId": user(name), "messageId": f"id-{user(name)}", "traits": traits}


def product() -> dict[str, Any]:
    return {"product_id": "p-1", "name": "Trail Runner", "price": 89, "currency": "EUR", "quantity": 1}


def add_then_checkout(name: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "track",
            "event": "Product Added",
            "userId": user(name),
            "messageId": f"add-{user(name)}",
            "properties": {"cart_id": cart(name), **product()},
        },
        {
            "type": "track",
            "event": "Checkout Started",
            "userId": user(name),
            "messageId": f"checkout-{user(name)}",
            "properties": {"cart_id": cart(name), "currency": "EUR", "value": 89, "products": [product()]},
        },
    ]


@pytest.fixture(scope="module")
def slower() -> Iterator[Local]:
    proc, server = start_local("--speed", str(SPEED))
    try:
        yield server
    finally:
        stop_local(proc)


@pytest.fixture(scope="module")
def sent(slower: Local) -> None:
    local = slower
    # Given two shoppers who add to a cart and start checking out (one batch each, as a storefront
    # sends them: separate requests would measure the emulator's lag rather than Boomerang), one of
    # whom never agreed to marketing email
    for name, consent in (("leo", True), ("nia", False)):
        batch = [identify(name, consent), *add_then_checkout(name)]
        assert local.post("/v1/batch", {"batch": batch}) == (200, {"success": True, "accepted": 3})


def messages(local: Local, name: str) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m["customer_id"] == f"u:{user(name)}" and m["sent_at"]]


def history(local: Local, name: str) -> list[dict[str, Any]]:
    status, body = local.request("GET", f"/_local/history?store=demo&customer=u:{user(name)}")
    assert status == 200, body
    return list(body["history"])


def status(local: Local, journey: str, name: str) -> str | None:
    wanted = execution_name("demo", journey, cart(name))
    found = [
        e["status"]
        for e in local.request("GET", "/_local/executions")[1]["executions"]
        if e["name"] == wanted
    ]
    return found[0] if found else None


def ended(local: Local, journey: str, name: str) -> dict[str, Any]:
    """Wait for the journey's execution to finish; returns its exit record from the history."""
    try:
        local.wait_for(
            lambda: status(local, journey, name) == "SUCCEEDED", WAIT, f"{journey} for {name} to end"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; history {history(local, name)}") from None
    exits = [h for h in history(local, name) if h["journey"] == journey and h["type"] == "exited"]
    assert len(exits) == 1, exits
    return exits[0]


def test_checkout_left_gets_the_checkout_email_and_the_cart_journey_steps_aside(
    slower: Local, sent: None
) -> None:
    local = slower
    # (the profile λ folds the events from its own queue: the profile may not exist yet)
    profile_path = f"/_local/profile?store=demo&customer=u:{user('leo')}"
    last_activity = local.wait_for(
        lambda: (r := local.request("GET", profile_path))[0] == 200 and r[1].get("last_seen_at"),
        30,
        "profile",
    )
    # When half an hour passes after the checkout started
    [mail] = local.wait_for(lambda: messages(local, "leo"), WAIT, "the checkout email")
    # Then the checkout email arrives, 30 minutes after that last activity (never earlier)
    assert (mail["journey"], mail["step"], mail["channel"]) == ("checkout-abandonment", "checkout-1", "email")
    assert mail["to"] == f"{user('leo')}@example.com"
    assert mail["instance"].split("~")[0] == cart("leo")  # (a run's records carry its trigger's hash)
    assert "checkout" in mail["subject"].lower() and "Trail Runner" in mail["text"]
    delay = clock.parse_iso(mail["sent_at"]) - last_activity
    assert 30 * MINUTE <= delay <= 30 * MINUTE + LATE_TOLERANCE, delay
    # And the cart journey, due an hour after the same activity, ends without sending anything
    exit_ = ended(local, "cart-abandonment", "leo")
    assert exit_["reason"] == TOOK_OVER, exit_
    assert exit_["instance"].split("~")[0] == cart("leo")
    assert [m for m in messages(local, "leo") if m["journey"] == "cart-abandonment"] == []

    # When the shopper then buys, before the checkout journey's day-after reminder
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": user("leo"),
        "messageId": f"order-{user('leo')}",
        "properties": {
            "order_id": f"o-{user('leo')}",
            "cart_id": cart("leo"),
            "total": 89,
            "currency": "EUR",
        },
    }
    assert local.post("/v1/batch", {"batch": [order]}) == (200, {"success": True, "accepted": 1})
    # Then the checkout journey ends on the order, and no checkout-2 (nor any cart message) follows
    exit_ = ended(local, "checkout-abandonment", "leo")
    assert exit_["reason"] == f"customer bought (order o-{user('leo')})", exit_
    sent_steps = [(h["journey"], h["step_id"]) for h in history(local, "leo") if h["type"] == "sent"]
    assert ("checkout-abandonment", "checkout-2") not in sent_steps
    assert [(m["journey"], m["step"]) for m in messages(local, "leo") if m["journey"] != "post-purchase"] == [
        ("checkout-abandonment", "checkout-1")
    ]


def test_shopper_without_consent_gets_nothing_and_the_history_says_why(slower: Local, sent: None) -> None:
    local = slower
    # When both journeys for the cart have run their course
    exit_ = ended(local, "checkout-abandonment", "nia")
    assert exit_["reason"] == "all steps done", exit_
    cart_exit = ended(local, "cart-abandonment", "nia")
    # Then nothing was sent, on any channel
    assert messages(local, "nia") == []
    # And the history says why, step by step
    checkout = {
        h["step_id"]: h["reason"]
        for h in history(local, "nia")
        if h["journey"] == "checkout-abandonment" and h["type"] == "skipped"
    }
    assert checkout == {
        "checkout-1": "no email consent",
        "checkout-2": "no phone number; no registered device; no browser push subscription; no email consent",
    }
    # the checkout journey still took the cart over: the cart journey does not try again
    assert cart_exit["reason"] == TOOK_OVER, cart_exit
    assert not [
        h for h in history(local, "nia") if h["journey"] == "cart-abandonment" and h["type"] == "skipped"
    ]
