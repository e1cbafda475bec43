"""Fulfilment partners end to end on `boomerang local`, with two loopback partners (http.server).

An order with items for two partners and one the store ships itself reaches exactly the two partners,
once each, although one of them fails 3 times and the order event is replayed; every request is
signed and carries the same Idempotency-Key per (order, partner). A cancelled order sends cancels. A
signed shipment update leads to one shipping notification (sent again: still one); a forged one
changes nothing.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from shared.domain.partners import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, verify_signature
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
STORE = "demo"
WAIT = 60
LOCAL_AWS = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
SECRETS = {"acme": f"acme-signing-{RUN}", "globex": f"globex-signing-{RUN}"}


@dataclass
class Partner:
    """A partner's API on 127.0.0.1: records every request; fails the first `failures` with 503."""

    failures: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Partner:
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with partner.lock:
                    partner.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    fail = partner.failures > 0
                    partner.failures -= 1 if fail else 0
                answer = (
                    b'{"error": "busy"}'
                    if fail
                    else json.dumps({"id": f"P-{len(partner.requests)}"}).encode()
                )
                self.send_response(503 if fail else 201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, order_id: str, action: str = "create") -> list[dict[str, Any]]:
        with self.lock:
            return [
                r
                for r in self.requests
                if json.loads(r["body"]).get("order_id") == order_id
                and json.loads(r["body"])["action"] == action
            ]


def partner_file(url: str, match: str, auth: str) -> str:
    return f"""name: Loopback partner
match:
  {match}
endpoint:
  orders: {url}/orders
  cancels: {url}/orders/{{order_id}}/cancel
auth:
  {auth}
"""


@pytest.fixture(scope="module")
def partners(local: Local) -> Iterator[dict[str, Partner]]:
    health = local.request("GET", "/_local/health")[1]
    endpoint, bucket = health["aws_endpoint"], health["templates_bucket"]
    found = {"acme": Partner(failures=3).start(), "globex": Partner().start()}
    sm = boto3.client("secretsmanager", endpoint_url=endpoint, **LOCAL_AWS)
    s3 = boto3.client("s3", endpoint_url=endpoint, **LOCAL_AWS)
    sm.create_secret(
        Name=f"boomerang/partners/{STORE}/acme",
        SecretString=json.dumps({"signing_secret": SECRETS["acme"], "api_key": "acme-key"}),
    )
    sm.create_secret(
        Name=f"boomerang/partners/{STORE}/globex",
        SecretString=json.dumps({"signing_secret": SECRETS["globex"], "password": "pw"}),
    )
    files = {
        "acme": partner_file(found["acme"].url, "sku_prefixes: [ACME-]", "type: api_key"),
        "globex": partner_file(
            found["globex"].url, "vendors: [Globex]", "type: basic\n  username: boomerang"
        ),
    }
    for pid, text in files.items():
        s3.put_object(Bucket=bucket, Key=f"partners/{STORE}/{pid}.yaml", Body=text.encode())
    # the validator checks each upload as it lands (its report is next to the file)
    for pid in files:
        local.wait_for(
            lambda pid=pid: _report(s3, bucket, f"partners/{STORE}/{pid}.yaml"), WAIT, f"{pid}'s report"
        )
        assert _report(s3, bucket, f"partners/{STORE}/{pid}.yaml")["status"] == "checked"
    time.sleep(6)  # the forwarder's partner files cache (5 s in the emulator)
    yield found
    for p in found.values():
        assert p.server is not None
        p.server.shutdown()


def _report(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(s3.get_object(Bucket=bucket, Key=f"reports/{key}.json")["Body"].read()))
    except s3.exceptions.NoSuchKey:
        return None


def order(order_id: str, message_id: str, event: str = "Order Completed") -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "userId": f"ada-{RUN}",
        "messageId": message_id,
        "properties": {
            "order_id": order_id,
            "total": 150,
            "currency": "EUR",
            "shipping_address": {"name": "Ada Lovelace", "line1": "1 Harbour Street", "city": "Bristol"},
            "products": [
                {"sku": "ACME-1", "name": "Tent", "price": 80, "quantity": 1},
                {"sku": "ACME-2", "name": "Stove", "price": 30, "quantity": 2},
                {"sku": "GX-9", "name": "Lamp", "price": 20, "vendor": "Globex"},
                {"sku": "OWN-1", "name": "Socks", "price": 10},  # the store ships this itself
            ],
        },
    }


def _orders_show(local: Local, order_id: str) -> dict[str, Any]:
    from infra.local.cli import main

    endpoint = local.request("GET", "/_local/health")[1]["aws_endpoint"]
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(
            [
                "orders",
                "show",
                "--store",
                STORE,
                "--order",
                order_id,
                "--endpoint-url",
                endpoint,
                "--region",
                "us-east-1",
                "--json",
            ]
        )
    assert code == 0
    return dict(json.loads(out.getvalue()))


