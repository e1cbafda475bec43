"""DynamoDB at the floor, on moto: what one event writes, and exactly-once without a transaction.

An event that changes only the profile item is no transaction: a read of its processed-event marker,
one conditional profile write, then the marker; nothing at all when it changes nothing. Replays (even
received later), a crash between the two writes, concurrent duplicates and out-of-order delivery
still give the profile of one fold. Consent proof lives in items of its own, and the export still shows all of it.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.privacy_store import PrivacyStore
from shared.adapters.profile_store import ProfileStore
from shared.domain.events import CanonicalEvent
from shared.domain.fold import REPEAT_VIEW_S
from shared.platform import keys
from shared.platform.aws import client, from_item, key, to_item
from shared.services.privacy import export as exporting
from shared.services.privacy.collect import Who
from tests.aws_fixtures import World, canonical
from tests.wru import metering

STORE = "shop-1"
T0 = 1_790_000_000.0


def ev(call: dict[str, Any], at: float, message_id: str) -> CanonicalEvent:
    [e] = canonical([{"userId": "ada", "messageId": message_id, **call}], at)
    return e


def viewed(sku: str, at: float, message_id: str, **extra: Any) -> CanonicalEvent:
    props = {"sku": sku, "name": f"Jacket {sku}", "price": 90.0, "url": f"https://shop.example.com/p/{sku}"}
    return ev({"type": "track", "event": "Product Viewed", "properties": {**props, **extra}}, at, message_id)


def consent(status: str, at: float, message_id: str) -> CanonicalEvent:
    props = {"consent": {"email": status}, "consent_source": "preference-center", "consent_text": "Email me"}
    return ev({"type": "track", "event": "Consent Updated", "properties": props}, at, message_id)


def marker(world: World, message_id: str) -> dict[str, Any] | None:
    resp = client("dynamodb").get_item(
        TableName=world.table, Key=key(keys.event_pk(STORE, message_id), keys.EVENT_SK), ConsistentRead=True
    )
    return from_item(resp["Item"]) if "Item" in resp else None


def profile_item(world: World) -> dict[str, Any]:
    resp = client("dynamodb").get_item(
        TableName=world.table, Key=key(keys.customer_pk(STORE, "u:ada"), keys.PROFILE_SK), ConsistentRead=True
    )
    return from_item(resp["Item"])


def identify(at: float, message_id: str, **traits: Any) -> CanonicalEvent:
    return ev({"type": "identify", "traits": {"email": "ada@example.com", **traits}}, at, message_id)


def order_without_cart(at: float, message_id: str) -> CanonicalEvent:
    props = {"order_id": "o-1", "total": 40.0, "currency": "GBP", "products": []}
    return ev({"type": "track", "event": "Order Completed", "properties": props}, at, message_id)


def partition(world: World, customer: str = "u:ada") -> list[dict[str, Any]]:
    resp = client("dynamodb").query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.customer_pk(STORE, customer)}},
        ConsistentRead=True,
    )
    return [from_item(i) for i in resp["Items"]]


def test_a_profile_only_event_is_no_transaction_and_a_replay_writes_nothing(world: World) -> None:
    store = world.profiles()
    store.apply(viewed("A", T0, "m-1"))

    # When a view of another product is folded, then replayed
    with metering() as meter:
        first = store.apply(viewed("B", T0 + 300, "m-2"))
        calls_first = list(meter.calls)
        meter.reset()
        again = store.apply(viewed("B", T0 + 300, "m-2"))

    # Then the first is the profile's PutItem and the marker's (no transaction), the replay writes nothing
    assert (first.status, calls_first) == ("applied", ["PutItem", "PutItem"])
    assert (again.status, meter.calls) == ("duplicate", [])
    profile = store.load_profile(STORE, "u:ada")
    assert profile is not None and profile.version == 2
    assert [v.key for v in profile.viewed] == ["B", "A"]
    assert marker(world, "m-2") is not None


def test_a_repeat_view_is_not_written_and_a_late_one_never_rolls_back(world: World) -> None:
    store = world.profiles()
    store.apply(viewed("A", T0, "m-1"))
    with metering() as meter:
        repeat = store.apply(viewed("A", T0 + REPEAT_VIEW_S / 2, "m-2"))  # a reload: new messageId
    assert repeat.status == "unchanged" and meter.calls == []

    store.apply(viewed("B", T0 + 600, "m-3"))
    store.apply(viewed("A", T0 - 10, "m-4", name="stale"))  # an older view, delivered late
    profile = store.load_profile(STORE, "u:ada")
    assert profile is not None
    assert [(v.key, v.name) for v in profile.viewed] == [("B", "Jacket B"), ("A", "Jacket A")]
    assert profile.last_event_at["Product Viewed"] == T0 + 600


def test_concurrent_writers_and_duplicates_fold_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    store = world.profiles()
    store.apply(viewed("A", T0, "m-1"))
    rival = ProfileStore(client("dynamodb"), world.table)
    ddb = store.ddb
    real_put = ddb.put_item
    raced: list[str] = []

    def put_after_rivals(**kwargs: Any) -> Any:
        if not raced:
            raced.append("racing")  # (the rivals share this client: they write straight through)
            # between this fold's read and its write, another λ folds a different event, and a third
            # the very same message (SQS delivered it twice)
            raced.append(rival.apply(viewed("C", T0 + 200, "m-3")).status)
            raced.append(rival.apply(viewed("B", T0 + 100, "m-2")).status)
        return real_put(**kwargs)

    monkeypatch.setattr(ddb, "put_item", put_after_rivals)
    outcome = store.apply(viewed("B", T0 + 100, "m-2"))

    # Then the loser re-read and found its event already folded: nothing overwritten, nothing twice
    assert raced == ["racing", "applied", "applied"] and outcome.status == "duplicate"
    profile = store.load_profile(STORE, "u:ada")
    assert profile is not None and profile.version == 3
    assert [v.key for v in profile.viewed] == ["C", "B", "A"]


def test_consent_proof_is_kept_in_its_own_items_and_exported(world: World) -> None:
    store = world.profiles()
    store.apply(consent("subscribed", T0, "c-1"))
    store.apply(consent("unsubscribed", T0 + 60, "c-2"))
    store.apply(consent("unsubscribed", T0 + 60, "c-2"))  # a replay

    items = partition(world)
    proofs = [i for i in items if i["sk"].startswith("CONSENT#")]
    [profile] = [i for i in items if i["sk"] == keys.PROFILE_SK]
    assert [(p["status"], p["message_id"]) for p in proofs] == [
        ("subscribed", "c-1"),
        ("unsubscribed", "c-2"),
    ]
    assert profile["consent_history"] == [] and profile["consent"]["email"]["status"] == "unsubscribed"

    doc = exporting.export(PrivacyStore(client("dynamodb"), world.table), Who(STORE, customer="u:ada"))
    assert [(c["status"], c["message_id"], c["text"]) for c in doc["consent_history"]] == [
        ("subscribed", "c-1", "Email me"),
        ("unsubscribed", "c-2", "Email me"),
    ]


def test_a_profile_stored_with_its_consent_history_moves_it_out_on_its_next_write(world: World) -> None:
    # Given a profile item written before consent proof had items of its own
    legacy = {
        "pk": keys.customer_pk(STORE, "u:ada"),
        "sk": keys.PROFILE_SK,
        "store_id": STORE,
        "customer_id": "u:ada",
        "user_id": "ada",
        "consent": {"email": {"status": "subscribed", "at": T0, "source": "checkout", "message_id": "old-1"}},
        "consent_history": [
            {
                "channel": "email",
                "status": "subscribed",
                "at": T0,
                "source": "checkout",
                "message_id": "old-1",
            }
        ],
        "version": 7,
    }
    client("dynamodb").put_item(TableName=world.table, Item=to_item(legacy))
    who = Who(STORE, customer="u:ada")
    before = exporting.export(PrivacyStore(client("dynamodb"), world.table), who)["consent_history"]

    # When any event is folded into it
    world.profiles().apply(viewed("A", T0 + 60, "m-1"))

    # Then the history is an item of its own, and the export shows the same proof as before
    items = partition(world)
    assert [i["message_id"] for i in items if i["sk"].startswith("CONSENT#")] == ["old-1"]
    after = exporting.export(PrivacyStore(client("dynamodb"), world.table), who)["consent_history"]
    assert [(c["status"], c["message_id"]) for c in after] == [(c["status"], c["message_id"]) for c in before]
    assert after and after[0]["message_id"] == "old-1"


def test_a_view_costs_a_few_wru_and_no_transaction(world: World) -> None:
    store = world.profiles()
    store.apply(consent("subscribed", T0, "c-1"))
    for i in range(12):
        store.apply(viewed(f"S{i}", T0 + 60 * (i + 1), f"v-{i}"))
    with metering() as meter:
        store.apply(viewed("NEW", T0 + 3600, "v-new"))
    assert meter.calls == ["PutItem", "PutItem"] and meter.wru <= 4, (meter.calls, meter.wru)
    assert "TransactWriteItems" not in meter.calls


@pytest.mark.parametrize("first", [identify, order_without_cart], ids=["identify", "cart-less order"])
def test_a_replay_received_later_changes_nothing(world: World, first: Any) -> None:
    # Given a profile-only event folded on the one-write path (an order without a cart: the order item
    # exists once it is folded, so only its first fold writes more than the profile)
    store = world.profiles()
    store.apply(identify(T0, "i-0", firstName="Ada"))
    if first is order_without_cart:
        store.apply(order_without_cart(T0 + 30, "o-first"))
    with metering() as meter:
        assert store.apply(first(T0 + 60, "m-1")).status == "applied"
    assert meter.calls == ["PutItem", "PutItem"]  # the one-write path: the profile, then its marker
    store.apply(viewed("A", T0 + 90, "v-1"))  # another event since: the profile's latest is not m-1
    before = profile_item(world)

    # When the same messageId is delivered again, received later (Shopify's retry)
    with metering() as meter:
        again = store.apply(first(T0 + 3600, "m-1"))

    # Then it is a duplicate: one consistent read of its marker, nothing written, the profile unchanged
    assert again.status == "duplicate" and meter.calls == []
    assert meter.reads.count("GetItem") >= 2  # the profile, then the marker (consistent: 1 RRU)
    assert profile_item(world) == before


def test_a_crash_between_the_profile_write_and_the_marker_is_retried_into_one_fold(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = world.profiles()
    store.apply(identify(T0, "i-0", firstName="Ada"))
    ddb = store.ddb
    real_put = ddb.put_item

    def marker_write_fails(**kwargs: Any) -> Any:
        if kwargs["Item"]["pk"]["S"].startswith(keys.event_pk(STORE, "")):
            raise RuntimeError("the λ timed out before the marker was written")
        return real_put(**kwargs)

    # Given a fold whose profile write landed and whose marker write did not
    monkeypatch.setattr(ddb, "put_item", marker_write_fails)
    with pytest.raises(RuntimeError):
        store.apply(identify(T0 + 60, "m-1", firstName="Ada", lastName="Lovelace"))
    folded_once = profile_item(world)
    assert folded_once["traits"]["lastName"] == "Lovelace" and marker(world, "m-1") is None
    monkeypatch.setattr(ddb, "put_item", real_put)

    # When SQS delivers it again (same event), then Shopify replays it a minute later
    retried = store.apply(identify(T0 + 60, "m-1", firstName="Ada", lastName="Lovelace"))
    replayed = store.apply(identify(T0 + 120, "m-1", firstName="Ada", lastName="Lovelace"))

    # Then the profile is as after one fold, and the marker is there (the marker the transaction writes)
    assert (retried.status, replayed.status) == ("duplicate", "duplicate")
    assert profile_item(world) == folded_once
    written = marker(world, "m-1")
    assert written is not None and written["received_at"] == T0 + 60 and written["customer_id"] == "u:ada"
    assert written["expires_at"] == int(T0 + 60) + 35 * 86400


def test_each_path_recognises_the_others_marker(world: World) -> None:
    # an event first folded in a transaction (a cart event), replayed when its message would be
    # profile-only, and the other way round: each path reads the one marker shape
    store = world.profiles()
    store.apply(identify(T0, "i-0"))
    cart = {"sku": "A", "price": 10.0, "quantity": 1, "cart_id": "c-1"}
    assert (
        store.apply(
            ev({"type": "track", "event": "Product Added", "properties": cart}, T0 + 10, "x-1")
        ).status
        == "applied"
    )
    store.apply(viewed("B", T0 + 20, "v-1"))
    assert store.apply(viewed("C", T0 + 900, "x-1")).status == "duplicate"  # same id, now profile-only

    assert store.apply(viewed("D", T0 + 30, "y-1")).status == "applied"
    store.apply(viewed("E", T0 + 40, "v-2"))
    cart2 = {**cart, "sku": "Z"}
    again = store.apply(ev({"type": "track", "event": "Product Added", "properties": cart2}, T0 + 950, "y-1"))
    assert again.status == "duplicate"
    profile = store.load_profile(STORE, "u:ada")
    assert profile is not None and [v.key for v in profile.viewed][:2] == ["E", "D"]
