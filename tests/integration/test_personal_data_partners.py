"""Personal data meets fulfilment partners, on moto: an order of Ada's forwarded to a partner (the
order document with her address, name, email and phone; the partner's answer echoing it; a shipment
with a tracking number) is erased to what the fulfilment figures need, exported in full before, and
swept with the message history."""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.fulfilment_store import FulfilmentStore
from shared.adapters.privacy_store import PrivacyStore
from shared.adapters.report_data import collect as report_collect
from shared.adapters.report_data import scan_table
from shared.domain.partners import order_document
from shared.domain.privacy import DataRetention
from shared.platform.aws import client
from shared.services.privacy import export as exporting
from shared.services.privacy.collect import Who
from shared.services.privacy.retention import sweep
from tests.aws_fixtures import FixedClock, LambdaContext, World
from tests.integration.test_personal_data import (  # noqa: F401 (ada is a fixture)
    ADA_EMAIL,
    ADA_PHONE,
    ADA_SECRETS,
    ada,
    eraser,
    mentions,
    scan_all,
)

STORE, HOUR, DAY = "shop-1", 3600.0, 86400.0
ADDRESS = {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "zip": "SW1Y 4JH"}
ADDRESS_BITS = ("St James's Square", "SW1Y 4JH", "Ada Lovelace", "TRACK-ADA-77")


def forward(world: World, order_id: str, partner: str, at: float, *, open_: bool = False) -> FulfilmentStore:
    """A forward as the forwarder writes one: opened with the order document, accepted (answer
    echoing the address), shipped and delivered with tracking; `open_`: still retrying."""
    store = FulfilmentStore(client("dynamodb"), world.table)
    props = {
        "currency": "EUR",
        "shipping_address": {**ADDRESS, "email": ADA_EMAIL, "phone": ADA_PHONE},
        "shipping_method": "standard",
    }
    document = order_document(
        action="create", store_id=STORE, order_id=order_id, partner_id=partner,
        items=[{"sku": "RUN-42", "quantity": 1}], properties=props, placed_at="2026-04-01T10:00:00Z",
    )  # fmt: skip
    record = {"store_id": STORE, "order_id": order_id, "partner_id": partner, "action": "create"}
    assert store.open(
        {
            **record,
            "customer_id": "u:ada-1",
            "order_at": at,
            "first_at": at,
            "items": 1,
            "document": json.dumps(document),
        }
    )
    assert store.claim_attempt(STORE, order_id, partner, "create", 1, at, at - 1)
    answer = json.dumps({"id": "P-9", "ship_to": ADDRESS})
    attempt = {"n": 1, "at": "-", "status_code": 503 if open_ else 202, "answer": answer, "ms": 40}
    if open_:
        store.record_attempt(STORE, order_id, partner, "create", {**attempt, "outcome": "retry"}, "retrying")
        return store
    accepted = {"accepted_at": at + HOUR, "partner_reference": "P-9"}
    store.record_attempt(
        STORE, order_id, partner, "create", {**attempt, "outcome": "accepted"}, "accepted", accepted
    )
    tracking = {
        "carrier": "DHL",
        "tracking_number": "TRACK-ADA-77",
        "tracking_url": "https://t.example/TRACK-ADA-77",
    }
    store.record_shipment(STORE, order_id, partner, "shipped", at + 24 * HOUR, tracking)
    store.record_shipment(STORE, order_id, partner, "delivered", at + 48 * HOUR, {})
    return store


def figures(world: World) -> list[Any]:
    return report_collect(scan_table(client("dynamodb"), world.table, STORE), STORE).forwards


def test_erasure_scrubs_forward_records_and_keeps_the_fulfilment_figures(
    world: World,
    ada: dict[str, Any],  # noqa: F811
    fixed_clock: FixedClock,
) -> None:
    at = fixed_clock.now
    forward(world, "ada-order-1", "acme", at)
    fulfilment = forward(world, "ada-order-2", "ship-it", at, open_=True)
    before = figures(world)
    assert mentions(scan_all(world), ADDRESS_BITS)  # the test can fail: they are there

    # the export holds the forward records, with the document she was sent
    doc = exporting.export(
        PrivacyStore(client("dynamodb"), world.table), Who(store_id=STORE, customer="u:ada-1")
    )
    sent = {(f["order_id"], f["partner_id"]): f for f in doc["fulfilment"]}
    delivered = sent[("ada-order-1", "acme")]
    assert (delivered["status"], delivered["carrier"], delivered["tracking_number"]) == (
        "accepted",
        "DHL",
        "TRACK-ADA-77",
    )
    assert delivered["delivered_at"] == at + 48 * HOUR
    assert delivered["document"]["shipping_address"]["line1"] == ADDRESS["line1"]
    assert delivered["attempts"][0]["status_code"] == 202
    assert sent[("ada-order-2", "ship-it")]["status"] == "retrying"
    assert "Orders sent to fulfilment partners" in exporting.to_html(doc)

    result = eraser(world).erase(Who(store_id=STORE, email=ADA_EMAIL)).as_dict()
    assert result["scrubbed_forwards"] == 2
    assert result["partners_to_notify"] == ["acme", "ship-it"]
    items = scan_all(world)
    assert mentions(items, ADA_SECRETS + ADDRESS_BITS) == []
    assert "u:ada-1" not in json.dumps(items, default=str)
    # the figures are unchanged, but for the open forward erasure closed (nothing left to send)
    after = {(f.order_id, f.partner_id): f for f in figures(world)}
    for rec in before:
        if rec.order_id == "ada-order-1":
            assert after[(rec.order_id, rec.partner_id)] == rec
    assert after[("ada-order-2", "ship-it")].status == "cancelled"
    kept = fulfilment.get(STORE, "ada-order-1", "acme", "create")
    assert kept is not None and kept["partner_reference"] == "P-9"
    assert kept["customer_id"].startswith("erased:") and "document" not in kept

    # a late shipping update brings back the time, not the tracking number; a rerun finds nothing
    fulfilment.record_shipment(
        STORE, "ada-order-2", "ship-it", "shipped", at + 5 * HOUR, {"tracking_number": "TRACK-ADA-77"}
    )
    late = fulfilment.get(STORE, "ada-order-2", "ship-it", "create")
    assert late is not None and late["shipped_at"] == at + 5 * HOUR and "tracking_number" not in late
    assert eraser(world).erase(Who(store_id=STORE, customer="u:ada-1")).scrubbed_forwards == 0


def test_the_sweep_removes_forwards_past_the_message_history_and_stale_rate_counters(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    now = fixed_clock.now
    policy = DataRetention(message_history_days=60)
    forward(world, "old", "acme", now - 61 * DAY)
    forward(world, "recent", "acme", now - 59 * DAY)
    fulfilment = FulfilmentStore(client("dynamodb"), world.table)
    assert fulfilment.take_rate_slot(STORE, "acme", 1, 5, int(now) - 10)
    assert fulfilment.take_rate_slot(STORE, "acme", 2, 5, int(now) + 600)
    privacy = PrivacyStore(client("dynamodb"), world.table)
    result = sweep(privacy, eraser(world), STORE, policy, now)
    assert result.orphans_removed == {"forward": 1, "rate": 1}
    assert fulfilment.for_order(STORE, "old") == []
    assert [f["order_id"] for f in fulfilment.for_order(STORE, "recent")] == ["recent"]
    left = [i["sk"] for i in scan_all(world) if i["pk"] == f"STORE#{STORE}#PARTNER#acme"]
    assert left == ["RATE#2"]
