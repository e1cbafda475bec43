"""Shopify and WooCommerce topics, from their documented payloads to canonical events."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain import event_routing as route
from shared.domain.api_calls import normalise
from shared.domain.events import CanonicalEvent
from shared.domain.webhooks import email_key, number, shopify, signature, signature_ok, woocommerce
from tests.events import load_event

AT = 1_795_000_000.0


def mapped(platform: str, topic: str, sample: str) -> list[CanonicalEvent]:
    module = shopify if platform == "shopify" else woocommerce
    result = module.map_webhook(topic, load_event(f"{platform}/{sample}"))
    assert result.known_topic
    events, errors = normalise(number(result.calls, platform, "delivery-1"), "shop-1", AT)
    assert not errors, errors  # every mapped call passes the event API's own validation
    return events


def names(events: list[CanonicalEvent]) -> list[str]:
    return [e.event or e.type for e in events]


# --- signatures -----------------------------------------------------------------------------------


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    # Shopify's documented check: base64(HMAC-SHA256(secret, body)); this value is from `openssl dgst -sha256 -hmac hush -binary | base64`
    assert signature("hush", b'{"id":1}') == "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
    assert signature_ok("hush", b'{"id":1}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=")
    assert not signature_ok("hush", b'{"id":2}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=")
    assert not signature_ok("other", b'{"id":1}', "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY=")
    assert not signature_ok("hush", b'{"id":1}', None)
    assert not signature_ok("hush", b'{"id":1}', "")


def test_message_ids_derive_from_the_delivery_id() -> None:
    calls = number([{"type": "identify"}, {"type": "track"}], "shopify", "b54557e4-bdd9")
    assert [c["messageId"] for c in calls] == ["shopify:b54557e4-bdd9:0", "shopify:b54557e4-bdd9:1"]


# --- Shopify --------------------------------------------------------------------------------------


def test_checkout_becomes_identify_with_consent_and_checkout_started_with_the_recovery_link() -> None:
    identify, started = mapped("shopify", "checkouts/create", "checkouts_create")
    assert identify.type == "identify" and identify.user_id == "207119551"
    assert identify.traits["email"] == "bob.norman@mail.example.com"
    assert identify.traits["consent"] == {"email": "subscribed"}
    assert identify.traits["consent_source"] == "shopify:checkout"
    assert started.event == "Checkout Started" and started.user_id == "207119551"
    p = started.properties
    assert p["cart_id"] == p["checkout_id"] == "0123456789abcdef0456456789abcdef"
    assert p["recovery_url"].startswith("https://checkout.local/548380009/checkouts/0123456789abcdef")
    assert p["value"] == 248.0 and p["currency"] == "USD"
    assert [(x.get("sku"), x["quantity"], x["price"]) for x in p["products"]] == [
        ("IPOD2008PINK", 1, 199.0),
        ("457924702", 2, 24.5),  # no sku: the variant id stands in
    ]
    assert started.message_id == "shopify:delivery-1:1"


def test_guest_checkout_is_one_profile_per_email_and_unticked_marketing_gives_no_consent() -> None:
    identify, started = mapped("shopify", "checkouts/create", "checkouts_create_guest")
    assert identify.user_id == started.user_id == "guest-" + email_key("guest.buyer@mail.example.com")
    assert "consent" not in identify.traits
    assert identify.traits["first_name"] == "Gail"  # from the billing address


def test_checkout_update_keeps_the_same_cart_and_a_completed_one_starts_nothing() -> None:
    *_, started = mapped("shopify", "checkouts/update", "checkouts_update")
    assert started.properties["cart_id"] == "0123456789abcdef0456456789abcdef"
    done = shopify.map_webhook(
        "checkouts/update", {**load_event("shopify/checkouts_update"), "completed_at": "x"}
    )
    assert "Checkout Started" not in [c.get("event") for c in done.calls]


def test_checkout_without_any_contact_maps_to_nothing_with_a_reason() -> None:
    payload = {**load_event("shopify/checkouts_create"), "customer": None, "email": None, "phone": None}
    result = shopify.map_webhook("checkouts/create", payload)
    assert result.calls == [] and result.reason and "nobody to remind" in result.reason


@pytest.mark.parametrize("topic", ["orders/create", "orders/paid"])
def test_order_is_order_completed_on_the_checkouts_cart(topic: str) -> None:
    identify, completed = mapped("shopify", topic, "orders_create")
    assert completed.event == "Order Completed"
    assert completed.user_id == "207119551" and completed.anonymous_id == "shopify-order-450789469"
    p = completed.properties
    assert (p["order_id"], p["total"], p["currency"]) == ("450789469", 248.0, "USD")
    assert p["cart_id"] == "0123456789abcdef0456456789abcdef"  # ends the checkout's reminders
    assert len(p["products"]) == 2


def test_cancelled_order_is_order_cancelled() -> None:
    *_, cancelled = mapped("shopify", "orders/cancelled", "orders_cancelled")
    assert cancelled.event == "Order Cancelled"
    assert cancelled.properties == {"order_id": "450789469", "reason": "customer"}


def test_refund_is_order_refunded_through_the_orders_alias() -> None:
    [refunded] = mapped("shopify", "refunds/create", "refunds_create")
    assert refunded.event == "Order Refunded"
    assert refunded.user_id is None and refunded.anonymous_id == "shopify-order-450789469"
    assert refunded.properties == {"order_id": "450789469", "total": 199.0, "currency": "USD"}


def test_new_customer_gives_traits_consent_per_channel_with_source_and_time_and_signed_up() -> None:
    identify, email, sms, signed_up = mapped("shopify", "customers/create", "customers_create")
    assert identify.traits == {
        "email": "new.customer@mail.example.com",
        "phone": "+447911123456",
        "first_name": "Nia",
        "last_name": "Newman",
    }
    assert email.event == sms.event == "Consent Updated"
    assert email.properties["consent"] == {"email": "subscribed"}
    assert email.properties["consent_at"] == "2026-11-25T12:00:00-05:00"
    assert "confirmed_opt_in" in email.properties["consent_text"]
    assert sms.properties["consent"] == {"sms": "subscribed"}
    assert sms.properties["consent_source"] == "shopify:sms_marketing_consent:shopify"
    assert signed_up.event == "Signed Up"


def test_customer_update_carries_an_unsubscribe_and_starts_no_welcome() -> None:
    events = mapped("shopify", "customers/update", "customers_update")
    assert names(events) == ["identify", "Consent Updated", "Consent Updated"]
    assert events[1].properties["consent"] == {"email": "unsubscribed"}


def test_not_subscribed_gives_no_consent_call() -> None:
    events = mapped("shopify", "orders/create", "orders_create")  # sms consent not_subscribed there
    assert "Consent Updated" not in names(events)


def test_product_update_is_back_in_stock_for_stocked_variants_and_price_dropped_for_markdowns() -> None:
    events = mapped("shopify", "products/update", "products_update")
    assert names(events) == ["Back In Stock", "Price Dropped", "Product Updated"]
    back, dropped, _ = events
    assert back.properties["sku"] == "IPOD2008PINK" and back.properties["stock"] == 10
    assert back.properties["inventory_item_id"] == "39072856"  # beside its sku: the fold learns the pair
    assert (dropped.properties["price"], dropped.properties["compare_at_price"]) == ("199.00", "229.00")


def test_product_update_lists_every_variants_inventory_item_with_its_sku() -> None:
    *_, listed = mapped("shopify", "products/update", "products_update")
    # the out-of-stock variant too: that is the one a customer waits on
    assert listed.properties["variants"] == [
        {"sku": "IPOD2008PINK", "inventory_item_id": "39072856"},
        {"sku": "IPOD2008RED", "inventory_item_id": "457924702"},
    ]
    assert route.inventory_items(listed) == {"39072856": "IPOD2008PINK", "457924702": "IPOD2008RED"}
    assert route.is_store_level(listed)


def test_inventory_level_with_stock_is_back_in_stock_for_the_inventory_item_alone() -> None:
    [back] = mapped("shopify", "inventory_levels/update", "inventory_levels_update")
    assert back.event == "Back In Stock" and back.properties["inventory_item_id"] == "457924702"
    assert "sku" not in back.properties and "product_id" not in back.properties  # no invented sku
    assert route.unresolved_inventory_item(back) == "457924702"
    resolved = route.resolved_back_in_stock(back, "IPOD2008RED")
    assert resolved.properties["sku"] == "IPOD2008RED" and resolved.message_id == back.message_id + "-sku"
    assert route.unresolved_inventory_item(resolved) is None  # announced once, not resolved again
    empty = shopify.map_webhook("inventory_levels/update", {"inventory_item_id": 1, "available": 0})
    assert empty.calls == []


def test_back_in_stock_without_any_identifier_is_refused() -> None:
    _, errors = normalise(
        [{"type": "track", "event": "Back In Stock", "anonymousId": "x", "messageId": "m", "properties": {}}],
        "shop-1",
        AT,
    )
    assert errors and "inventory_item_id" in str(errors)


def test_unknown_topic_is_flagged_as_unknown() -> None:
    result = shopify.map_webhook("shop/update", load_event("shopify/shop_update"))
    assert not result.known_topic and result.calls == []


# --- WooCommerce ----------------------------------------------------------------------------------


def test_pending_order_is_an_unfinished_checkout_with_its_payment_link() -> None:
    identify, started = mapped("woocommerce", "order.created", "order_created")
    guest = "guest-" + email_key("john.doe@example.com")
    assert identify.user_id == started.user_id == guest
    assert "phone" not in identify.traits  # "(555) 555-5555" has no country: left out, not an error
    assert started.event == "Checkout Started"
    assert started.properties["cart_id"] == "woocommerce-order-727"
    assert started.properties["recovery_url"].startswith("https://example.com/checkout/order-pay/727/")
    assert started.timestamp == "2026-11-25T19:28:02Z"


@pytest.mark.parametrize(
    ("sample", "event", "properties"),
    [
        ("order_updated_paid", "Order Completed", {"order_id": "727", "total": 29.35}),
        ("order_updated_cancelled", "Order Cancelled", {"order_id": "727"}),
        ("order_updated_refunded", "Order Refunded", {"order_id": "727", "total": 29.35}),
    ],
)
def test_order_updates_by_status(sample: str, event: str, properties: dict[str, Any]) -> None:
    *_, last = mapped("woocommerce", "order.updated", sample)
    assert last.event == event
    assert {k: last.properties[k] for k in properties} == properties
    assert last.anonymous_id == "woocommerce-order-727"


def test_paid_order_ends_the_unfinished_checkouts_cart() -> None:
    *_, completed = mapped("woocommerce", "order.updated", "order_updated_paid")
    assert completed.properties["cart_id"] == "woocommerce-order-727"


def test_customer_created_and_updated() -> None:
    identify, signed_up = mapped("woocommerce", "customer.created", "customer_created")
    assert identify.user_id == "25" and identify.traits["phone"] == "+14155550123"
    assert signed_up.event == "Signed Up"
    [updated] = mapped("woocommerce", "customer.updated", "customer_updated")
    assert updated.traits["first_name"] == "Johnny"


def test_product_updated_in_stock_and_on_sale() -> None:
    back, dropped = mapped("woocommerce", "product.updated", "product_updated")
    assert back.event == "Back In Stock" and back.properties["sku"] == "PQ-19"
    assert dropped.event == "Price Dropped" and dropped.properties["price"] == "17.99"


def test_woocommerce_unknown_topic() -> None:
    assert not woocommerce.map_webhook("coupon.created", load_event("woocommerce/coupon_created")).known_topic
