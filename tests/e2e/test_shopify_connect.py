"""A Shopify store connecting, end to end on `boomerang local`: the secret set with `boomerang stores`,
a signed checkouts/create through the front door becomes the checkout reminder linking Shopify's
own recovery URL; a forged webhook and a replayed one change nothing. Also: a gzip'd batch through
the front door, and a store added by the CLI whose key the front door then accepts.
"""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
import time
import uuid
import zlib
from typing import Any

import pytest

from infra.stores_cli import main as stores
from shared.domain.webhooks import signature
from tests.e2e.conftest import Local
from tests.events import load_event

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
SECRET = f"shpss_e2e_{RUN}"
CUSTOMER_ID = int(RUN, 16)  # Shopify's ids are numbers
TOKEN = f"e2e{RUN}checkouttoken"
EMAIL = f"bob-{RUN}@example.com"
RECOVERY = f"https://checkout.local/548380009/checkouts/{TOKEN}/recover?key=e2e-{RUN}"
WAIT = 60  # real seconds: the checkout email is 30 Boomerang minutes away (0.5 s at x3600) plus latency


def cli(local: Local, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = stores([*argv, "--local", local.url], out, err, io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def checkout() -> bytes:
    payload = copy.deepcopy(load_event("shopify/checkouts_create"))
    payload["token"] = TOKEN
    payload["email"] = EMAIL
    payload["abandoned_checkout_url"] = RECOVERY
    payload["customer"] = {**payload["customer"], "id": CUSTOMER_ID, "email": EMAIL}
    return json.dumps(payload).encode()


def webhook(local: Local, body: bytes, webhook_id: str, hmac: str | None = None) -> tuple[int, Any]:
    return local.request(
        "POST",
        "/v1/webhooks/shopify/demo",
        body,
        {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "checkouts/create",
            "X-Shopify-Hmac-Sha256": signature(SECRET, body) if hmac is None else hmac,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Shop-Domain": "e2e.myshopify.com",
        },
    )


def mails(local: Local) -> list[dict[str, Any]]:
    return [m for m in local.outbox() if m["customer_id"] == f"u:{CUSTOMER_ID}" and m["sent_at"]]


def test_a_signed_shopify_checkout_becomes_the_reminder_and_forgeries_and_replays_change_nothing(
    local: Local,
) -> None:
    # Given the store's Shopify secret, set as the README says
    code, out, err = cli(local, "stores", "set", "demo", "--shopify-secret", "-", stdin=SECRET + "\n")
    assert code == 0, err
    assert f"{local.url}/v1/webhooks/shopify/demo" in out and SECRET not in out

    # When a forged checkout arrives first (signed with a guessed secret), then the real one
    body = checkout()
    status, answer = webhook(local, body, f"forged-{RUN}", hmac=signature("guessed", body))
    assert (status, answer["error"]) == (401, "invalid_signature")
    assert webhook(local, body, f"wh-{RUN}") == (
        200,
        {"success": True, "topic": "checkouts/create", "accepted": 2},
    )

    # Then half an hour (of Boomerang time) later the checkout reminder links Shopify's recovery URL
    [mail] = local.wait_for(lambda: mails(local), WAIT, "the checkout reminder")
    assert (mail["journey"], mail["step"], mail["to"]) == ("checkout-abandonment", "checkout-1", EMAIL)
    assert RECOVERY + "&boomerang_cart=" + TOKEN in mail["text"]

    # When Shopify delivers the same webhook again (its retry), and a forged one for the same checkout
    profile_path = f"/_local/profile?store=demo&customer=u:{CUSTOMER_ID}"
    before = local.request("GET", profile_path)[1]
    assert webhook(local, body, f"wh-{RUN}")[0] == 200
    assert (
        webhook(local, body.replace(b"248.00", b"1.00"), f"wh2-{RUN}", hmac=signature(SECRET, body))[0] == 401
    )
    # Then nothing changes: the replay's messageIds were folded before, so the profile is as it was,
    # and no second reminder comes (the next step is a day away: 24 s; this waits a few Boomerang hours)
    time.sleep(3)
    assert local.request("GET", profile_path)[1] == before
    assert len(mails(local)) == 1


def test_gzip_and_deflate_batches_through_the_front_door(local: Local) -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "Product Viewed", "userId": f"gz-{RUN}", "properties": {"sku": "S-1"}},
        ]
    }
    auth = base64.b64encode(f"{local.key}:".encode()).decode()
    for encoding, compress in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        status, body = local.request(
            "POST",
            "/v1/batch",
            compress(json.dumps(batch).encode()),
            {
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/json",
                "Content-Encoding": encoding,
            },
        )
        assert (status, body) == (200, {"success": True, "accepted": 1}), encoding
    status, body = local.request(
        "POST", "/v1/batch", b"x", {"Authorization": f"Basic {auth}", "Content-Encoding": "br"}
    )
    assert status == 415 and "gzip, deflate" in body["message"]
    bomb = gzip.compress(b" " * (32 * 1024 * 1024), compresslevel=9)
    status, body = local.request(
        "POST", "/v1/batch", bomb, {"Authorization": f"Basic {auth}", "Content-Encoding": "gzip"}
    )
    assert (status, body["error"]) == (413, "payload_too_large")


def test_a_store_added_by_the_cli_gets_a_key_the_front_door_accepts(local: Local) -> None:
    store = f"e2e-{RUN}"
    code, out, err = cli(
        local,
        "stores",
        "add",
        store,
        "--name",
        "E2E",
        "--url",
        "https://e2e.example",
        "--sender-email",
        "hi@e2e.example",
    )
    assert code == 0, err
    key = out.split("stored): ", 1)[1].split()[0]
    call = {"type": "track", "event": "Product Viewed", "userId": "u-1", "properties": {"sku": "S-1"}}
    assert local.post("/v1/track", call, key=key) == (200, {"success": True, "accepted": 1})
    # a rotated key: the new one works at once, the old one through its grace period
    code, out, _ = cli(local, "stores", "rotate-key", store, "--grace", "1h")
    assert code == 0 and "keep working for 1h" in out
    new_key = out.split("(shown once): ", 1)[1].split()[0]
    assert local.post("/v1/track", {**call, "userId": "u-2"}, key=new_key)[0] == 200
    assert local.post("/v1/track", {**call, "userId": "u-3"}, key=key)[0] == 200
    code, out, _ = cli(local, "stores", "list", "--json")
    assert store in {r["store"] for r in json.loads(out)}
