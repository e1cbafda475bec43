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
