"""DynamoDB at the floor, on moto: what one event writes, and exactly-once without a transaction.

An event that changes only the profile item is one conditional write (no marker, no transaction),
none when it changes nothing; replays, concurrent duplicates and out-of-order delivery still give
the same profile. Consent proof lives in items of its own, and the export still shows all of it.
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


def partition(world: World, customer: str = "u:ada") -> list[dict[str, Any]]:
    resp = client("dynamodb").query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.customer_pk(STORE, customer)}},
        ConsistentRead=True,
    )
    return [from_item(i) for i in resp["Items"]]


def test_a_profile_only_event_is_one_write_and_a_replay_none(world: World) -> None:
    store = world.profiles()
    store.apply(viewed("A", T0, "m-1"))

    # When a view of another product is folded, then replayed
    with metering() as meter:
        first = store.apply(viewed("B", T0 + 300, "m-2"))
        calls_first = list(meter.calls)
        meter.reset()
        again = store.apply(viewed("B", T0 + 300, "m-2"))

    # Then the first is one conditional PutItem (no transaction, no marker) and the replay writes nothing
    assert (first.status, calls_first) == ("applied", ["PutItem"])
    assert (again.status, meter.calls) == ("unchanged", [])
    profile = store.load_profile(STORE, "u:ada")
    assert profile is not None and profile.version == 2
    assert [v.key for v in profile.viewed] == ["B", "A"]
    marker = client("dynamodb").get_item(
        TableName=world.table, Key=key(keys.event_pk(STORE, "m-2"), keys.EVENT_SK)
    )
    assert "Item" not in marker


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
    assert raced == ["racing", "applied", "applied"] and outcome.status == "unchanged"
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
    assert meter.calls == ["PutItem"] and meter.wru <= 3, (meter.calls, meter.wru)
