"""Whose items are whose, and what an erasure's tombstone drops (shared/domain/privacy.py)."""

from __future__ import annotations

from typing import Any

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


# -- forward records to fulfilment partners -----------------------------------------------------


def _fwd(**extra: Any) -> dict[str, Any]:
    return {
        "pk": "STORE#s1#ORDER#o-1",
        "sk": "FWD#acme#create",
        "store_id": "s1",
        "order_id": "o-1",
        "partner_id": "acme",
        "action": "create",
        "customer_id": "u:ada",
        "status": "accepted",
        "order_at": 1000.0,
        "accepted_at": 4600.0,
        "document": '{"shipping_address": {"line1": "12 Square"}}',
        "attempts": [
            {
                "n": 1,
                "at": "-",
                "status_code": 202,
                "outcome": "accepted",
                "answer": "12 Square",
                "error": "x",
            }
        ],
        "tracking_number": "T-1",
        "tracking_url": "https://t/T-1",
        "carrier": "DHL",
        "some_future_field": "may hold an address",
        **extra,
    }


def test_a_forward_of_their_order_is_theirs_and_not_an_order() -> None:
    from shared.domain.privacy import Subject, owns

    s = Subject("s1", customer_ids={"u:ada"})
    assert owns(_fwd(), s) == "forwards"
    assert owns(_fwd(customer_id="u:bob"), s) is None
    assert owns({**_fwd(), "sk": "ORDER"}, s) == "orders"


def test_scrubbing_a_forward_keeps_the_figures_and_drops_the_person() -> None:
    from shared.domain.privacy import ERASED_REASON, scrub_forward

    out = scrub_forward(_fwd(), "erased:p", 5.0)
    assert out["customer_id"] == "erased:p" and out["erased_at"] == 5.0
    assert (out["status"], out["order_at"], out["accepted_at"], out["carrier"]) == (
        "accepted",
        1000.0,
        4600.0,
        "DHL",
    )
    assert out["attempts"] == [{"n": 1, "at": "-", "status_code": 202, "outcome": "accepted"}]
    for gone in ("document", "tracking_number", "tracking_url", "some_future_field"):
        assert gone not in out
    assert scrub_forward(out, "erased:p", 9.0) == out  # idempotent
    closed = scrub_forward(_fwd(status="retrying"), "erased:p", 5.0)
    assert (closed["status"], closed["reason"]) == ("cancelled", ERASED_REASON)


def test_forwards_go_with_the_message_history_and_rate_counters_with_their_ttl() -> None:
    from shared.domain.privacy import DataRetention, forward_expired, rate_counter_expired

    policy = DataRetention(message_history_days=30)
    assert policy.forward_expires_at(1000.0) == 1000 + 30 * 86400
    assert not forward_expired(_fwd(), policy, 1000.0 + 30 * 86400 - 1)
    assert forward_expired(_fwd(), policy, 1000.0 + 30 * 86400)
    assert not forward_expired({**_fwd(), "sk": "ORDER"}, policy, 10**10)  # the order stays
    assert rate_counter_expired({"sk": "RATE#5", "expires_at": 10}, 10)
    assert not rate_counter_expired({"sk": "RATE#5", "expires_at": 11}, 10)
    assert not rate_counter_expired({"sk": "PROFILE", "expires_at": 1}, 10)


def test_the_export_of_a_forward_has_the_document_sent() -> None:
    from shared.domain.privacy import export_document

    doc = export_document("s1", "u:ada", {"forwards": [_fwd()]}, 0.0)
    [f] = doc["fulfilment"]
    assert f["document"] == {"shipping_address": {"line1": "12 Square"}}
    assert (f["partner_id"], f["status"], f["tracking_number"]) == ("acme", "accepted", "T-1")
    assert f["attempts"][0]["answer"] == "12 Square"