def test_an_order_reaches_each_partner_once_despite_failures_and_a_replay(
    local: Local, partners: dict[str, Partner]
) -> None:
    order_id = f"o1-{RUN}"
    identify = {
        "type": "identify",
        "userId": f"ada-{RUN}",
        "messageId": f"id-{RUN}",
        "traits": {"email": f"ada-{RUN}@example.com", "first_name": "Ada"},
    }
    assert local.post("/v1/batch", {"batch": [identify, order(order_id, f"m1-{RUN}")]})[0] == 200
    assert local.post("/v1/track", order(order_id, f"m1-replay-{RUN}"))[0] == 200  # same order, new messageId
    acme, globex = partners["acme"], partners["globex"]
    local.wait_for(
        lambda: len(acme.received(order_id)) >= 4 and globex.received(order_id), WAIT, "both partners"
    )
    time.sleep(3)  # anything more would be a duplicate

    assert len(acme.received(order_id)) == 4  # 3 × 503, then accepted: one accepted delivery
    assert len(globex.received(order_id)) == 1
    sent = [json.loads(r["body"]) for r in acme.received(order_id)]
    assert [i["sku"] for i in sent[-1]["items"]] == ["ACME-1", "ACME-2"]
    assert [i["sku"] for i in json.loads(globex.received(order_id)[0]["body"])["items"]] == ["GX-9"]
    keys = {r["headers"]["Idempotency-Key"] for r in acme.received(order_id)}
    assert len(keys) == 1  # every retry carries the same key
    for r in acme.received(order_id):
        assert r["headers"]["X-Api-Key"] == "acme-key"
        ok = verify_signature(
            SECRETS["acme"],
            r["headers"][TIMESTAMP_HEADER],
            r["headers"][SIGNATURE_HEADER],
            r["body"],
            time.time(),
        )
        assert ok is None
    assert globex.received(order_id)[0]["headers"]["Authorization"].startswith("Basic ")

    shown = {(f["partner_id"], f["action"]): f for f in _orders_show(local, order_id)["forwards"]}
    assert set(shown) == {("acme", "create"), ("globex", "create")}
    assert shown[("acme", "create")]["status"] == "accepted"
    assert [a["status_code"] for a in shown[("acme", "create")]["attempts"]] == [503, 503, 503, 201]
    assert shown[("acme", "create")]["partner_reference"]


def _signed(secret: str, body: bytes) -> dict[str, str]:
    ts = int(time.time())
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature(secret, ts, body),
    }


def test_a_signed_shipment_notifies_once_and_a_forged_one_changes_nothing(
    local: Local, partners: dict[str, Partner]
) -> None:
    order_id = f"o1-{RUN}"
    local.wait_for(lambda: partners["globex"].received(order_id), WAIT, "the order at globex")
    path = f"/v1/partners/{STORE}/globex/shipments"
    body = json.dumps(
        {
            "order_id": order_id,
            "status": "shipped",
            "shipment_id": f"s-{RUN}",
            "carrier": "DHL",
            "tracking_number": "JD0146",
            "tracking_url": "https://track.example.com/JD0146",
        }
    ).encode()
    forged = body.replace(b"JD0146", b"EVIL01")
    status, answer = local.request("POST", path, forged, _signed("not-the-secret", forged))
    assert status == 401, answer
    status, _ = local.request("POST", path, forged, {**_signed(SECRETS["globex"], body)})  # body swapped
    assert status == 401

    assert local.request("POST", path, body, _signed(SECRETS["globex"], body))[0] == 200
    assert local.request("POST", path, body, _signed(SECRETS["globex"], body))[0] == 200  # sent twice

    def shipped() -> list[dict[str, Any]]:
        return [
            m
            for m in local.outbox()
            if m.get("journey") == "shipping-updates" and order_id in (m.get("subject") or "")
        ]

    local.wait_for(shipped, WAIT, "the shipping notification")
    time.sleep(3)
    messages = shipped()
    assert len(messages) == 1
    assert messages[0]["channel"] == "email"
    assert "https://track.example.com/JD0146" in messages[0]["text"] and "DHL" in messages[0]["text"]
    assert "EVIL01" not in json.dumps(local.outbox())
    record = {(f["partner_id"], f["action"]): f for f in _orders_show(local, order_id)["forwards"]}
    local.wait_for(
        lambda: {(f["partner_id"], f["action"]): f for f in _orders_show(local, order_id)["forwards"]}[
            ("globex", "create")
        ].get("shipped_at"),
        WAIT,
        "the shipment on the order",
    )
    assert record[("acme", "create")].get("shipped_at") is None


def test_a_cancelled_order_sends_cancels(local: Local, partners: dict[str, Partner]) -> None:
    order_id = f"o2-{RUN}"
    assert local.post("/v1/track", order(order_id, f"m2-{RUN}"))[0] == 200
    acme, globex = partners["acme"], partners["globex"]
    local.wait_for(lambda: acme.received(order_id) and globex.received(order_id), WAIT, "the order at both")
    local.wait_for(
        lambda: all(f["status"] == "accepted" for f in _orders_show(local, order_id)["forwards"]),
        WAIT,
        "both accepted",
    )
    assert local.post("/v1/track", order(order_id, f"m2-cancel-{RUN}", "Order Cancelled"))[0] == 200
    local.wait_for(
        lambda: acme.received(order_id, "cancel") and globex.received(order_id, "cancel"), WAIT, "the cancels"
    )
    time.sleep(2)
    assert len(acme.received(order_id, "cancel")) == 1 and len(globex.received(order_id, "cancel")) == 1
    assert acme.received(order_id, "cancel")[0]["path"] == f"/orders/{order_id}/cancel"
