"""Single-table key layout. Every item is partitioned by store."""

from __future__ import annotations

import hashlib


def customer_pk(store: str, customer_id: str) -> str:
    return f"STORE#{store}#CUST#{customer_id}"


PROFILE_SK = "PROFILE"


def alias_pk(store: str, kind: str, value: str) -> str:
    return f"STORE#{store}#ALIAS#{kind}#{value}"


ALIAS_SK = "ALIAS"


# Carts are keyed by cart id, not by customer: an anonymous visitor's cart survives the identify
# that merges them into a known customer without moving any item.
def cart_pk(store: str, cart_id: str) -> str:
    return f"STORE#{store}#CART#{cart_id}"


CART_SK = "CART"


def order_pk(store: str, order_id: str) -> str:
    return f"STORE#{store}#ORDER#{order_id}"


ORDER_SK = "ORDER"


def partner_pk(store: str, partner_id: str) -> str:
    """A fulfilment partner's own items (its rate-limit windows)."""
    return f"STORE#{store}#PARTNER#{partner_id}"


def event_pk(store: str, message_id: str) -> str:
    return f"STORE#{store}#EVT#{message_id}"


EVENT_SK = "EVT"


# A journey instance (e.g. one cart's abandonment journey): its state, log and send records live
# together, so exactly-once does not depend on who the customer turns out to be.
def journey_pk(store: str, journey: str, instance: str) -> str:
    return f"STORE#{store}#JOURNEY#{journey}#{instance}"


def send_sk(step_id: str) -> str:
    return f"SEND#{step_id}"


def log_sk(at_iso: str, seq: str) -> str:
    return f"LOG#{at_iso}#{seq}"


# What SES reported about one email (delivered/opened/clicked), keyed by SES's message id.
def message_pk(store: str, message_id: str) -> str:
    return f"STORE#{store}#MSG#{message_id}"


MESSAGE_ENGAGEMENT_SK = "ENGAGE"


def store_pk(store: str) -> str:
    return f"STORE#{store}"


STORE_SK = "STORE"


# A Shopify inventory item's SKU, learnt from products/update: inventory_levels/update names only the item.
def inventory_item_pk(store: str, inventory_item_id: str) -> str:
    return f"STORE#{store}#INVITEM#{inventory_item_id}"


INVENTORY_ITEM_SK = "INVITEM"


def api_key_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


API_KEY_SK = "APIKEY"


def hash_api_key(api_key: str) -> str:
    # Write keys are high-entropy random strings, so a plain SHA-256 is enough to keep them
    # unusable if the table leaks (no need for a slow password hash on every request).
    return hashlib.sha256(api_key.encode()).hexdigest()


def user_customer_id(user_id: str) -> str:
    return f"u:{user_id}"


def anon_customer_id(anonymous_id: str) -> str:
    return f"a:{anonymous_id}"


# -- erasure (GDPR Art. 17) -----------------------------------------------------------------------
# What remains of an erased customer: one item per identifier (user id, anonymous id, email, phone)
# keyed by a SHA-256 of the normalised identifier, holding only when the erasure happened. Events
# received before that time (in flight, or replayed from the bus archive) are dropped by the fold.
ERASED_KINDS = ("user", "anon", "email", "phone")
ERASED_SK = "ERASED"


def normalise_identifier(kind: str, value: str) -> str:
    """Emails compare case-insensitively; phone numbers without stray spaces (E.164 already)."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind in ("phone", "sms"):
        return "".join(value.split())
    return value


def identifier_hash(kind: str, value: str) -> str:
    return hashlib.sha256(normalise_identifier(kind, value).encode("utf-8")).hexdigest()


def erased_pk(store: str, kind: str, value: str) -> str:
    if kind not in ERASED_KINDS:
        raise ValueError(f"unknown identifier kind {kind!r}; one of {', '.join(ERASED_KINDS)}")
    return f"STORE#{store}#ERASED#{kind}#{identifier_hash(kind, value)}"
