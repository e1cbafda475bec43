"""End to end against `boomerang local`: real handlers, moto underneath, time x3600.

All scenarios are sent first (module fixture) so their journeys run side by side; each test then
waits for its own outcome. One hour of Boomerang time is one real second, so emulator latency
(about a second on a cold start) shows up as up to an hour of lateness, never as earliness.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared import clock
from shared.journeys import execution_name
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

HOUR = 3600
LATE_TOLERANCE = 3 * HOUR  # emulator latency at x3600; sends are never allowed to be early
RUN = uuid.uuid4().hex[:8]


def customer(name: str) -> str:
    return f"{name}-{RUN}"


def identify(user: str, consent: bool = True) -> dict[str, Any]:
    traits: dict[str, Any] = {"email": f"{user}@example.com", "first_name": user.split("-")[0].title()}
    if consent:
        traits["consent"] = {"email": "subscribed"}
        traits["consent_source"] = "e2e"
    return {"type": "identify", "userId": user, "messageId": f"id-{user}", "traits": traits}


def add(user: str, cart: str, n: int = 1) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Added",
        "userId": user,
        "messageId": f"add-{user}-{n}",
        "properties": {
            "cart_id": cart,
            "product_id": f"p{n}",
            "name": f"Thing <{n}>",
            "price": 10 * n,
            "currency": "EUR",
        },
    }


@pytest.fixture(scope="module")
def sent(local: Local) -> dict[str, Any]:
    abandon, buyer, triple = customer("ann"), customer("bob"), customer("tri")
    # Given three shoppers with carts
    status, body = local.post("/v1/batch", {"batch": [identify(abandon), add(abandon, f"cart-{abandon}")]})
    assert (status, body) == (200, {"success": True, "accepted": 2})
    # And one of them buys minutes later, well before the first reminder is due. (Sent in the
    # same batch as the add: at x3600 a second of emulator lag is an hour, so separate requests
    # would test the machine's load rather than Boomerang.)
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": buyer,
        "messageId": f"order-{buyer}",
        "properties": {"order_id": f"o-{buyer}", "cart_id": f"cart-{buyer}", "total": 10, "currency": "EUR"},
    }
    status, body = local.post("/v1/batch", {"batch": [identify(buyer), add(buyer, f"cart-{buyer}"), order]})
    assert (status, body) == (200, {"success": True, "accepted": 3})
    triple_batch = {
        "batch": [identify(triple), add(triple, f"cart-{triple}", 1), add(triple, f"cart-{triple}", 2)]
    }
    for _ in range(3):  # a client retrying the same batch
        assert local.post("/v1/batch", triple_batch)[0] == 200
    return {"abandon": abandon, "buyer": buyer, "triple": triple}


def emails_for(local: Local, user: str) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m["customer_id"] == f"u:{user}"]


def execution_statuses(local: Local, user: str) -> list[str]:
    name = execution_name("demo", "cart-abandonment", f"cart-{user}")
    return [
        e["status"] for e in local.request("GET", "/_local/executions")[1]["executions"] if e["name"] == name
    ]


def profile(local: Local, user: str) -> dict[str, Any]:
    status, body = local.request("GET", f"/_local/profile?store=demo&customer=u:{user}")
    assert status == 200, body
    return body


def test_abandoned_cart_gets_two_emails_at_one_hour_and_one_day(local: Local, sent: dict[str, Any]) -> None:
    user = sent["abandon"]
    # (the profile λ folds the events from its own queue: the profile may not exist yet)
    last_activity = local.wait_for(
        lambda: (
            (r := local.request("GET", f"/_local/profile?store=demo&customer=u:{user}"))[0] == 200
            and r[1].get("last_seen_at")
        ),
        30,
        "profile",
    )
    # When a day and a bit passes
    mails = local.wait_for(lambda: (m := emails_for(local, user)) and len(m) >= 2 and m, 60, "two emails")
    # Then exactly two emails, the first 1 h and the second 24 h after the last cart activity
    assert [m["step"] for m in mails] == ["email-1", "reminder-2"]
    delays = [clock.parse_iso(m["sent_at"]) - last_activity for m in mails]
    assert HOUR <= delays[0] <= HOUR + LATE_TOLERANCE, delays
    assert 24 * HOUR <= delays[1] <= 24 * HOUR + LATE_TOLERANCE, delays
    first = mails[0]
    assert first["to"] == f"{user}@example.com"
    assert first["journey"] == "cart-abandonment"
    assert "Thing &lt;1&gt;" in first["html"] and "Thing <1>" in first["text"]
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/v1/unsubscribe?t=" in first["headers"]["List-Unsubscribe"]


def test_customer_who_buys_gets_no_email(local: Local, sent: dict[str, Any]) -> None:
    user = sent["buyer"]
    # The journey ends once its first step wakes up and sees the order
    local.wait_for(lambda: execution_statuses(local, user) == ["SUCCEEDED"], 30, "the buyer's journey to end")
    p = profile(local, user)
    assert p["orders"]["count"] == 1 and float(p["orders"]["revenue"]) == 10.0
    local.wait_for(lambda: len(emails_for(local, sent["abandon"])) >= 2, 60, "the other journeys to finish")
    assert emails_for(local, user) == []


def test_same_batch_three_times_is_one_update_one_journey_one_email_per_step(
    local: Local, sent: dict[str, Any]
) -> None:
    user = sent["triple"]
    mails = local.wait_for(lambda: (m := emails_for(local, user)) and len(m) >= 2 and m, 60, "two emails")
    p = profile(local, user)
    # identify + two Product Added: three changes, however often the batch arrived
    assert p["version"] == 3
    assert len(execution_statuses(local, user)) == 1
    assert sorted(m["step"] for m in mails) == ["email-1", "reminder-2"]
    assert "Thing &lt;2&gt;" in mails[0]["html"]


def test_bad_input_is_rejected_whole_and_nothing_is_stored(local: Local) -> None:
    user = customer("bad")
    batch = {
        "batch": [
            identify(user),
            {"type": "track", "userId": user, "event": "Order Completed", "properties": {}},
        ]
    }
    status, body = local.post("/v1/batch", batch)
    assert status == 400
    assert body["errors"] == [{"index": 1, "field": "properties.order_id", "message": "Field required"}]
    assert local.post("/v1/batch", {"batch": [identify(user)]}, key="wrong")[0] == 401
    assert local.post("/v1/batch", {"batch": [identify(user)] * 101})[0] == 413
    status, body = local.request("POST", "/v1/batch", b"{not json", {"x-api-key": local.key})
    assert status == 400 and body["error"] == "malformed_json"
    # Nothing from the rejected batch reached the profile store
    assert local.request("GET", f"/_local/profile?store=demo&customer=u:{user}")[0] == 404
