"""End to end against `boomerang local`: real handlers, moto underneath, time x3600.

All scenarios are sent first (module fixture) so their journeys run side by side; each test then
waits for its own outcome. One hour of Boomerang time is one real second, so emulator latency
(about a second on a cold start) shows up as up to an hour of lateness, never as earliness.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.domain.journey_decisions import execution_name
from shared.platform import clock
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

HOUR = 3600
# emulator latency at x3600, where a real second is an hour: up to ~3 s on an idle laptop, 5 s seen
# with other suites running on the same two cores. Sends are never allowed to be early.
LATE_TOLERANCE = 6 * HOUR
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


def test_abandoned_cart_gets_three_emails_at_one_hour_one_day_and_three_days(
    local: Local, sent: dict[str, Any]
) -> None:
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
    # When three days and a bit pass
    mails = local.wait_for(lambda: (m := emails_for(local, user)) and len(m) >= 3 and m, 120, "three emails")
    # Then exactly three emails (no phone, no app: the day-after reminder falls back to email), 1 h,
    # 24 h and 72 h after the last cart activity
    assert [(m["step"], m["channel"]) for m in mails] == [
        ("email-1", "email"),
        ("reminder-2", "email"),
        ("last-chance", "email"),
    ]
    # each due at its time after the activity, and (1 marketing message a day) a day after the
    # previous one: a late email-1 moves reminder-2 by as much, never closer than a day
    sent_at = [clock.parse_iso(m["sent_at"]) for m in mails]
    due = [
        last_activity + HOUR,
        max(last_activity + 24 * HOUR, sent_at[0] + 24 * HOUR),
        max(last_activity + 72 * HOUR, sent_at[1] + 24 * HOUR),
    ]
    lateness = [at - d for at, d in zip(sent_at, due, strict=True)]
    assert all(0 <= late <= LATE_TOLERANCE for late in lateness), (lateness, sent_at, last_activity)
    first, offer, last = mails
    assert first["to"] == f"{user}@example.com"
    assert {m["journey"] for m in mails} == {"cart-abandonment"}
    assert "Thing &lt;1&gt;" in first["html"] and "Thing <1>" in first["text"]
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/v1/unsubscribe?t=" in first["headers"]["List-Unsubscribe"]
    assert "CART10" in offer["text"] and "CART10" in offer["html"]  # the day-after reminder's offer
    assert "CART10" not in first["text"] and "last chance" in last["subject"].lower()
    # and the journey is over
    local.wait_for(lambda: execution_statuses(local, user) == ["SUCCEEDED"], 30, "the journey to end")


def test_customer_who_buys_gets_no_cart_email(local: Local, sent: dict[str, Any]) -> None:
    user = sent["buyer"]
    # The journey ends once its first step wakes up and sees the order
    local.wait_for(lambda: execution_statuses(local, user) == ["SUCCEEDED"], 30, "the buyer's journey to end")
    p = profile(local, user)
    assert p["orders"]["count"] == 1 and float(p["orders"]["revenue"]) == 10.0
    local.wait_for(lambda: len(emails_for(local, sent["abandon"])) >= 3, 120, "the other journeys to finish")
    got = emails_for(local, user)
    assert [m for m in got if m["journey"] == "cart-abandonment"] == []
    # (what the buyer does get is the order confirmation, from the post-purchase journey)
    assert ("post-purchase", "confirmation") in [(m["journey"], m["step"]) for m in got]


def test_same_batch_three_times_is_one_update_one_journey_one_email_per_step(
    local: Local, sent: dict[str, Any]
) -> None:
    user = sent["triple"]
    mails = local.wait_for(lambda: (m := emails_for(local, user)) and len(m) >= 3 and m, 120, "three emails")
    p = profile(local, user)
    # identify + two Product Added: three changes, however often the batch arrived
    assert p["version"] == 3
    assert len(execution_statuses(local, user)) == 1
    local.wait_for(lambda: execution_statuses(local, user) == ["SUCCEEDED"], 30, "the journey to end")
    mails = emails_for(local, user)
    assert sorted(m["step"] for m in mails) == ["email-1", "last-chance", "reminder-2"]
    first = next(m for m in mails if m["step"] == "email-1")
    assert "Thing &lt;2&gt;" in first["html"], [(m["step"], m["sent_at"]) for m in mails]


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
