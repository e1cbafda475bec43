"""Browser (web) push subscriptions: what a `Web Push Subscribed` call may carry, and how the profile
keeps them.

A subscription is what the browser's `PushManager.subscribe()` returns: the push service's endpoint
URL and the keys the message is encrypted to (RFC 8291: `p256dh`, the browser's P-256 public key,
65 bytes uncompressed; `auth`, a 16-byte secret). Both are checked at the edge so a bad one is a
clear 400 naming the field, never a failed send weeks later. The profile keeps at most
MAX_BROWSERS subscriptions (one per browser the customer allowed), the oldest dropped first; each
is keyed by a hash of its endpoint, so re-subscribing is idempotent and an endpoint (which
addresses one browser) is never a DynamoDB map key.

Granting the browser's notification permission on the store's site is the customer's opt-in: the
subscribe call records `consent.webpush` with its proof (when, which call, where, the wording).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_BROWSERS = 10  # per profile; the oldest subscription goes first
MAX_ENDPOINT_LENGTH = 2048
P256DH_BYTES = 65  # an uncompressed P-256 point: 0x04 || X || Y
AUTH_BYTES = 16
WEBPUSH_CONSENT_SOURCE = "browser-permission"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def subscription_key(endpoint: str) -> str:
    """A subscription's key on the profile: a short hash of its endpoint."""
    return hashlib.sha256(endpoint.encode()).hexdigest()[:24]


def _b64url_bytes(value: str, size: int, what: str) -> str:
    if not _B64URL.match(value):
        raise ValueError(f"{what} must be base64url (A-Z a-z 0-9 - _), as PushSubscription.toJSON() gives it")
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not valid base64url") from exc
    if len(raw) != size:
        raise ValueError(f"{what} must decode to {size} bytes, got {len(raw)}")
    return value.rstrip("=")


def check_endpoint(value: str) -> str:
    """A push service endpoint: https, a host, no credentials, no spaces, bounded."""
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise ValueError(f"must be at most {MAX_ENDPOINT_LENGTH} characters")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain spaces")
    parts = urlsplit(value)
    if parts.scheme != "https":
        raise ValueError("must be an https:// URL (push services are reached over TLS only, RFC 8030)")
    if not parts.hostname or parts.username or parts.password:
        raise ValueError("must name a host and carry no user name or password")
    return value


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    p256dh: str = Field(max_length=200, description="the browser's P-256 public key, base64url, 65 bytes")
    auth: str = Field(max_length=100, description="the browser's auth secret, base64url, 16 bytes")

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, v: str) -> str:
        v = _b64url_bytes(v, P256DH_BYTES, "p256dh")
        if base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))[0] != 4:
            raise ValueError("p256dh must be an uncompressed P-256 point (first byte 0x04)")
        return v

    @field_validator("auth")
    @classmethod
    def _auth(cls, v: str) -> str:
        return _b64url_bytes(v, AUTH_BYTES, "auth")


class WebPushSubscribedProperties(BaseModel):
    """`Web Push Subscribed`: the browser's PushSubscription.toJSON(), plus where it was given."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, populate_by_name=True)

    endpoint: str = Field(description="the push service URL, https only")
    keys: SubscriptionKeys
    # PushSubscription.expirationTime: epoch milliseconds, or null (most browsers)
    expiration_time: float | None = Field(default=None, ge=0, alias="expirationTime")
    user_agent: str | None = Field(default=None, max_length=512)
    browser: str | None = Field(default=None, max_length=60, description="a label, e.g. Firefox on Android")
    consent_text: str | None = Field(default=None, max_length=2000)  # the prompt shown before asking
    consent_source: str | None = Field(default=None, max_length=200)  # e.g. the page it was asked on

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        return check_endpoint(v)

    @field_validator("consent_source")
    @classmethod
    def _not_reserved(cls, v: str | None) -> str | None:
        from shared.domain.events import RESERVED_SOURCE_PREFIX

        if v and v.lower().startswith(RESERVED_SOURCE_PREFIX):
            raise ValueError(f"sources starting with '{RESERVED_SOURCE_PREFIX}' are reserved")
        return v


class WebPushUnsubscribedProperties(BaseModel):
    """`Web Push Unsubscribed`: the browser withdrew it (or the push service said it is gone)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    endpoint: str
    reason: str | None = Field(default=None, max_length=200)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        return check_endpoint(v)


