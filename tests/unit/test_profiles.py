"""The pure profile and cart rules: replays and late events never roll state back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.domain.api_calls import normalise
from shared.domain.carts import Cart, apply_cart_event, convert_cart, new_cart
from shared.domain.events import CanonicalEvent
from shared.domain.fold import (
    MAX_EVENT_NAMES,
    MAX_VIEWED,
    apply_consent,
    apply_context,
    apply_traits,
    merge_profiles,
    touch,
    view_product,
)
from shared.domain.orders import Order, cancel_order, order_from, record_order, refund_order
from shared.domain.profiles import Profile
from tests.events import load_event

STORE = "shop-1"


def sample(name: str, at: float, **properties: Any) -> CanonicalEvent:
    """A sample call as the canonical event Boomerang received at `at`."""
    call = load_event(name)
    call["properties"] = {**call.get("properties", {}), **properties}
    [event], errors = normalise([call], STORE, at)
    assert not errors
    return event


def cart_event(name: str, at: float, **properties: Any) -> CanonicalEvent:
    return sample(name, at, **properties).model_copy(update={"message_id": f"{name}-{at}"})


def profile() -> Profile:
    return Profile(store_id=STORE, customer_id="u:user-42")


def fresh_cart(at: float = 0) -> Cart:
    return new_cart(cart_event("product_added", at), "cart-42")


def lines(cart: Cart) -> dict[str, int]:
    return {line.sku or str(line.product_id): line.quantity for line in cart.items}


# --- traits ------------------------------------------------------------------------------------------


def test_late_identify_does_not_roll_back_email_or_traits() -> None:
    # Given a profile updated by an identify received at t=200
    p = profile()
    apply_traits(p, {"email": "new@example.com", "first_name": "Newer", "plan": "gold"}, at=200)

    # When an older identify (received at t=100) is processed late
    apply_traits(p, {"email": "old@example.com", "first_name": "Older", "city": "Leeds"}, at=100)

    # Then the newer values stand, while traits the newer call never set are still filled in
    assert p.email == "new@example.com"
    assert p.traits == {"first_name": "Newer", "plan": "gold", "city": "Leeds"}

    # And a genuinely newer identify does replace them
    apply_traits(p, {"email": "newest@example.com", "first_name": "Newest"}, at=300)
    assert (p.email, p.traits["first_name"]) == ("newest@example.com", "Newest")


def test_consent_fields_are_not_stored_as_traits() -> None:
    p = profile()
    identify = sample("identify_with_consent", 100)
    apply_traits(p, identify.traits, 100)
    assert not {"consent", "consent_source", "consent_text"} & set(p.traits)
    assert p.email == "ada.lovelace@example.com" and p.phone == "+442079460018"


def test_device_context_fills_timezone_unless_a_trait_was_sent() -> None:
    p = profile()
    apply_context(p, {"timezone": "Europe/Paris", "locale": "fr-FR"}, 100)
    assert p.traits == {"timezone": "Europe/Paris", "locale": "fr-FR"}

    apply_traits(p, {"timezone": "Asia/Tokyo"}, 200)
    apply_context(p, {"timezone": "Europe/Paris"}, 300)
    assert p.traits["timezone"] == "Asia/Tokyo"


def test_touch_tracks_first_and_last_seen_whatever_the_order() -> None:
    p = profile()
    for at in (200, 100, 300):
        touch(p, sample("product_added", at))
    assert (p.first_seen_at, p.last_seen_at) == (100, 300)


# --- consent -----------------------------------------------------------------------------------------


def test_consent_newer_wins_and_keeps_its_proof() -> None:
    # Given the customer unsubscribed at t=200 in the preference center
    p = profile()
    p.email = "ada@example.com"
    unsubscribe = sample("consent_updated", 200)
    apply_consent(p, unsubscribe.properties, 200, unsubscribe.message_id)

    # When the older opt-in from checkout (t=100) arrives late
    optin = sample("identify_with_consent", 100)
    apply_consent(p, optin.traits, 100, optin.message_id)

    # Then the withdrawal stands, with where, what wording and which call
    held = p.consent["email"]
    assert (held.status, held.at, held.source, held.message_id) == (
        "unsubscribed",
        200,
        "preference-center",
        "sample-consent-updated-1",
    )
    assert held.text == "I no longer want marketing email"
    assert p.can_email() == (False, "email consent withdrawn")

    # And a newer opt-in replaces it
    apply_consent(p, optin.traits, 300, "optin-again")
    assert p.consent["email"].status == "subscribed"
    assert p.consent["email"].source == "checkout-form"
    assert p.consent["email"].message_id == "optin-again"
    assert p.can_email() == (True, "ok")


def test_consent_is_per_channel() -> None:
    p = profile()
    apply_consent(p, {"consent": {"email": "subscribed", "sms": "unsubscribed"}}, 100, "m1")
    apply_consent(p, {"consent": {"sms": "subscribed"}}, 200, "m2")
    assert {c: v.status for c, v in p.consent.items()} == {"email": "subscribed", "sms": "subscribed"}
    assert p.consent["email"].message_id == "m1"


@pytest.mark.parametrize(
    ("email", "consent", "expected"),
    [
        (None, "subscribed", (False, "no email address")),
        ("ada@example.com", None, (False, "no email consent")),
        ("ada@example.com", "unsubscribed", (False, "email consent withdrawn")),
        ("ada@example.com", "subscribed", (True, "ok")),
    ],
)
def test_can_email_needs_address_and_standing_consent(
    email: str | None, consent: str | None, expected: tuple[bool, str]
) -> None:
    p = profile()
    p.email = email
    if consent:
        apply_consent(p, {"consent": {"email": consent}}, 1, "m")
    assert p.can_email() == expected


# --- orders ------------------------------------------------------------------------------------------


def order(order_id: str, total: str, at: float, currency: str = "EUR") -> Order:
    return Order(
        store_id=STORE, order_id=order_id, customer_id="u:1", total=Decimal(total), currency=currency, at=at
    )


def test_order_aggregates_are_exact_and_order_independent() -> None:
    p = profile()
    record_order(p, order("o2", "0.20", at=300))
    record_order(p, order("o1", "0.10", at=100, currency="USD"))
    o = p.orders
    assert (o.count, o.revenue, o.currency) == (2, Decimal("0.30"), "EUR")
    assert (o.first_order_at, o.last_order_at) == (100, 300)

    cancel_order(p, order("o2", "0.20", at=300))
    refund_order(p, Decimal("0.05"))
    assert (o.count, o.revenue, o.cancelled_count, o.refunded) == (1, Decimal("0.10"), 1, Decimal("0.05"))


def test_order_total_comes_from_total_then_revenue_then_products() -> None:
    with_total = sample("order_completed", 10)
    assert order_from(with_total, "u:1").total == Decimal("101.5")

    revenue_only = sample("order_completed", 10)
    del revenue_only.properties["total"]
    revenue_only.properties["revenue"] = 99.99
    assert order_from(revenue_only, "u:1").total == Decimal("99.99")

    from_lines = sample("order_completed", 10)
    del from_lines.properties["total"]
    placed = order_from(from_lines, "u:1")
    assert placed.total == Decimal("101.5")  # 89.5 + 2 x 6.0
    assert (placed.order_id, placed.at, placed.message_ids) == (
        "order-1001",
        10,
        ["sample-order-completed-1"],
    )


# --- merging -----------------------------------------------------------------------------------------


def test_merge_folds_the_visitor_into_the_customer_newer_values_win() -> None:
    # Given a known customer and an anonymous visitor who later typed a new email and opted in
    known = profile()
    known.anonymous_ids = ["anon-old"]
    apply_traits(known, {"email": "old@example.com", "first_name": "Ada", "plan": "basic"}, 100)
    apply_consent(known, {"consent": {"email": "unsubscribed"}}, 100, "m-known")
    record_order(known, order("o1", "10", 100))
    known.first_seen_at, known.last_seen_at = 100, 150

    visitor = Profile(store_id=STORE, customer_id="a:anon-1", anonymous_ids=["anon-1"], open_cart_id="cart-a")
    apply_traits(visitor, {"email": "new@example.com", "plan": "trial"}, 200)
    apply_traits(visitor, {"first_name": "A."}, 50)  # older than the customer's first_name
    apply_consent(visitor, {"consent": {"email": "subscribed"}}, 200, "m-visitor")
    record_order(visitor, order("o2", "5", 40))
    visitor.first_seen_at, visitor.last_seen_at = 40, 200

    # When merged
    merge_profiles(known, visitor)

    # Then per field the newer value wins, ids and orders add up, and the visitor points at the customer
    assert known.email == "new@example.com"
    assert known.traits == {"first_name": "Ada", "plan": "trial"}
    assert known.consent["email"].message_id == "m-visitor" and known.can_email() == (True, "ok")
    assert known.anonymous_ids == ["anon-old", "anon-1"]
    assert known.open_cart_id == "cart-a"
    assert (known.first_seen_at, known.last_seen_at) == (40, 200)
    assert (known.orders.count, known.orders.revenue) == (2, Decimal("15"))
    assert (known.orders.first_order_at, known.orders.last_order_at) == (40, 100)
    assert visitor.merged_into == "u:user-42"


def test_merge_keeps_the_customers_newer_values_and_open_cart() -> None:
    known = profile()
    known.open_cart_id = "cart-known"
    apply_traits(known, {"email": "current@example.com"}, 300)
    visitor = Profile(store_id=STORE, customer_id="a:anon-1", open_cart_id="cart-a")
    apply_traits(visitor, {"email": "stale@example.com"}, 200)

    merge_profiles(known, visitor)

    assert (known.email, known.open_cart_id) == ("current@example.com", "cart-known")


# --- carts -------------------------------------------------------------------------------------------


def test_adding_the_same_product_accumulates_and_details_follow_the_newest() -> None:
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 100, quantity=1, price=89.5))
    apply_cart_event(cart, cart_event("product_added", 200, quantity=2, price=79.0))
    assert lines(cart) == {"RUN-42": 3}
    assert cart.lines["RUN-42"].price == Decimal("79.0")
    assert cart.value == Decimal("237.0")
    assert (cart.created_at, cart.last_activity_at) == (0, 200)


def test_older_add_processed_late_keeps_newer_details_but_counts() -> None:
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 200, quantity=1, price=79.0))
    apply_cart_event(cart, cart_event("product_added", 100, quantity=1, price=89.5))
    assert lines(cart) == {"RUN-42": 2}
    assert cart.lines["RUN-42"].price == Decimal("79.0")


def test_remove_after_add_empties_the_line() -> None:
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 100))
    apply_cart_event(cart, cart_event("product_removed", 200))
    assert cart.items == [] and cart.value == 0
    assert cart.lines["RUN-42"].removed_at == 200


def test_partial_remove_lowers_the_quantity() -> None:
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 100, quantity=3))
    apply_cart_event(cart, cart_event("product_removed", 200, quantity=1))
    assert lines(cart) == {"RUN-42": 2}


def test_out_of_order_removal_is_not_undone_by_the_earlier_add() -> None:
    # Given the customer added (t=100) then removed (t=200) the product, but the queue delivered
    # the removal first
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_removed", 200))

    # When the earlier add is processed afterwards
    apply_cart_event(cart, cart_event("product_added", 100))

    # Then the cart is empty: the removal came later in real time
    assert cart.items == []
    assert cart.last_activity_at == 200

    # And adding it again later really adds it back
    apply_cart_event(cart, cart_event("product_added", 300, quantity=2))
    assert lines(cart) == {"RUN-42": 2}


def test_stale_removal_does_not_remove_a_newer_add() -> None:
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 200))
    apply_cart_event(cart, cart_event("product_removed", 100))
    assert lines(cart) == {"RUN-42": 1}


def test_checkout_snapshot_replaces_lines_but_keeps_newer_changes() -> None:
    # Given a cart with the runner (t=100) and a hat added after the checkout (t=300)
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 100, quantity=5))
    apply_cart_event(cart, cart_event("product_added", 300, sku="HAT-1", product_id="hat", price=20))

    # When the Checkout Started snapshot taken at t=200 is processed
    apply_cart_event(cart, cart_event("checkout_started", 200))

    # Then the snapshot sets the lines as of t=200, and the later hat survives
    assert lines(cart) == {"RUN-42": 1, "SOCK-7": 2, "HAT-1": 1}
    assert cart.snapshot_at == 200

    # And an older snapshot processed later changes nothing
    apply_cart_event(cart, cart_event("checkout_started", 150, products=[{"sku": "OLD", "quantity": 9}]))
    assert lines(cart) == {"RUN-42": 1, "SOCK-7": 2, "HAT-1": 1}


def test_conversion_is_not_reopened_by_older_activity() -> None:
    # Given a cart converted by an order at t=500
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 100))
    convert_cart(cart, "order-1001", 500)
    assert (cart.status, cart.order_id) == ("converted", "order-1001")

    # When a cart event from before the purchase is processed late
    apply_cart_event(cart, cart_event("product_added", 400, sku="HAT-1", product_id="hat"))

    # Then the cart stays converted and unchanged
    assert (cart.status, cart.converted_at, cart.order_id) == ("converted", 500, "order-1001")
    assert lines(cart) == {"RUN-42": 1}


def test_conversion_is_reopened_by_newer_activity() -> None:
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 100))
    convert_cart(cart, "order-1001", 500)

    apply_cart_event(cart, cart_event("product_added", 600, sku="HAT-1", product_id="hat"))

    assert (cart.status, cart.converted_at, cart.order_id) == ("open", None, None)
    assert "HAT-1" in lines(cart) and cart.last_activity_at == 600


def test_order_older_than_the_last_cart_activity_does_not_convert() -> None:
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 700))
    convert_cart(cart, "order-1001", 500)
    assert cart.status == "open" and cart.order_id is None


def test_cart_learns_who_it_belongs_to() -> None:
    cart = fresh_cart()
    anon = cart_event("product_added", 100).model_copy(update={"user_id": None, "anonymous_id": "anon-1"})
    apply_cart_event(cart, anon)
    apply_cart_event(cart, cart_event("product_added", 200))
    assert (cart.user_id, cart.anonymous_id) == ("user-42", "anon-1")


def test_removal_without_a_quantity_removes_the_whole_line() -> None:
    # Given three runners in the cart
    cart = fresh_cart()
    apply_cart_event(cart, cart_event("product_added", 100, quantity=3))

    # When the storefront sends Product Removed without a quantity (remove the line)
    call = load_event("product_removed")
    del call["properties"]["quantity"]
    [removed], errors = normalise([call], STORE, 200)
    assert not errors
    apply_cart_event(cart, removed)

    # Then the line is gone, not reduced by one
    assert cart.items == []


def test_add_without_a_quantity_adds_one() -> None:
    call = load_event("product_added")
    del call["properties"]["quantity"]
    [added], _ = normalise([call], STORE, 100)
    cart = fresh_cart()
    apply_cart_event(cart, added)
    apply_cart_event(cart, added.model_copy(update={"received_at": 200}))
    assert lines(cart) == {"RUN-42": 2}


# --- last event times ------------------------------------------------------------------------------


def track(name: str, at: float, **properties: Any) -> CanonicalEvent:
    call = {"type": "track", "userId": "user-42", "event": name, "properties": properties}
    [event], errors = normalise([call], STORE, at)
    assert not errors, errors
    return event


def test_last_event_at_keeps_the_latest_time_per_event_name() -> None:
    p = profile()
    touch(p, track("Signed Up", 100))
    touch(p, track("order_completed", 300, order_id="o1"))  # canonical names: one entry per event
    touch(p, track("Order Completed", 200, order_id="o2"))  # processed late: does not move it back
    touch(p, sample("identify_with_consent", 400))  # not a track event
    assert p.last_event_at == {"Signed Up": 100, "Order Completed": 300}


def test_last_event_at_drops_the_oldest_names_beyond_the_bound() -> None:
    p = profile()
    for i in range(MAX_EVENT_NAMES + 3):
        touch(p, track(f"Custom {i}", 1000 - i))  # the later names are the older events
    assert len(p.last_event_at) == MAX_EVENT_NAMES
    assert "Custom 0" in p.last_event_at and f"Custom {MAX_EVENT_NAMES + 2}" not in p.last_event_at


# --- recently viewed products ------------------------------------------------------------------------


def view(p: Profile, sku: str, at: float, **details: Any) -> None:
    view_product(p, {"sku": sku, "name": f"Product {sku}", **details}, at)


def test_viewed_products_are_newest_first_and_a_new_view_moves_to_the_front() -> None:
    p = profile()
    view(p, "A", 100, price=10.0)
    view(p, "B", 200)
    view(p, "A", 300, price=12.5, name="A, new name")
    assert [(v.key, v.at) for v in p.viewed] == [("A", 300), ("B", 200)]
    assert (p.viewed[0].price, p.viewed[0].name) == (Decimal("12.5"), "A, new name")


def test_a_late_view_never_reorders_newer_ones() -> None:
    p = profile()
    view(p, "A", 300, name="newest details")
    view(p, "B", 200)
    view(p, "A", 100, name="stale details")  # an older view of A processed late
    view(p, "C", 50)  # an older view of another product: goes behind
    assert [v.key for v in p.viewed] == ["A", "B", "C"]
    assert p.viewed[0].name == "newest details" and p.viewed[0].at == 300


def test_viewed_products_are_capped_and_keyed_by_sku_else_product_id() -> None:
    p = profile()
    for i in range(MAX_VIEWED + 5):
        view(p, f"S{i}", 100 + i)
    view_product(p, {"product_id": "P-1"}, 1000)
    view_product(p, {"name": "no id"}, 1001)  # nothing to key it by: not kept
    assert len(p.viewed) == MAX_VIEWED
    assert [v.key for v in p.viewed[:2]] == ["P-1", f"S{MAX_VIEWED + 4}"]


def test_merge_combines_views_and_event_times() -> None:
    known, visitor = profile(), Profile(store_id=STORE, customer_id="a:anon-1")
    view(known, "A", 100)
    view(known, "B", 400)
    view(visitor, "A", 300, name="seen again as a visitor")
    view(visitor, "C", 200)
    touch(known, track("Signed Up", 500))
    touch(visitor, track("Signed Up", 450))
    touch(visitor, track("Product Viewed", 300, sku="A"))

    merge_profiles(known, visitor)

    assert [(v.key, v.at) for v in known.viewed] == [("B", 400), ("A", 300), ("C", 200)]
    assert known.viewed[1].name == "seen again as a visitor"
    assert known.last_event_at == {"Signed Up": 500, "Product Viewed": 300}


def test_a_birthday_cleared_by_the_visitor_after_the_customers_value_is_cleared_on_merge() -> None:
    known, visitor = profile(), Profile(store_id=STORE, customer_id="a:anon-1")
    apply_traits(known, {"birthday": "04-23"}, 100)
    apply_traits(visitor, {"birthday": None}, 200)
    merge_profiles(known, visitor)
    assert "birthday" not in known.traits and known.birthday_month_day is None
