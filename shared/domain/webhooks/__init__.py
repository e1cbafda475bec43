"""Store platforms' webhooks (Shopify, WooCommerce): signatures, and topics mapped to the event API's calls.

Pure: a platform's payload becomes the same Segment-style calls a storefront would send, which
then pass the event API's own validation (shared/domain/api_calls.py) — one vocabulary, one check.
Each call's messageId derives from the platform's delivery id, so a redelivered webhook is
deduplicated by the profile fold's exactly-once marker like any retried call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PLATFORMS = ("shopify", "woocommerce")
MAX_SECRET_LENGTH = 512


def signature(secret: str, body: bytes) -> str:
    """What both platforms send: base64 of HMAC-SHA256 over the raw body, keyed by the secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_ok(secret: str, body: bytes, sent: str | None) -> bool:
    # constant time: a timing difference would let an attacker guess the signature byte by byte
    return bool(sent) and hmac.compare_digest(signature(secret, body).encode(), (sent or "").strip().encode())


@dataclass
class Mapped:
    """What one webhook becomes: calls for the event API, or why it maps to none."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    known_topic: bool = True
    reason: str | None = None  # why a known topic gave no calls (e.g. no way to reach the customer)


Mapper = Callable[[str, Any, str], Mapped]


def text(value: Any) -> str | None:
    """Ids come as numbers from both platforms; the event API keeps them as text."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    return str(value)


def money(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def email_key(email: str) -> str:
    """A guest's anonymous id: the same email on two guest checkouts is one visitor."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]


def number(calls: list[dict[str, Any]], platform: str, delivery_id: str) -> list[dict[str, Any]]:
    """messageIds from the delivery id: the platform's retry of this webhook makes the same ids."""
    return [{**c, "messageId": f"{platform}:{delivery_id}:{n}"} for n, c in enumerate(calls)]


def clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}


def international(phone: Any) -> str | None:
    """A phone number only if it is a valid international one: a local one ("(555) 555-5555") has no
    country to dial, and would make the whole identify call (the customer's email too) invalid."""
    from shared.domain.contacts import normalise_phone

    if not isinstance(phone, str) or not phone.strip().startswith("+"):
        return None
    try:
        return normalise_phone(phone)
    except ValueError:
        return None


def utc(value: Any) -> str | None:
    """WooCommerce's *_gmt dates carry no offset: they are UTC."""
    return f"{value}Z" if isinstance(value, str) and value and value[-1].isdigit() else None
