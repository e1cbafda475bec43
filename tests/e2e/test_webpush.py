"""Web push end to end on `boomerang local`: the site's scripts are served, a fake browser subscribes
through the event API as the subscribe helper posts it, the cart reminder reaches one customer as a
browser notification decrypted by the local push service, and for another falls back web push
(subscription gone: 410) -> SMS (the number replied STOP) -> email, in the one delivery policy.

The day-after reminder lists app push, web push, SMS, email; it comes 24 h after the cart (24 s here).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
WAIT = 150  # real seconds, with room for a loaded machine
OPTED_OUT = "+48601234599"  # on moto's SMS opt-out list


def user(name: str) -> str:
    return f"wp-{name}-{RUN}"


def helper_post(local: Local, call: dict[str, Any]) -> tuple[int, Any]:
    """What boomerang-webpush.js sends: text/plain (no CORS preflight), the write key in the body."""
    body = json.dumps({**call, "writeKey": local.key}).encode()
    return local.request("POST", "/v1/track", body, {"Content-Type": "text/plain"})


def history(local: Local, name: str) -> list[dict[str, Any]]:
    return local.request("GET", f"/_local/history?store=demo&customer=u:{user(name)}")[1]["history"]


def reminder(local: Local, name: str) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m["customer_id"] == f"u:{user(name)}" and m["step"] == "reminder-2"]


def test_web_push_reaches_the_browser_and_falls_back_to_sms_then_email(local: Local) -> None:
    # Given the store's site loads Boomerang's scripts (service worker, helper) and its public key
    status, config = local.request("GET", "/v1/webpush/demo/config")
    assert status == 200 and len(config["publicKey"]) == 87
    status, sw = local.request("GET", "/v1/webpush/demo/boomerang-sw.js")
    assert status == 200 and b"showNotification" in sw and b"pushsubscriptionchange" in sw
    status, helper = local.request("GET", "/v1/webpush/demo/boomerang-webpush.js")
    assert status == 200 and config["publicKey"].encode() in helper
    assert local.request("GET", "/v1/webpush/no-such-store/config")[0] == 404

    # And two shoppers allowed notifications in their browsers (the fake browsers of the local
    # push service), posted as the helper posts them
    yes = "subscribed"
    subs = {}
    for name, browser in (("wes", "Firefox on Linux"), ("wil", "Chrome on Android")):
        status, sub = local.request(
            "POST", "/_local/webpush/subscribe", {"store": "demo", "browser": browser}
        )
        assert status == 200, sub
        subs[name] = sub
        subscribed = {
            "type": "track",
            "event": "Web Push Subscribed",
            "userId": user(name),
            "messageId": f"wps-{user(name)}",
            "properties": {**sub, "user_agent": "Mozilla/5.0", "consent_text": "Tell me about my cart"},
        }
        assert helper_post(local, subscribed) == (200, {"success": True, "accepted": 1})
    # a bad subscription is refused whole, naming the field
    bad = {
        "type": "track",
        "event": "Web Push Subscribed",
        "userId": user("wes"),
        "messageId": f"bad-{RUN}",
        "properties": {**subs["wes"], "endpoint": "http://push.example/x"},
    }
    status, body = helper_post(local, bad)
    assert status == 400 and body["errors"][0]["field"] == "properties.endpoint"

    # wil's browser dropped its subscription since; his number replied STOP
    local.request("POST", "/_local/webpush/expire", {"endpoint": subs["wil"]["endpoint"], "status": 410})
    batch: list[dict[str, Any]] = []
    for name, traits in (
        ("wes", {"email": f"{user('wes')}@example.com", "consent": {"email": yes}}),
        (
            "wil",
            {
                "email": f"{user('wil')}@example.com",
                "phone": OPTED_OUT,
                "consent": {"email": yes, "sms": yes},
            },
        ),
    ):
        batch += [
            {"type": "identify", "userId": user(name), "messageId": f"id-{user(name)}", "traits": traits},
            {
                "type": "track",
                "event": "Product Added",
                "userId": user(name),
                "messageId": f"add-{user(name)}",
                "properties": {
                    "cart_id": f"cart-{user(name)}",
                    "product_id": "p-1",
                    "name": "Trail Runner",
                    "price": 89,
                    "currency": "EUR",
                    "image_url": "https://shop.example.com/img/runner.png",
                },
            },
        ]
    assert local.post("/v1/batch", {"batch": batch})[0] == 200

    # When the day-after reminder comes due for both
    [wes] = local.wait_for(lambda: reminder(local, "wes"), WAIT, "wes's reminder")
    [wil] = local.wait_for(lambda: reminder(local, "wil"), WAIT, "wil's reminder")

    # Then wes got it as a browser notification, decrypted by his browser: title, body, image, link
    assert wes["channel"] == "webpush" and wes["to"] == "Firefox on Linux"
    assert wes["subject"] == "A little something for your cart"
    assert "CART10" in wes["text"]
    assert wes["headers"]["image_url"] == "https://shop.example.com/img/runner.png"
    assert (
        wes["headers"]["deep_link"].startswith("http") and "utm_medium=webpush" in wes["headers"]["deep_link"]
    )
    assert (wes["headers"]["ttl"], wes["headers"]["urgency"]) == ("86400", "normal")

    # And wil got it by email after web push (410) and SMS (STOP) failed, both on record
    assert wil["channel"] == "email"
    [sent] = [h for h in history(local, "wil") if h.get("step_id") == "reminder-2" and h["type"] == "sent"]
    assert sent["fallbacks"] == [
        "webpush: every browser subscription has expired",
        "sms: recipient has opted out of SMS",
    ]
    # his dead subscription left his profile, and his SMS consent is withdrawn
    profile = local.request("GET", f"/_local/profile?store=demo&customer=u:{user('wil')}")[1]
    assert profile["webpush"] == {} and len(profile["removed_webpush"]) == 1
    assert profile["consent"]["sms"]["status"] == "unsubscribed"
    assert profile["consent"]["webpush"]["text"] == "Tell me about my cart"

    # And each got exactly one reminder
    assert len(reminder(local, "wes")) == len(reminder(local, "wil")) == 1