def browser_label(user_agent: str | None) -> str:
    """ "Chrome on Android", "Safari on macOS"...: enough to tell a customer's browsers apart, and
    all the profile keeps of the user agent (a full one narrows who the customer is)."""
    ua = user_agent or ""
    name = next(
        (
            label
            for token, label in (
                ("Edg/", "Edge"),
                ("OPR/", "Opera"),
                ("SamsungBrowser", "Samsung Internet"),
                ("Firefox/", "Firefox"),
                ("Chrome/", "Chrome"),
                ("Chromium/", "Chromium"),
                ("Safari/", "Safari"),
            )
            if token in ua
        ),
        "Browser",
    )
    system = next(
        (
            label
            for token, label in (
                ("Android", "Android"),
                ("iPhone", "iOS"),
                ("iPad", "iPadOS"),
                ("Mac OS X", "macOS"),
                ("Windows", "Windows"),
                ("CrOS", "ChromeOS"),
                ("Linux", "Linux"),
            )
            if token in ua
        ),
        None,
    )
    return f"{name} on {system}" if system else name


class BrowserSubscription(BaseModel):
    """One browser's push subscription as the profile keeps it."""

    endpoint: str
    p256dh: str
    auth: str
    browser: str
    at: float  # when it was subscribed (receive time)
    expires_at: float | None = None  # the browser's own expirationTime (epoch seconds), if it gave one

    def subscription_info(self) -> dict[str, Any]:
        """The shape pywebpush (and the Push API's toJSON) use."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def subscribe(
    held: dict[str, BrowserSubscription], removed: dict[str, float], p: dict[str, Any], at: float
) -> bool:
    """Fold a `Web Push Subscribed`'s properties into the held subscriptions (in place). False when a
    later unsubscribe (or a push service's 410) already removed this endpoint."""
    key = subscription_key(p["endpoint"])
    if removed.get(key, float("-inf")) >= at:
        return False
    current = held.get(key)
    if current is None or current.at <= at:
        expiry = p.get("expiration_time", p.get("expirationTime"))
        held[key] = BrowserSubscription(
            endpoint=p["endpoint"],
            p256dh=p["keys"]["p256dh"],
            auth=p["keys"]["auth"],
            browser=p.get("browser") or browser_label(p.get("user_agent")),
            at=at,
            expires_at=float(expiry) / 1000 if expiry else None,
        )
    if len(held) > MAX_BROWSERS:
        newest = sorted(held.items(), key=lambda kv: kv[1].at)[-MAX_BROWSERS:]
        held.clear()
        held.update(newest)
    return True


def unsubscribe(
    held: dict[str, BrowserSubscription], removed: dict[str, float], endpoint: str, at: float
) -> None:
    """Remove one subscription; the removal time stays so a late subscribe cannot bring it back."""
    key = subscription_key(endpoint)
    current = held.get(key)
    if current is not None and current.at <= at:
        del held[key]
    removed[key] = max(at, removed.get(key, at))
    for stale in sorted(removed, key=removed.__getitem__)[:-MAX_REMOVED]:
        del removed[stale]  # bounded: a subscribe arriving later than the newest removals is not expected


# Removal times kept per profile (the oldest dropped first): the late-event guard stays bounded.
MAX_REMOVED = 10


def live(held: dict[str, BrowserSubscription], now: float) -> list[BrowserSubscription]:
    """The subscriptions a message may go to: those the browser has not said expired; newest first."""
    return sorted(
        (s for s in held.values() if s.expires_at is None or s.expires_at > now), key=lambda s: -s.at
    )


def consent_fields(p: dict[str, Any], browser: str) -> dict[str, Any]:
    """The subscribe call as a consent choice: the browser permission is the opt-in, with proof."""
    return {
        "consent": {"webpush": "subscribed"},
        "consent_source": p.get("consent_source") or WEBPUSH_CONSENT_SOURCE,
        "consent_text": p.get("consent_text") or f"Allowed notifications from the store in {browser}",
    }


# RFC 8030 §7.2: a push service must accept 4096 bytes of body; aes128gcm adds an 86-byte header
# (salt, record size, key id = the sender's public key), a 16-byte tag and a 1-byte delimiter.
MAX_PAYLOAD_BYTES = 4096 - 86 - 16 - 1


def notification_payload(
    title: str,
    body: str,
    link: str | None,
    icon: str | None,
    image: str | None,
    data: dict[str, str],
) -> bytes:
    """What boomerang-sw.js reads from the push message (JSON, UTF-8); ValueError over the limit."""
    import json

    payload = {"title": title, "body": body, "url": link, "icon": icon, "image": image, "data": data}
    raw = json.dumps(
        {k: v for k, v in payload.items() if v}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"web push notification is {len(raw)} bytes; push services take at most {MAX_PAYLOAD_BYTES} "
            "after encryption overhead: shorten the title or body"
        )
    return raw
