"""Whose items are whose, and what an erasure's tombstone drops (shared/domain/privacy.py)."""

from __future__ import annotations

import pytest

from shared.domain.privacy import DataRetention, Subject, dropped_by_erasure, owns
from shared.platform import keys


def subject() -> Subject:
    s = Subject(store_id="s1", customer_ids={"u:ada", "a:v1"}, emails={"ada@example.com"})
    s.instances |= {"cart-1", "o-1", "u:ada"}
    return s


@pytest.mark.parametrize(
    ("item", "kind"),
    [
        ({"pk": "STORE#s1#CUST#u:ada", "sk": "PROFILE"}, "profiles"),
        ({"pk": "STORE#s1#CUST#a:v1", "sk": "SEG#vip"}, "segments"),
        ({"pk": "STORE#s1#CUST#u:ada", "sk": "HIST#2026#x"}, "history"),
        ({"pk": "STORE#s1#ALIAS#anon#v1", "sk": "ALIAS", "customer_id": "u:ada"}, "aliases"),
        ({"pk": "STORE#s1#CART#c9", "sk": "CART", "user_id": "ada"}, "carts"),
        ({"pk": "STORE#s1#CART#c8", "sk": "CART", "anonymous_id": "v1"}, "carts"),
        ({"pk": "STORE#s1#ORDER#o-1", "sk": "ORDER", "customer_id": "u:ada"}, "orders"),
        ({"pk": "STORE#s1#EVT#m1", "sk": "EVT", "customer_id": "a:v1"}, "events"),
        ({"pk": "STORE#s1#JOURNEY#cart-abandonment#cart-1", "sk": "STATE"}, "journey_records"),
        ({"pk": "STORE#s1#JOURNEY#welcome#u:ada~abc", "sk": "SEND#w"}, "journey_records"),
        ({"pk": "STORE#s1#POOL#vip", "sk": "TO#cart-abandonment|cart-1~g1|r2"}, "offers"),
        ({"pk": "STORE#s1#POOL#vip", "sk": "GIVEN#C1", "recipient": "welcome|u:ada|w"}, "offer_codes"),
    ],
)
def test_items_of_the_subject(item: dict[str, str], kind: str) -> None:
    assert owns(item, subject()) == kind


@pytest.mark.parametrize(
    "item",
    [
        {"pk": "STORE#s2#CUST#u:ada", "sk": "PROFILE"},  # another store's customer with the same id
        {"pk": "STORE#s1#CUST#u:adam", "sk": "PROFILE"},
        {"pk": "STORE#s1#CART#c7", "sk": "CART", "user_id": "bob", "anonymous_id": "v1"},  # shared device
        {"pk": "STORE#s1#JOURNEY#cart-abandonment#cart-10", "sk": "STATE"},
        {"pk": "STORE#s1#POOL#vip", "sk": "FREE#C2"},
        {"pk": "STORE#s1#STORE", "sk": "RFM"},
        {"pk": "APIKEY#abc", "sk": "APIKEY"},
    ],
)
def test_items_of_others(item: dict[str, str]) -> None:
    assert owns(item, subject()) is None


def test_only_events_received_before_the_erasure_are_dropped() -> None:
    assert dropped_by_erasure(100.0, [100.0]) and dropped_by_erasure(99.0, [50.0, 100.0])
    assert not dropped_by_erasure(100.5, [100.0]) and not dropped_by_erasure(1.0, [])


def test_tombstone_keys_hash_the_normalised_identifier_and_hold_none() -> None:
    pk = keys.erased_pk("s1", "email", " Ada@Example.com ")
    assert pk == keys.erased_pk("s1", "email", "ada@example.com") and "ada" not in pk
    assert keys.erased_pk("s1", "phone", "+44 20 7946 0018") == keys.erased_pk("s1", "phone", "+442079460018")
    with pytest.raises(ValueError, match="one of user, anon, email, phone"):
        keys.erased_pk("s1", "name", "Ada")


def test_retention_defaults_and_limits() -> None:
    policy = DataRetention()
    assert (policy.inactive_profile_days, policy.cart_days, policy.message_history_days) == (730, 90, 400)
    assert policy.profile_expires_at(1000.0, 5000.0) == 1000 + 730 * 86400
    assert policy.profile_expires_at(None, 5000.0) == 5000 + 730 * 86400
    with pytest.raises(ValueError, match="inactive_profile_days"):
        DataRetention(inactive_profile_days=5)
    with pytest.raises(ValueError, match="extra"):
        DataRetention.model_validate({"forever": True})
