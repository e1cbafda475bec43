"""The customer profile: everything Boomerang knows about one customer of one store.

Only the model and what it answers about itself (may we email them?); the rules that fold events
into it are in shared/domain/fold.py, loyalty.py, retention.py and orders.py. Timestamps are
Boomerang's receive time (epoch seconds): client clocks drift, so ordering uses the server's clock.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from shared.domain import birthdays
from shared.domain.webpush import BrowserSubscription

DAY_S = 86400


def as_decimal(v: Any) -> Decimal | None:
    """A price from an event's JSON (a float there) as an exact Decimal, through its text."""
    return None if v is None else Decimal(str(v))


class Consent(BaseModel):
    status: str  # subscribed | unsubscribed | pending (email double opt-in awaiting the click)
    at: float
    source: str | None = None
    text: str | None = None
    message_id: str | None = None  # the call that carried it: proof of when and how (GDPR Art. 7)
    url: str | None = None  # the page it was given on (a signup form)


class ConsentChange(BaseModel):
    """One consent choice as it was received, kept even after a later one replaces it: the proof
    (GDPR Art. 7) of what the customer agreed to or withdrew, when, where and with which wording."""

    channel: str | None = None  # email | sms | push
    category: str | None = None  # reminders | offers | news (per-category choices)
    status: str
    at: float
    source: str | None = None
    text: str | None = None
    message_id: str | None = None
    url: str | None = None


# Consent changes kept per profile, oldest dropped first: a customer changes their mind a few times
# a year at most, so 50 covers years of proof while the profile item stays small.
MAX_CONSENT_HISTORY = 50


class Device(BaseModel):
    token: str
    platform: str  # APNS | APNS_SANDBOX | GCM
    at: float  # when it was registered (receive time)


def device_key(token: str) -> str:
    """A device's key on the profile: a short hash, so a push token is never a DynamoDB map key."""
    return hashlib.sha256(token.encode()).hexdigest()[:24]


class Orders(BaseModel):
    count: int = 0
    revenue: Decimal = Decimal(0)
    currency: str | None = None
    first_order_at: float | None = None
    last_order_at: float | None = None
    cancelled_count: int = 0
    refunded: Decimal = Decimal(0)


class Rfm(BaseModel):
    """Recency, frequency and monetary scores (1..5) against the store's quintile edges, and the
    named group R and F put the customer in (shared/domain/rfm.py)."""

    r: int
    f: int
    m: int
    group: str
    scored_at: float
    edges_at: float  # when the store's edges used were computed


class Loyalty(BaseModel):
    points: int = 0
    tier: str | None = None  # None until the first order is folded
    tier_reached_at: float | None = None  # when the current tier was reached (up or down)


class ViewedProduct(BaseModel):
    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    image_url: str | None = None
    url: str | None = None
    at: float  # receive time of the newest view

    @property
    def key(self) -> str:
        return str(self.sku or self.product_id)


class Profile(BaseModel):
    store_id: str
    customer_id: str
    user_id: str | None = None
    anonymous_ids: list[str] = Field(default_factory=list)
    email: str | None = None
    phone: str | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    updated: dict[str, float] = Field(default_factory=dict)  # field -> receive time of its value
    consent: dict[str, Consent] = Field(default_factory=dict)
    categories: dict[str, Consent] = Field(default_factory=dict)  # per message category (offers, ...)
    consent_history: list[ConsentChange] = Field(default_factory=list)  # oldest first, bounded
    devices: dict[str, Device] = Field(default_factory=dict)  # push tokens by device_key
    removed_devices: dict[str, float] = Field(default_factory=dict)  # device_key -> when (late events)
    # browser push subscriptions by subscription_key (shared/domain/webpush.py), at most MAX_BROWSERS
    webpush: dict[str, BrowserSubscription] = Field(default_factory=dict)
    removed_webpush: dict[str, float] = Field(default_factory=dict)  # subscription_key -> when
    open_cart_id: str | None = None
    orders: Orders = Field(default_factory=Orders)
    # canonical track event name -> receive time of its latest occurrence (journey exits, activity)
    last_event_at: dict[str, float] = Field(default_factory=dict)
    viewed: list[ViewedProduct] = Field(default_factory=list)  # newest first, at most MAX_VIEWED
    loyalty: Loyalty = Field(default_factory=Loyalty)
    # retention: the customer's own average days between orders (2+ orders), and the UTC day
    # ("YYYY-MM-DD") they become at risk if they do not order again
    expected_interval_days: float | None = None
    at_risk_on: str | None = None
    first_seen_at: float | None = None
    last_seen_at: float | None = None
    merged_into: str | None = None
    # segments (shared/domain/segments.py): scores, stage and memberships as of segments_at; the daily run
    # re-checks the profile on the UTC day of segments_due (time alone changes something then)
    rfm: Rfm | None = None
    lifecycle: str | None = None
    segments: list[str] = Field(default_factory=list)
    segments_at: float | None = None
    segments_due: float | None = None
    # the messageId of the event the latest fold wrote: a redelivery that finds its own id here was
    # folded already (its processed-event marker may not be written yet; ProfileStore._apply_profile_only)
    last_message_id: str | None = None
    version: int = 0

    @property
    def birthday_month_day(self) -> str | None:
        """The month-day ("MM-DD") of the birthday trait, or None."""
        value = self.traits.get("birthday")
        return birthdays.birthday_month_day(value) if isinstance(value, str) else None

    def can_email(self) -> tuple[bool, str]:
        """Marketing email needs an address and a standing 'subscribed' consent."""
        if not self.email:
            return False, "no email address"
        consent = self.consent.get("email")
        if consent is None:
            return False, "no email consent"
        if consent.status == "pending":
            return False, "email consent awaiting confirmation"
        if consent.status != "subscribed":
            return False, "email consent withdrawn"
        return True, "ok"
