"""normalise(): the one place a storefront call is validated and turned into a canonical event."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.api_calls import MAX_CALL_BYTES, normalise
from shared.domain.events import canonical_event_name
from tests.events import load_event, sample_names

STORE = "shop-1"
AT = 1_790_000_000.0


def one(call: dict[str, Any]) -> Any:
    events, errors = normalise([call], STORE, AT)
    assert errors == [], errors
    assert len(events) == 1
    return events[0]


def problems(*calls: Any) -> list[tuple[int, str, str]]:
    events, errors = normalise(list(calls), STORE, AT)
    assert events == [], "an invalid batch must not yield any event"
    return [(e.index, e.field, e.message) for e in errors]


# --- valid calls ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in sample_names() if not n.startswith("batch_")])
def test_every_single_call_sample_is_valid(name: str) -> None:
    # Given a named sample call, when normalised, then it is accepted under its own messageId
    event = one(load_event(name))
    assert event.message_id == load_event(name)["messageId"]
    assert event.store_id == STORE and event.received_at == AT


def test_track_product_added_becomes_a_canonical_event() -> None:
    # Given the sample Product Added call
    call = load_event("product_added")

    # When it is normalised
    event = one(call)

    # Then the canonical event carries Boomerang's receive time, the store and the typed properties
    assert (event.type, event.event, event.user_id, event.anonymous_id) == (
        "track",
        "Product Added",
        "user-42",
        None,
    )
    assert event.timestamp == "2026-11-23T10:01:00Z"  # the client's clock is kept for analytics only
    assert event.properties["price"] == 89.5 and event.properties["quantity"] == 1
    assert event.properties["name"] == "Trail Runner <Pro>"  # stored raw; escaping is the template's job
    assert event.cart_id == "cart-42"


def test_identify_normalises_traits_and_keeps_context_but_not_the_ip_address() -> None:
    # Given an identify with mixed-case email, a spaced phone, camelCase firstName and device context
    event = one(load_event("identify_with_consent"))

    # Then identity traits are normalised and consent metadata travels with the traits
    assert event.type == "identify" and event.event is None
    assert event.traits["email"] == "ada.lovelace@example.com"
    assert event.traits["phone"] == "+442079460018"
    assert event.traits["first_name"] == "Ada"
    assert event.traits["consent"] == {"email": "subscribed"}
    assert event.traits["consent_source"] == "checkout-form"
    # And Segment's context is kept for analytics (clients rely on it), less the IP address:
    # personal data no rule reads
    assert event.context == {"timezone": "Europe/London", "locale": "en-GB", "userAgent": "Mozilla/5.0"}


@pytest.mark.parametrize(
    "sent",
    [
        "product_added",
        "Product Added",
        "product added",
        "PRODUCT-ADDED",
        "  product__added ",
        "Product_Added",
    ],
)
def test_event_names_are_canonicalised(sent: str) -> None:
    # Given a Segment e-commerce event name in any casing or separator style
    call = {**load_event("product_added"), "event": sent}

    # Then it is the canonical Segment name, and its properties are validated as a cart event
    event = one(call)
    assert event.event == "Product Added"
    assert canonical_event_name(sent) == "Product Added"


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("product_viewed", "Product Viewed"),
        ("signed up", "Signed Up"),
        ("back_in_stock_subscribed", "Back In Stock Subscribed"),
        ("Back-In-Stock", "Back In Stock"),
    ],
)
def test_lifecycle_event_names_are_canonicalised(sent: str, canonical: str) -> None:
    event = one({"type": "track", "userId": "u1", "event": sent, "properties": {"sku": "LAMP-9"}})
    assert event.event == canonical


def test_unknown_event_names_pass_through_trimmed() -> None:
    event = one({"type": "track", "userId": "u1", "event": "  Gift Wrapped  "})
    assert event.event == "Gift Wrapped"


def test_numbers_are_accepted_as_ids() -> None:
    # Given a store that sends numeric database ids
    event = one({"type": "track", "event": "Products Searched", "userId": 12345, "anonymousId": 7})

    # Then they become text ids (the same customer as "12345")
    assert (event.user_id, event.anonymous_id) == ("12345", "7")


def test_numeric_cart_and_product_ids_become_text() -> None:
    call = load_event("product_added")
    call["properties"].update(cart_id=991, product_id=17, sku=None)
    event = one(call)
    assert event.properties["cart_id"] == "991" and event.properties["product_id"] == "17"
    assert event.cart_id == "991"


def test_booleans_are_not_ids() -> None:
    assert problems({"type": "track", "event": "x", "userId": True}) == [
        (0, "userId", "Input should be a valid string")
    ]


def test_cart_event_without_cart_id_gets_one_default_cart_per_visitor() -> None:
    call = load_event("product_added")
    del call["properties"]["cart_id"]
    first, again = one(call), one({**call, "messageId": "another"})
    other = one({**call, "userId": "someone-else"})
    assert first.cart_id.startswith("default-")
    assert first.cart_id == again.cart_id != other.cart_id


# --- invalid calls ---------------------------------------------------------------------------------


def test_a_call_needs_a_user_or_anonymous_id() -> None:
    call = load_event("product_added")
    del call["userId"]
    assert problems(call) == [(0, "(call)", "userId or anonymousId is required")]


def test_track_needs_an_event_name() -> None:
    assert problems({"type": "track", "userId": "u1"}) == [
        (0, "(call)", "event is required for a track call")
    ]


@pytest.mark.parametrize(
    ("consent", "field", "message"),
    [
        ({"email": "yes"}, "traits.consent.email", "must be one of 'subscribed' or 'unsubscribed'"),
        ({"fax": "subscribed"}, "traits.consent.fax", "must be one of 'email', 'sms', 'push' or 'webpush'"),
    ],
)
def test_bad_consent_values_are_rejected(consent: dict[str, str], field: str, message: str) -> None:
    call = load_event("identify_with_consent")
    call["traits"]["consent"] = consent
    [(index, got_field, got_message)] = problems(call)
    assert index == 0 and got_field.startswith(field) and got_message == message


def test_bad_timezone_is_rejected() -> None:
    call = load_event("identify_with_consent")
    call["traits"]["timezone"] = "Mars/Olympus_Mons"
    assert problems(call) == [(0, "traits.timezone", "must be an IANA time zone such as Europe/Warsaw")]


@pytest.mark.parametrize("email", ["ada", "ada@", "ada@example", "a da@example.com", "@example.com"])
def test_bad_email_is_rejected(email: str) -> None:
    call = load_event("identify_with_consent")
    call["traits"]["email"] = email
    assert problems(call) == [(0, "traits.email", "must be an email address like name@example.com")]


def test_empty_email_means_no_email() -> None:
    call = load_event("identify_with_consent")
    call["traits"]["email"] = ""
    assert "email" not in one(call).traits


def test_order_without_order_id_is_rejected() -> None:
    call = load_event("order_completed")
    del call["properties"]["order_id"]
    assert problems(call) == [(0, "properties.order_id", "Field required")]


def test_timestamp_must_carry_a_zone() -> None:
    call = {**load_event("product_added"), "timestamp": "2026-11-23T10:01:00"}
    assert problems(call) == [(0, "timestamp", "must include a time zone offset or Z")]


def test_cart_event_needs_a_product_and_a_positive_quantity() -> None:
    no_product = load_event("product_added")
    no_product["properties"] = {"cart_id": "c1", "name": "mystery"}
    zero = load_event("product_added")
    zero["properties"]["quantity"] = 0
    assert problems(no_product, zero) == [
        (0, "properties", "product_id or sku is required"),
        (1, "properties.quantity", "Input should be greater than or equal to 1"),
    ]


def test_oversized_call_is_rejected() -> None:
    call = {**load_event("product_added"), "context": {"blob": "x" * MAX_CALL_BYTES}}
    [(index, field, message)] = problems(call)
    assert (index, field) == (0, "(call)") and f"at most {MAX_CALL_BYTES}" in message


def test_whole_batch_is_rejected_with_every_error_listed() -> None:
    # Given a batch with two valid calls and three bad ones at known positions
    batch = load_event("batch_cart_abandon")["batch"]
    bad_email = {**batch[0], "traits": {**batch[0]["traits"], "email": "bo-at-example"}}
    no_ids = {k: v for k, v in batch[1].items() if k != "userId"}
    not_a_call = "Product Added"
    calls = [batch[2], bad_email, no_ids, batch[3], not_a_call]

    # When normalised
    events, errors = normalise(calls, STORE, AT)

    # Then nothing is accepted, and every problem names its call index and field
    assert events == []
    assert [(e.index, e.field) for e in errors] == [(1, "traits.email"), (2, "(call)"), (4, "(call)")]
    assert errors[2].message == "each call must be a JSON object"


def test_valid_batch_is_accepted_in_order() -> None:
    events, errors = normalise(load_event("batch_cart_abandon")["batch"], STORE, AT)
    assert errors == []
    assert [e.message_id for e in events] == [
        "sample-batch-identify",
        "sample-batch-add-1",
        "sample-batch-add-2",
        "sample-batch-viewed",
    ]
    assert events[1].event == "Product Added"  # sent as product_added


# --- derived messageId ----------------------------------------------------------------------------


def without_message_id(name: str) -> dict[str, Any]:
    call = load_event(name)
    del call["messageId"]
    return call


def test_derived_message_id_is_stable_for_identical_calls() -> None:
    # Given the same call sent twice without a messageId (a client retry), keys in another order
    first = without_message_id("product_added")
    again = dict(reversed(list(without_message_id("product_added").items())))

    # Then both get the same derived id, so the retry is deduplicated downstream
    a, b = one(first), one(again)
    assert a.message_id.startswith("derived-")
    assert a.message_id == b.message_id


def test_derived_message_id_differs_by_content_and_store() -> None:
    call = without_message_id("product_added")
    changed = without_message_id("product_added")
    changed["properties"]["quantity"] = 2
    base = one(call).message_id
    assert one(changed).message_id != base
    [elsewhere], _ = normalise([call], "shop-2", AT)
    assert elsewhere.message_id != base
    # and the receive time is not part of it: a retry a second later is the same call
    [later], _ = normalise([call], STORE, AT + 1)
    assert later.message_id == base


# --- lifecycle events: products, back in stock, loyalty, birthdays ---------------------------------


@pytest.mark.parametrize(
    ("name", "needed"),
    [
        ("Product Viewed", "product_id or sku is required"),
        ("Back In Stock Subscribed", "product_id or sku is required"),
        # a platform's inventory item alone will do: the profile fold looks up its sku
        ("Back In Stock", "product_id, sku or inventory_item_id is required"),
    ],
)
def test_product_events_need_a_sku_or_product_id(name: str, needed: str) -> None:
    call = {"type": "track", "userId": "u1", "event": name, "properties": {"name": "Headlamp"}}
    assert problems(call) == [(0, "properties", needed)]


def test_back_in_stock_subscription_keeps_the_product_details() -> None:
    event = one(
        {
            "type": "track",
            "anonymousId": "anon-1",
            "event": "Back In Stock Subscribed",
            "properties": {
                "sku": 991,
                "name": "Headlamp",
                "price": "24.50",
                "url": "https://shop.example.com/p/lamp",
                "image_url": "https://shop.example.com/i/lamp.png",
            },
        }
    )
    assert event.properties == {
        "sku": "991",
        "name": "Headlamp",
        "price": 24.5,
        "url": "https://shop.example.com/p/lamp",
        "image_url": "https://shop.example.com/i/lamp.png",
    }


def test_product_view_with_a_relative_url_is_rejected() -> None:
    call = {
        "type": "track",
        "userId": "u1",
        "event": "Product Viewed",
        "properties": {"sku": "A", "url": "/p/a"},
    }
    assert problems(call) == [(0, "properties.url", "must be an absolute http(s) URL")]


@pytest.mark.parametrize("sent", ["Loyalty Tier Reached", "loyalty_tier_reached", " LOYALTY-TIER-REACHED "])
def test_a_store_cannot_send_loyalty_tier_reached(sent: str) -> None:
    # Boomerang's profile fold makes this event; a store sending it could fake a tier
    call = {"type": "track", "userId": "u1", "event": sent, "properties": {"tier": "gold"}}
    assert problems(call) == [
        (0, "event", "'Loyalty Tier Reached' is sent by Boomerang itself; a store cannot send it")
    ]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("1990-04-23", "1990-04-23"),
        ("04-23", "04-23"),
        ("--04-23", "04-23"),  # vCard, no year
        ("02-29", "02-29"),  # a leap-day birthday without a year
        ("2000-02-29", "2000-02-29"),
        (" 12-31 ", "12-31"),
    ],
)
def test_birthday_is_a_date_or_a_month_day(sent: str, kept: str) -> None:
    event = one({"type": "identify", "userId": "u1", "traits": {"birthday": sent}})
    assert event.traits["birthday"] == kept


@pytest.mark.parametrize(
    "sent",
    [
        "1990-02-29",
        "13-01",
        "04-31",
        "1990/04/23",
        "23-04-1990",
        "1990-04-23T00:00:00Z",
        "0990-01-01",
        19900423,
    ],
)
def test_bad_birthday_is_rejected_with_the_field_named(sent: Any) -> None:
    assert problems({"type": "identify", "userId": "u1", "traits": {"birthday": sent}}) == [
        (0, "traits.birthday", "must be a date like 1990-04-23, or a month and day like 04-23 (or --04-23)")
    ]


@pytest.mark.parametrize("sent", [None, ""])
def test_null_birthday_clears_it(sent: Any) -> None:
    # an explicit null survives normalisation (other null traits are dropped) so the fold can clear it
    event = one({"type": "identify", "userId": "u1", "traits": {"birthday": sent, "first_name": None}})
    assert event.traits == {"birthday": None}


def test_identify_without_a_birthday_says_nothing_about_it() -> None:
    event = one({"type": "identify", "userId": "u1", "traits": {"first_name": "Ada"}})
    assert "birthday" not in event.traits
