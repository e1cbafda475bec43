"""Hostile and faulty requests against the running emulator: the public pages answer 403 with
their security headers, and no log line of the run carries a customer's email, phone or name
(issue 16, items 3 and 4; the whole session's logs are scanned again at its end, conftest.py)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from tests.e2e import log_scan
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
NAME = f"Yolanda{RUN[:4].upper()}"
EMAIL = f"yolanda-{RUN}@example.com"


def raw(local: Local, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(local.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


def customer(user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": f"id-{user}", "traits": traits}


def test_errors_of_every_kind_leave_no_customer_value_in_any_log_line(local: Local) -> None:
    yes = "subscribed"
    # A phone that is no phone, an email that is no email, a name where a number belongs
    bad = [
        customer(f"p-{RUN}", email=EMAIL, first_name=NAME, phone=f"+1 555 {NAME}"),
        customer(f"e-{RUN}", email=f"{NAME}-at-example.com", first_name=NAME),
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"o-{RUN}",
            "messageId": f"o-{RUN}",
            "properties": {"order_id": NAME, "total": NAME, "email": EMAIL},
        },
    ]
    for call in bad:
        status, _ = local.post("/v1/batch", {"batch": [call]})
        assert status < 500
    # A body that is not JSON, quoting the values; a write key nobody has
    auth = "Basic " + base64.b64encode(f"{local.key}:".encode()).decode()
    not_json = f'{{"batch": [{{"traits": {{"email": "{EMAIL}", "first_name": {NAME}'.encode()
    status, _ = local.request(
        "POST", "/v1/batch", not_json, {"Authorization": auth, "Content-Type": "application/json"}
    )
    assert status == 400
    assert (
        local.post("/v1/identify", customer(f"k-{RUN}", email=EMAIL, first_name=NAME), key="wrong-key")[0]
        == 401
    )

    # A customer who buys (the confirmation goes out) and whose address then bounces
    bounce = f"b-{RUN}"
    accepted = [
        customer(
            bounce,
            email="bounce@simulator.amazonses.com",
            first_name=NAME,
            phone="+48 601 234 567",
            consent={"email": yes, "sms": yes},
        ),
        {
            "type": "track",
            "event": "Order Completed",
            "userId": bounce,
            "messageId": f"order-{bounce}",
            "properties": {
                "order_id": f"order-{RUN}",
                "total": 25,
                "currency": "EUR",
                "products": [{"product_id": "p1", "name": "Compass", "price": 25, "quantity": 1}],
            },
        },
    ]
    assert local.post("/v1/batch", {"batch": accepted})[0] == 200
    local.wait_for(
        lambda: [m for m in local.outbox() if m["customer_id"] == f"u:{bounce}"], 90, "the order confirmation"
    )

    # Malformed and cross-site requests to the public pages: 403, with the page's security headers
    for path in ("/v1/unsubscribe?t=v1.%C3%A9.AAAA", "/v1/preferences?t=v1.%FF.AAAA", "/v1/confirm?t=x"):
        status, headers = raw(local, "GET", path, None, {})
        assert status == 403, path
        assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers = raw(local, "GET", "/_local/", None, {})
    assert status == 200 and "frame-ancestors 'none'" in headers["Content-Security-Policy"]

    # Then no log line so far carries any value the session sent (the bounce is processed meanwhile)
    local.wait_for(lambda: any("ses feedback" in line for line in local.log), 30, "the bounce's feedback")
    assert EMAIL in log_scan.emails and NAME in log_scan.names
    assert log_scan.scan() == []
