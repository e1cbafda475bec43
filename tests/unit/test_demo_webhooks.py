"""The demo's Shopify steps: the scenario's webhooks are signed so the receiver's own check accepts them,
map to the journeys the expectations count on, and a webhook before its secret is a clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local import demo
from infra.local.demo import DEFAULT_SCENARIO
from shared.domain.webhooks import signature_ok


def _hooks() -> list[dict[str, Any]]:
    plan = json.loads(DEFAULT_SCENARIO.read_text())
    return [s["webhook"] for s in plan["steps"] if "webhook" in s]


def test_scenario_webhooks_are_signed_as_the_receiver_verifies_and_map_to_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, bytes, dict[str, str]]] = []

    def send(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        sent.append((url, body, headers))
        return 200, {}

    monkeypatch.setattr(demo, "_send", send)
    plan = json.loads(DEFAULT_SCENARIO.read_text())
    secret = next(s["connect"]["secret"] for s in plan["steps"] if "connect" in s)
    signup, checkout_calls = (
        demo._webhook(hook, "http://front", {"shopify": secret}, DEFAULT_SCENARIO.parent)[0]
        for hook in _hooks()
    )
    assert [u for u, _, _ in sent] == ["http://front/v1/webhooks/shopify/demo"] * 2
    for _, body, headers in sent:
        assert signature_ok(secret, body, headers["x-shopify-hmac-sha256"])
        assert "$now" not in body.decode()
    checkout = next(c for c in checkout_calls if c.get("event") == "Checkout Started")
    [link] = plan["expect"]["links"]["nia"]
    assert checkout["properties"]["recovery_url"] == link
    assert checkout["messageId"].startswith(
        "shopify:demo-nia-checkouts-create:"
    )  # as the receiver numbers them

    def consents(calls: list[dict[str, Any]]) -> list[Any]:
        return [(c.get("properties") or c.get("traits") or {}).get("consent") for c in calls]

    # SMS consent at sign-up (no email consent: no welcome series), email consent from the checkout's tick:
    # the two reminders' channels
    assert {"sms": "subscribed"} in consents(signup) and {"email": "subscribed"} not in consents(signup)
    assert {"email": "subscribed"} in consents(checkout_calls)
    # a phone the event API keeps (a reserved or unallocated number would be dropped: no text could go)
    assert signup[0]["traits"].get("phone") and checkout_calls[0]["traits"].get("phone")


def test_a_webhook_before_its_secret_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no 'connect' step set a shopify secret"):
        demo._webhook(_hooks()[0], "http://front", {}, DEFAULT_SCENARIO.parent)
