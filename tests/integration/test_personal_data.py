"""Personal data on moto: erasure, the access export, the API's data-subject routes, and key rotation.

A customer is built the way the real handlers build one (the fold, the trigger, a journey step), so
the erasure is tested against the items Boomerang really writes, and a table scan afterwards looks
for their id, email and phone in every attribute of every item.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.ses.models import ses_backends

from functions.ingest.handler import handler as ingest_handler
from functions.journey_step.handler import handler as step_handler
from functions.journey_trigger.handler import handler as trigger_handler
from functions.privacy.handler import handler as privacy_handler
from shared.adapters.offer_store import OfferStore
from shared.adapters.privacy_store import PrivacyStore
from shared.platform import signing
from shared.platform.aws import client, from_item
from shared.services.consent.unsubscribe import unsubscribe_url
from shared.services.privacy import export as exporting
from shared.services.privacy.collect import BadRequest, Who
from shared.services.privacy.erase import Eraser
from shared.services.privacy.keys import rotate_now, rotation_step
from tests.aws_fixtures import (
    ACCOUNT,
    REGION,
    FixedClock,
    LambdaContext,
    World,
    api_request,
    basic_auth,
    bus_envelope,
    canonical,
    sqs_batch,
)

DAY = 86400
ADA_EMAIL, ADA_PHONE = "Ada.Lovelace@Example.com", "+44 20 7946 0018"
ADA_SECRETS = ("ada-1", "ada.lovelace@example.com", "+442079460018", "visitor-ada", "Lovelace")


def ada_calls() -> list[dict[str, Any]]:
    """An anonymous visitor adds to a cart, then signs in as Ada (merged), changes her mind about
    email twice, gives SMS consent and registers a phone."""
    return [
        {
            "type": "track",
            "anonymousId": "visitor-ada",
            "event": "Product Viewed",
            "messageId": "ada-view",
            "properties": {"product_id": "p-1", "sku": "RUN-42", "name": "Trail Runner", "price": 89.0},
        },
        {
            "type": "identify",
            "userId": "ada-1",
            "anonymousId": "visitor-ada",
            "messageId": "ada-identify",
            "traits": {
                "email": ADA_EMAIL,
                "phone": ADA_PHONE,
                "first_name": "Ada",
                "last_name": "Lovelace",
                "consent": {"email": "subscribed", "sms": "subscribed"},
                "consent_source": "checkout-form",
                "consent_text": "Send me offers by email and text",
            },
        },
        {
            "type": "track",
            "userId": "ada-1",
            "event": "Consent Updated",
            "messageId": "ada-unsub",
            "properties": {"consent": {"email": "unsubscribed"}, "consent_source": "preferences-page"},
        },
        {
            "type": "track",
            "userId": "ada-1",
            "event": "Consent Updated",
            "messageId": "ada-resub",
            "properties": {
                "consent": {"email": "subscribed"},
                "consent_source": "account-settings",
                "consent_text": "Yes, email me again",
            },
        },
        {
            "type": "track",
            "userId": "ada-1",
            "event": "Device Registered",
            "messageId": "ada-device",
            "properties": {"token": "apns-token-ada", "platform": "apns"},
        },
        {
            "type": "track",
            "userId": "ada-1",
            "event": "Product Added",
            "messageId": "ada-add",
            "properties": {
                "cart_id": "cart-ada",
                "product_id": "p-1",
                "sku": "RUN-42",
                "price": 89.0,
                "quantity": 1,
            },
        },
    ]


def bob_calls() -> list[dict[str, Any]]:
    return [
        {
            "type": "identify",
            "userId": "bob-2",
            "messageId": "bob-identify",
            "traits": {"email": "bob@example.com", "first_name": "Bob", "consent": {"email": "subscribed"}},
        },
        {
            "type": "track",
            "userId": "bob-2",
            "event": "Order Completed",
            "messageId": "bob-order",
            "properties": {"order_id": "o-bob", "total": 40.0, "currency": "GBP"},
        },
    ]


def fold_and_trigger(world: World, ctx: LambdaContext, calls: list[dict[str, Any]], at: float) -> list[Any]:
    events = canonical(calls, at)
    outcomes = [world.profiles().apply(e) for e in events]
    assert trigger_handler(sqs_batch([bus_envelope(e) for e in events]), ctx) == {"batchItemFailures": []}
    return outcomes


def scan_all(world: World) -> list[dict[str, Any]]:
    ddb, items, args = client("dynamodb"), [], {"TableName": world.table}
    while True:
        resp = ddb.scan(**args)
        items += [from_item(i) for i in resp["Items"]]
        if "LastEvaluatedKey" not in resp:
            return items
        args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def mentions(items: list[dict[str, Any]], needles: tuple[str, ...]) -> list[str]:
    found = []
    for item in items:
        text = json.dumps(item, default=str).lower()
        found += [f"{item['pk']} / {item['sk']}: {n}" for n in needles if n.lower() in text]
    return found


@pytest.fixture
def ada(world: World, ctx: LambdaContext, fixed_clock: FixedClock) -> dict[str, Any]:
    """Ada with a profile, a merged visitor, a cart journey that has sent its first email, segment
    memberships, a device and an offer code; Bob beside her."""
    t0 = fixed_clock.now
    fold_and_trigger(world, ctx, bob_calls(), t0)
    fold_and_trigger(world, ctx, ada_calls(), t0 + 60)
    sfn = client("stepfunctions")
    [run] = [
        e
        for e in world.executions()
        if json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])["journey"]
        == "cart-abandonment"
    ]
    state = json.loads(sfn.describe_execution(executionArn=run["executionArn"])["input"])
    fixed_clock.advance(state["wait_seconds"])
    after_first = step_handler({**state}, ctx)
    assert [e["type"] for e in after_first["events"] if "step_id" in e] == ["sent"]
    pools = OfferStore(client("dynamodb"), world.table)
    pools.upload("shop-1", "vip", ["VIP-1", "VIP-2"])
    code = pools.draw("shop-1", "vip", "cart-abandonment|cart-ada|reminder-2")
    assert code in ("VIP-1", "VIP-2")
    return {
        "execution": run["executionArn"],
        "state": after_first,
        "at": t0 + 60,
        "sent_at": fixed_clock.now,
        "code": code,
    }


def eraser(world: World) -> Eraser:
    return Eraser(
        PrivacyStore(client("dynamodb"), world.table), client("stepfunctions"), world.state_machine_arn
    )


def test_export_holds_everything_and_every_consent_change_with_its_proof(
    world: World, ada: dict[str, Any]
) -> None:
    doc = exporting.export(PrivacyStore(client("dynamodb"), world.table), Who("shop-1", customer="u:ada-1"))
    [profile] = [p for p in doc["profiles"] if p["customer_id"] == "u:ada-1"]
    assert profile["email"] == ADA_EMAIL.lower() and profile["traits"]["last_name"] == "Lovelace"
    assert len(profile["devices"]) == 1 and profile["devices"][0]["registered_at"]
    changes = [
        (c["channel"], c["status"], c["source"], c["text"], c["message_id"]) for c in doc["consent_history"]
    ]
    assert changes == [
        ("email", "subscribed", "checkout-form", "Send me offers by email and text", "ada-identify"),
        ("sms", "subscribed", "checkout-form", "Send me offers by email and text", "ada-identify"),
        ("email", "unsubscribed", "preferences-page", None, "ada-unsub"),
        ("email", "subscribed", "account-settings", "Yes, email me again", "ada-resub"),
    ]
    assert all(c["at"] for c in doc["consent_history"])
    assert [(m["channel"], m["journey"]) for m in doc["messages_sent"]] == [("email", "cart-abandonment")]
    assert doc["messages_sent"][0]["subject"]  # the subject line as sent
    assert [c["cart_id"] for c in doc["carts"]] == ["cart-ada"]
    assert [o["code"] for o in doc["offers"]] == [ada["code"]]
    # the exactly-once markers held (a view too: its marker follows the profile's one conditional write)
    assert {e["message_id"] for e in doc["events"]} >= {"ada-identify", "ada-view", "ada-add"}
    assert doc["segments"], "segment memberships"
    assert "bob" not in json.dumps(doc).lower()
    html = exporting.to_html(doc)
    assert "Yes, email me again" in html and "<script" not in html


def test_export_html_escapes_what_the_customer_typed(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    evil = {
        "type": "identify",
        "userId": "eve",
        "messageId": "eve-1",
        "traits": {"first_name": "<script>alert(1)</script>"},
    }
    fold_and_trigger(world, ctx, [evil], fixed_clock.now)
    doc = exporting.export(PrivacyStore(client("dynamodb"), world.table), Who("shop-1", customer="u:eve"))
    html = exporting.to_html(doc)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_erasure_leaves_nothing_of_the_customer_and_stops_her_journey(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, ada: dict[str, Any]
) -> None:
    store = PrivacyStore(client("dynamodb"), world.table)
    bob_before = exporting.export(store, Who("shop-1", email="BOB@example.com"))

    result = eraser(world).erase(Who("shop-1", email=ADA_EMAIL))

    assert result.status == "erased"
    assert result.removed["profiles"] == 2  # Ada and the visitor merged into her
    assert result.removed["carts"] == 1 and result.removed["aliases"] == 1
    assert result.removed["history"] >= 2 and result.removed["journey_records"] >= 3
    assert result.removed["offers"] == 1 and result.removed["offer_codes"] == 1
    assert result.removed["devices"] == 1 and result.removed["segments"] >= 1
    assert result.executions_stopped == 1
    assert result.tombstones == 4  # user id, anonymous id, email, phone
    described = client("stepfunctions").describe_execution(executionArn=ada["execution"])
    assert described["status"] == "ABORTED"
    assert mentions(scan_all(world), ADA_SECRETS) == []
    assert "cart-ada" not in json.dumps(scan_all(world))  # her cart's journey records too

    # the cart journey's next step (had Step Functions not stopped it) sends nothing
    sent = len(ses_backends[ACCOUNT][REGION].sent_messages)
    fixed_clock.advance(2 * DAY)
    out = step_handler({**ada["state"], "wait_seconds": 0}, ctx)
    assert out["action"] != "wait" or not [e for e in out["events"] if e.get("type") == "sent"]
    assert len(ses_backends[ACCOUNT][REGION].sent_messages) == sent

    # Bob is untouched
    after = exporting.export(store, Who("shop-1", email="bob@example.com"))
    assert {**after, "generated_at": 0, "customer_id": ""} == {
        **bob_before,
        "generated_at": 0,
        "customer_id": "",
    }
    assert after["orders"] and after["profiles"]


def test_replayed_and_in_flight_events_of_an_erased_customer_create_nothing(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, ada: dict[str, Any]
) -> None:
    eraser(world).erase(Who("shop-1", customer="u:ada-1"))
    before = len(scan_all(world))
    # Given her old events replayed from the archive (same receive time), a second time
    outcomes = fold_and_trigger(world, ctx, ada_calls(), ada["at"])
    assert {o.status for o in outcomes} == {"erased"}
    assert mentions(scan_all(world), ADA_SECRETS) == [] and len(scan_all(world)) == before
    # an anonymous-only event of her merged visitor, and an identify by email only, too
    late = [
        {
            "type": "track",
            "anonymousId": "visitor-ada",
            "event": "Product Added",
            "messageId": "late-1",
            "properties": {"cart_id": "cart-2", "sku": "X", "price": 1.0, "quantity": 1},
        },
        {
            "type": "identify",
            "userId": "someone-else",
            "messageId": "late-2",
            "traits": {"email": ADA_EMAIL.upper()},
        },
    ]
    assert {o.status for o in fold_and_trigger(world, ctx, late, ada["at"] + 1)} == {"erased"}
    assert len(scan_all(world)) == before

    # After the erasure she may come back: a new sign-up is a new relationship
    fixed_clock.advance(DAY)
    [back] = fold_and_trigger(world, ctx, [{**ada_calls()[1], "messageId": "ada-back"}], fixed_clock.now)
    assert back.status == "applied"


def test_erasure_is_idempotent_and_a_redelivered_request_spares_a_customer_who_came_back(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, ada: dict[str, Any]
) -> None:
    requested_at = fixed_clock.now
    body = {
        "detail": {
            "store_id": "shop-1",
            "customer": "u:ada-1",
            "requested_at": requested_at,
            "request_id": "r1",
        }
    }
    assert privacy_handler(sqs_batch([body]), ctx) == {"batchItemFailures": []}
    assert mentions(scan_all(world), ADA_SECRETS) == []
    again = eraser(world).erase(Who("shop-1", customer="u:ada-1"))
    assert again.status == "not_found" and not any(again.removed.values())

    fixed_clock.advance(DAY)
    fold_and_trigger(world, ctx, [{**ada_calls()[1], "messageId": "ada-back"}], fixed_clock.now)
    assert privacy_handler(sqs_batch([body]), ctx) == {"batchItemFailures": []}  # redelivered
    assert mentions(scan_all(world), ("ada-1",)) != []  # her new profile stays


def test_api_export_and_erase_need_the_write_key_and_name_the_bad_field(
    world: World, ctx: LambdaContext, ada: dict[str, Any]
) -> None:
    auth = basic_auth(world.api_key)
    denied = ingest_handler(api_request("GET", "/v1/customers/export", query="customer=u:ada-1"), ctx)
    assert denied["statusCode"] == 401
    bad = ingest_handler(api_request("POST", "/v1/customers/erase", {"customer": "ada-1"}, auth), ctx)
    assert bad["statusCode"] == 400 and json.loads(bad["body"])["errors"][0]["field"] == "customer"
    both = ingest_handler(
        api_request("POST", "/v1/customers/erase", {"customer": "u:a", "email": "a@b.c"}, auth), ctx
    )
    assert both["statusCode"] == 400

    exported = ingest_handler(
        api_request("GET", "/v1/customers/export", headers=auth, query="customer=u:ada-1"), ctx
    )
    assert exported["statusCode"] == 200 and json.loads(exported["body"])["profiles"]
    page = ingest_handler(
        api_request("POST", "/v1/customers/export", {"email": ADA_EMAIL, "format": "html"}, auth), ctx
    )
    assert page["statusCode"] == 200 and "text/html" in json.dumps(
        page.get("headers") or page.get("multiValueHeaders")
    )

    accepted = ingest_handler(api_request("POST", "/v1/customers/erase", {"phone": ADA_PHONE}, auth), ctx)
    assert accepted["statusCode"] == 202
    assert ADA_PHONE not in accepted["body"] and "ada" not in accepted["body"].lower()
    [request] = world.published("privacy")
    assert privacy_handler(sqs_batch([request]), ctx) == {"batchItemFailures": []}
    assert mentions(scan_all(world), ADA_SECRETS) == []


def test_who_names_exactly_one_identifier() -> None:
    for bad in (
        Who("shop-1"),
        Who("shop-1", customer="ada"),
        Who("shop-1", email="nope"),
        Who("shop-1", phone="0207"),
    ):
        with pytest.raises(BadRequest):
            bad.check()


def test_rotation_keeps_links_sent_before_it_and_retires_keys_after_a_link_lifetime(
    world: World, fixed_clock: FixedClock
) -> None:
    from shared.services.consent.unsubscribe import LINK_LIFETIME_S

    sm = client("secretsmanager")
    provider = signing.SigningKeyProvider(sm, world.secret_arn, ttl=0)
    before = unsubscribe_url("https://x", provider.ring(), "shop-1", "u:1", "email", fixed_clock.now)
    token = before.split("t=", 1)[1]
    ring = rotate_now(sm, world.secret_arn)
    assert ring.current == "v2" and sorted(ring.keys) == ["v1", "v2"]
    assert signing.verify(provider.ring(), token, fixed_clock.now + DAY).customer_id == "u:1"
    after = unsubscribe_url("https://x", provider.ring(), "shop-1", "u:2", "email", fixed_clock.now)
    assert after.split("t=", 1)[1].startswith("v2.")
    # a whole link lifetime after v2 became current, the next rotation retires v1: its links fail
    fixed_clock.advance(LINK_LIFETIME_S)
    token_id = "11111111-2222-3333-4444-555555555555"
    rotation_step(sm, world.secret_arn, token_id, "createSecret")
    # a rotation step Secrets Manager repeats changes nothing more
    assert rotation_step(sm, world.secret_arn, token_id, "createSecret") == "pending ring already staged"
    for step in ("testSecret", "finishSecret"):
        rotation_step(sm, world.secret_arn, token_id, step)
    assert rotation_step(sm, world.secret_arn, token_id, "finishSecret") == "already current"
    assert "v1" not in provider.ring().keys
    with pytest.raises(signing.InvalidToken, match="retired key"):
        signing.verify(provider.ring(), token, fixed_clock.now - 1)


# --- retention ------------------------------------------------------------------------------------


def test_retention_ttls_follow_the_store_policy(
    world: World, ctx: LambdaContext, ada: dict[str, Any]
) -> None:
    from shared.domain.privacy import DataRetention

    policy = DataRetention()
    items = {(i["pk"], i["sk"]): i for i in scan_all(world)}
    profile = items[("STORE#shop-1#CUST#u:ada-1", "PROFILE")]
    assert profile["expires_at"] == int(profile["last_seen_at"] + policy.inactive_profile_days * DAY)
    cart = items[("STORE#shop-1#CART#cart-ada", "CART")]
    assert cart["expires_at"] == int(cart["last_activity_at"] + policy.cart_days * DAY)
    marker = items[("STORE#shop-1#EVT#ada-add", "EVT")]
    assert marker["expires_at"] == int(marker["received_at"]) + policy.event_marker_days * DAY
    history = [
        i for (pk, sk), i in items.items() if pk == "STORE#shop-1#CUST#u:ada-1" and sk.startswith("HIST#")
    ]
    assert history and all(
        h["expires_at"] == int(h["at"]) + policy.message_history_days * DAY for h in history
    )
    # the journey's send records are message history too; its state expires only once it has ended
    journey = {
        sk: i for (pk, sk), i in items.items() if pk.startswith("STORE#shop-1#JOURNEY#cart-abandonment#")
    }
    sends = [i for sk, i in journey.items() if sk.startswith("SEND#")]
    assert sends and all(
        s["expires_at"] == int(ada["sent_at"]) + policy.message_history_days * DAY for s in sends
    )
    assert journey["STATE"]["status"] == "active" and "expires_at" not in journey["STATE"]


def test_a_journey_state_expires_from_its_end_and_never_while_running(
    world: World, fixed_clock: FixedClock
) -> None:
    from shared.adapters.journey_store import JourneyStore
    from shared.domain.privacy import DataRetention

    journeys, history = JourneyStore(client("dynamodb"), world.table), DataRetention().message_history_days
    journeys.note_started("shop-1", "cart-abandonment", "cart-1", 1, fixed_clock.now)
    assert "expires_at" not in (journeys.state("shop-1", "cart-abandonment", "cart-1") or {})
    fixed_clock.advance(3 * DAY)
    journeys.mark_ended("shop-1", "cart-abandonment", "cart-1", 1, "ordered")
    ended = journeys.state("shop-1", "cart-abandonment", "cart-1") or {}
    assert ended["status"] == "ended" and ended["expires_at"] == int(fixed_clock.now) + history * DAY
    # the same cart's journey entered again: running, so its state must not expire under it
    fixed_clock.advance(DAY)
    journeys.note_started("shop-1", "cart-abandonment", "cart-1", 2, fixed_clock.now)
    again = journeys.state("shop-1", "cart-abandonment", "cart-1") or {}
    assert again["status"] == "active" and "expires_at" not in again
    assert journeys.mark_started("shop-1", "cart-abandonment", "cart-1", 3, fixed_clock.now)
    journeys.mark_ended("shop-1", "cart-abandonment", "cart-1", 3, "done")
    assert journeys.mark_started("shop-1", "cart-abandonment", "cart-1", 4, fixed_clock.now)
    assert "expires_at" not in (journeys.state("shop-1", "cart-abandonment", "cart-1") or {})


def test_the_monthly_sweep_lets_an_inactive_customer_go_without_a_tombstone(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, ada: dict[str, Any]
) -> None:
    from shared.adapters.store_directory import StoreDirectory
    from shared.domain.privacy import DataRetention

    policy = DataRetention()
    # Bob orders again a year on; Ada is not heard of for longer than the store keeps a profile
    fixed_clock.advance(400 * DAY)
    fold_and_trigger(world, ctx, [{**bob_calls()[1], "messageId": "bob-again"}], fixed_clock.now)
    fixed_clock.advance((policy.inactive_profile_days - 400) * DAY + 1)
    schedule = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    out = privacy_handler(sqs_batch([schedule]), ctx)
    assert out == {"batchItemFailures": []}
    items = scan_all(world)
    assert mentions(items, ADA_SECRETS) == []
    assert mentions(items, ("bob-2",)) != []
    assert StoreDirectory(client("dynamodb"), world.table).get("shop-1") is not None
    # no tombstone: she is welcome back, even with an event from before the sweep
    assert not [i for i in items if i["sk"] == "ERASED"]
    [back] = fold_and_trigger(world, ctx, [{**ada_calls()[1], "messageId": "ada-back"}], fixed_clock.now)
    assert back.status == "applied"


def test_event_markers_outlive_the_bus_archive() -> None:
    from infra.description import ARCHIVE_RETENTION_DAYS
    from shared.domain.privacy import DataRetention

    # a replay from the archive must still find every event's marker (and change nothing)
    assert DataRetention().event_marker_days > ARCHIVE_RETENTION_DAYS
    with pytest.raises(ValueError, match="greater than or equal to 31"):
        DataRetention(event_marker_days=ARCHIVE_RETENTION_DAYS)


def test_erasing_one_of_two_people_on_a_shared_device_leaves_the_other(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given a family computer: the visitor id is merged into Ada, then Bob signs in on it too
    t = fixed_clock.now
    shared = [
        {
            "type": "track",
            "anonymousId": "family-pc",
            "event": "Product Viewed",
            "messageId": "f1",
            "properties": {"sku": "S1"},
        },
        {
            "type": "identify",
            "userId": "ada-1",
            "anonymousId": "family-pc",
            "messageId": "f2",
            "traits": {"email": ADA_EMAIL},
        },
        {
            "type": "identify",
            "userId": "bob-2",
            "anonymousId": "family-pc",
            "messageId": "f3",
            "traits": {"email": "bob@example.com"},
        },
        {
            "type": "track",
            "userId": "bob-2",
            "anonymousId": "family-pc",
            "event": "Product Added",
            "messageId": "f4",
            "properties": {"cart_id": "cart-bob", "sku": "S2", "price": 5.0, "quantity": 1},
        },
    ]
    fold_and_trigger(world, ctx, shared, t)
    # When Bob is erased
    eraser(world).erase(Who("shop-1", customer="u:bob-2"))
    # Then Ada (and the visitor merged into her) stays; Bob and his cart are gone
    items = scan_all(world)
    assert mentions(items, ("bob-2", "bob@example.com", "cart-bob")) == []
    keys_left = {(i["pk"], i["sk"]) for i in items}
    assert ("STORE#shop-1#CUST#u:ada-1", "PROFILE") in keys_left


def test_cli_exports_and_erases_printing_counts_only(
    world: World, ada: dict[str, Any], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.customers_cli import main

    table = ["--store", "shop-1", "--table", world.table]
    assert main(["customers", "export", *table, "--phone", ADA_PHONE, "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "export.json").read_text())
    assert document["profiles"] and "Lovelace" in (tmp_path / "export.html").read_text()
    assert (
        main(
            [
                "customers",
                "erase",
                *table,
                "--customer",
                "u:ada-1",
                "--state-machine",
                world.state_machine_arn,
            ]
        )
        == 0
    )
    assert main(["customers", "erase", *table, "--customer", "ada"]) == 2  # named: u:<id> or a:<id>
    printed = capsys.readouterr()
    assert "profiles" in printed.out and "erased" in printed.out and "journeys stopped" in printed.out
    assert not mentions([{"pk": "out", "sk": "", "text": printed.out + printed.err}], ADA_SECRETS)
    assert "customer: expected u:<userId>" in printed.err
    assert mentions(scan_all(world), ADA_SECRETS) == []
    assert main(["keys", "rotate", "--secret", world.secret_arn]) == 0
    assert "signed with v2; links verify with v1, v2" in capsys.readouterr().out
