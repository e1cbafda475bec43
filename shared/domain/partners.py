"""Fulfilment partners (dropshipping suppliers, 3PLs) as data, and the rules of forwarding orders.

A store describes each partner in ``partners/<store>/<id>.yaml`` (schema: `Partner`): which of an
order's line items are the partner's, where and how to send them, and how to sign them. This module
is pure: splitting an order by partner, the order JSON Boomerang sends, the HMAC signature both
directions use, the retry schedule, and what a partner's HTTP answer means. The HTTP call and the
records live in shared/adapters/partner_http.py and fulfilment_store.py; the use case in
shared/services/partners/.

Secrets never live in the file (the bucket is readable by marketers and versioned forever): API
keys, Basic passwords, OAuth client secrets and the signing secret are in one Secrets Manager secret
per partner, ``boomerang/partners/<store>/<partner>``, set with ``boomerang partners secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
SECRET_PREFIX = "boomerang/partners/"
ORDER_FORMAT_VERSION = 1
# Headers of every forwarded request (README "Fulfilment partners" documents them for partners).
IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMESTAMP_HEADER = "X-Boomerang-Timestamp"
SIGNATURE_HEADER = "X-Boomerang-Signature"
# A signed request older or newer than this (wall clock) is refused: a captured request cannot be
# replayed later, and clocks may disagree by a few minutes.
REPLAY_WINDOW_SECONDS = 300
# Retries: back off from 30 s to every 2 h, for 24 h after the first attempt; then the DLQ.
RETRY_DELAYS = (30, 60, 120, 300, 600, 1200, 2400, 3600)
RETRY_EVERY = 7200
RETRY_FOR_SECONDS = 24 * 3600
SECRET_FIELDS = ("api_key", "password", "client_secret", "signing_secret", "secret", "token")
Action = Literal["create", "cancel"]


def secret_name(store_id: str, partner_id: str) -> str:
    return f"{SECRET_PREFIX}{store_id}/{partner_id}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Match(_Strict):
    """A line item is the partner's when any of these holds (a store ships the rest itself)."""

    skus: list[str] = Field(default_factory=list)
    sku_prefixes: list[str] = Field(default_factory=list)
    vendors: list[str] = Field(default_factory=list)  # the product's `vendor` (or `brand`)
    tags: list[str] = Field(default_factory=list)  # any of the product's `tags`

    @model_validator(mode="after")
    def _something(self) -> Match:
        if not (self.skus or self.sku_prefixes or self.vendors or self.tags):
            raise ValueError("give at least one of skus, sku_prefixes, vendors, tags")
        return self

    def matches(self, item: dict[str, Any]) -> bool:
        sku = str(item.get("sku") or "")
        vendor = str(item.get("vendor") or item.get("brand") or "").casefold()
        tags = item.get("tags") or []
        tags = {str(t).casefold() for t in (tags if isinstance(tags, list) else str(tags).split(","))}
        return bool(
            (sku and sku in self.skus)
            or (sku and any(sku.startswith(p) for p in self.sku_prefixes))
            or (vendor and vendor in {v.casefold() for v in self.vendors})
            or (tags & {t.casefold() for t in self.tags})
        )


class Auth(_Strict):
    """How Boomerang authenticates to the partner; the secret values are in Secrets Manager."""

    type: Literal["none", "api_key", "basic", "oauth_client_credentials"] = "none"
    header: str = "X-Api-Key"  # api_key: the header carrying the secret's `api_key`
    username: str | None = None  # basic: the user; the secret holds `password`
    token_url: str | None = None  # oauth: the token endpoint; the secret holds `client_secret`
    client_id: str | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        if self.type == "basic" and not self.username:
            raise ValueError("basic auth needs username (the password goes in the partner's secret)")
        if self.type == "oauth_client_credentials" and not (self.token_url and self.client_id):
            raise ValueError("oauth_client_credentials needs token_url and client_id")
        if self.token_url:
            _https_url(self.token_url)
        return self

    def secret_keys(self) -> tuple[str, ...]:
        """What the partner's secret must hold for this auth (besides `signing_secret`)."""
        return {"none": (), "api_key": ("api_key",), "basic": ("password",)}.get(
            self.type, ("client_secret",)
        )


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")  # loopback partners in tests and demos
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError(f"{value!r}: the endpoint must be an https:// URL")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    return value


class Endpoint(_Strict):
    orders: str  # POST: a new order (the partner's part of it)
    cancels: str | None = None  # POST: a cancellation; default the orders URL with action "cancel"

    @field_validator("orders", "cancels")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _https_url(v)

    def url(self, action: Action, order_id: str) -> str:
        url = self.cancels if action == "cancel" and self.cancels else self.orders
        return url.replace("{order_id}", order_id)


class Partner(_Strict):
    id: str = Field(pattern=SLUG)
    name: str = ""
    enabled: bool = True
    match: Match
    endpoint: Endpoint
    auth: Auth = Field(default_factory=Auth)
    payload: Literal["boomerang", "template"] = "boomerang"
    # Jinja2 (the message sandbox, no autoescape) rendering a JSON body; gets `order` (the
    # Boomerang order JSON below) and `partner`. Use `| tojson` for values.
    template: str | None = None
    sign: bool = True  # X-Boomerang-Signature with the secret's `signing_secret`
    timeout_seconds: float = Field(default=10, gt=0, le=25)
    # requests per second the partner accepts (orders and cancels together, retries included); None:
    # no limit. Over it, an attempt waits for the next window instead of being made.
    rate_limit_per_second: float | None = Field(default=None, gt=0, le=1000)

    @model_validator(mode="after")
    def _coherent(self) -> Partner:
        if self.payload == "template" and not (self.template or "").strip():
            raise ValueError("payload: template needs a template (a Jinja2 JSON body)")
        if self.payload == "boomerang" and self.template:
            raise ValueError("template is used only with payload: template")
        return self

    def secret_keys(self) -> tuple[str, ...]:
        return (*self.auth.secret_keys(), *(("signing_secret",) if self.sign else ()))


def rate_window(rate_per_second: float, now: float) -> tuple[int, int, float]:
    """A fixed-window limit for `rate_per_second`: (window start, requests allowed in it, seconds
    until the next window). Under 1 request a second the window widens (0.2/s: 1 per 5 s), so a
    limit is never rounded up to more than the partner allows."""
    width = max(1, math.ceil(1 / rate_per_second - 1e-9))
    allowed = max(1, math.floor(rate_per_second * width + 1e-9))
    start = int(now // width * width)
    return start, allowed, start + width - now


class PartnerPart(BaseModel):
    """One partner's share of an order."""

    partner_id: str
    items: list[dict[str, Any]]


def split_order(products: list[dict[str, Any]], partners: list[Partner]) -> list[PartnerPart]:
    """Line items -> the part each partner gets. An item goes to the first partner (by id) that
    matches it, so two partners never ship the same item; unmatched items are the store's own."""
    parts: dict[str, list[dict[str, Any]]] = {}
    ordered = sorted((p for p in partners if p.enabled), key=lambda p: p.id)
    for item in products:
        if not isinstance(item, dict):
            continue
        owner = next((p for p in ordered if p.match.matches(item)), None)
        if owner is not None:
            parts.setdefault(owner.id, []).append(item)
    return [PartnerPart(partner_id=pid, items=items) for pid, items in sorted(parts.items())]


ITEM_FIELDS = ("sku", "product_id", "name", "variant", "quantity", "price", "currency", "vendor", "brand")


def order_document(
    *,
    action: Action,
    store_id: str,
    order_id: str,
    partner_id: str,
    items: list[dict[str, Any]],
    properties: dict[str, Any],
    placed_at: str,
) -> dict[str, Any]:
    """Boomerang's order JSON (version 1), documented in the README for partners."""
    return {
        "version": ORDER_FORMAT_VERSION,
        "action": action,
        "idempotency_key": idempotency_key(store_id, order_id, partner_id, action),
        "store_id": store_id,
        "order_id": order_id,
        "partner_id": partner_id,
        "placed_at": placed_at,
        "currency": properties.get("currency"),
        "items": [
            {k: _plain(item.get(k)) for k in ITEM_FIELDS if item.get(k) is not None}
            | {"quantity": int(item.get("quantity") or 1)}
            for item in items
        ],
        # what the partner needs to ship it, exactly as the store sent it on the order
        "shipping_address": properties.get("shipping_address"),
        "shipping_method": properties.get("shipping_method"),
    }


def _plain(v: Any) -> Any:
    return str(v) if isinstance(v, Decimal) else v


def idempotency_key(store_id: str, order_id: str, partner_id: str, action: Action) -> str:
    """Stable per (order, partner, action): every retry and replay carries the same key."""
    raw = json.dumps([store_id, order_id, partner_id, action])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def body_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``: the timestamp is signed with the body, so a
    partner rejects an old request replayed (and we reject a partner's)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str | None, given: str | None, body: bytes, now: float
) -> str | None:
    """None when the request is genuine and fresh; else why not (never which part matched)."""
    if not timestamp or not given:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}"
    try:
        ts = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    if abs(now - ts) > REPLAY_WINDOW_SECONDS:
        return f"{TIMESTAMP_HEADER} is outside the {REPLAY_WINDOW_SECONDS} s window"
    expected = signature(secret, ts, body)
    # constant time: the comparison must not tell a forger how much of the signature was right
    if not any(hmac.compare_digest(expected, part.strip()) for part in given.split(",")):
        return "signature does not match"
    return None


def retry_delay(
    attempt: int, first_attempt_at: float, now: float, retry_after: float | None = None
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when the 24 hours are over."""
    delay = float(RETRY_DELAYS[attempt - 1] if attempt <= len(RETRY_DELAYS) else RETRY_EVERY)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_EVERY))  # the partner asked for more time
    if now + delay > first_attempt_at + RETRY_FOR_SECONDS:
        return None
    return delay


Outcome = Literal["accepted", "retry", "rejected"]


def classify(status: int | None) -> Outcome:
    """A partner's HTTP answer: 2xx (and 409, the idempotency key seen before) accepted; no answer,
    408, 425, 429 and 5xx worth retrying; any other 4xx a refusal retrying cannot change."""
    if status is None or status in (408, 425, 429) or status >= 500:
        return "retry"
    if 200 <= status < 300 or status == 409:
        return "accepted"
    return "rejected"


class Shipment(_Strict):
    """A partner's shipping update (``POST /v1/partners/<store>/<partner>/shipments``)."""

    order_id: str = Field(min_length=1, max_length=200)
    status: Literal["shipped", "delivered"]
    shipment_id: str | None = Field(default=None, min_length=1, max_length=200)
    carrier: str | None = Field(default=None, max_length=100)
    tracking_number: str | None = Field(default=None, max_length=200)
    tracking_url: str | None = Field(default=None, max_length=2048)
    at: str | None = Field(default=None, max_length=40, description="ISO-8601; default: when received")
    items: list[dict[str, Any]] = Field(default_factory=list, max_length=500)

    @field_validator("tracking_url")
    @classmethod
    def _tracking(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("https", "http"):
            raise ValueError("must be an http(s) URL")
        return v

    @field_validator("order_id", "shipment_id", mode="before")
    @classmethod
    def _idish(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    def shipment_key(self, partner_id: str) -> str:
        return self.shipment_id or f"{partner_id}-{self.order_id}"
