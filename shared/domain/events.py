"""The event API's input models (Segment-compatible) and Boomerang's canonical event.

A storefront call is validated here once, at the edge; everything downstream (bus, queues,
profile, journeys) reads the canonical event, never the raw call.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EVENT_SOURCE = "boomerang.ingest"

MAX_CALLS_PER_BATCH = 100
MAX_BODY_BYTES = 500 * 1024
MAX_CALL_BYTES = 32 * 1024  # Segment's per-call limit; keeps every bus entry far below 256 KB

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")

# Segment E-commerce v2 names Boomerang understands (others are accepted and archived).
PRODUCT_ADDED = "Product Added"
PRODUCT_REMOVED = "Product Removed"
CART_VIEWED = "Cart Viewed"
CHECKOUT_STARTED = "Checkout Started"
ORDER_COMPLETED = "Order Completed"
ORDER_CANCELLED = "Order Cancelled"
ORDER_REFUNDED = "Order Refunded"
CONSENT_UPDATED = "Consent Updated"
DEVICE_REGISTERED = "Device Registered"
DEVICE_UNREGISTERED = "Device Unregistered"
PRODUCT_VIEWED = "Product Viewed"
SIGNED_UP = "Signed Up"
BACK_IN_STOCK_SUBSCRIBED = "Back In Stock Subscribed"  # a customer asks to hear when a SKU is back
BACK_IN_STOCK = "Back In Stock"  # sent by the store's backend for a SKU, not about one customer
LOYALTY_TIER_REACHED = "Loyalty Tier Reached"  # made by Boomerang's profile fold only
# Events only Boomerang itself may put on the bus: ingest refuses them from a store.
RESERVED_EVENTS = (LOYALTY_TIER_REACHED,)
KNOWN_EVENTS = (
    "Products Searched",
    "Product List Viewed",
    "Product Clicked",
    PRODUCT_VIEWED,
    PRODUCT_ADDED,
    PRODUCT_REMOVED,
    CART_VIEWED,
    CHECKOUT_STARTED,
    "Checkout Step Viewed",
    "Checkout Step Completed",
    "Payment Info Entered",
    ORDER_COMPLETED,
    "Order Updated",
    ORDER_REFUNDED,
    ORDER_CANCELLED,
    "Coupon Entered",
    "Coupon Applied",
    "Coupon Denied",
    "Coupon Removed",
    "Product Added to Wishlist",
    "Product Shared",
    "Cart Shared",
    "Product Reviewed",
    SIGNED_UP,
    BACK_IN_STOCK_SUBSCRIBED,
    BACK_IN_STOCK,
    LOYALTY_TIER_REACHED,
    CONSENT_UPDATED,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
)
_CANONICAL_NAMES = {re.sub(r"[\s_\-]+", " ", n).strip().lower(): n for n in KNOWN_EVENTS}

# Cart events route to the journey queue (see infra/description.py RULES).
JOURNEY_TRIGGER_EVENTS = (PRODUCT_ADDED, CHECKOUT_STARTED)

CHANNELS = ("email", "sms", "push")
RESERVED_SOURCE_PREFIX = "boomerang:"
DOUBLE_OPT_IN_SOURCE = "boomerang:double-opt-in"
CONSENT_STATES = ("subscribed", "unsubscribed")


BIRTHDAY_FORMAT = "must be a date like 1990-04-23, or a month and day like 04-23 (or --04-23)"


def parse_birthday(value: str) -> str:
    """A birthday as "YYYY-MM-DD" or "MM-DD" (vCard's "--MM-DD" becomes "MM-DD"); ValueError otherwise.

    A month-day is checked against a leap year, so "02-29" is a birthday.
    """
    from datetime import date

    v = value.strip()
    m = re.fullmatch(r"(?:(\d{4})-|--)?(\d{2})-(\d{2})", v)
    if not m:
        raise ValueError(BIRTHDAY_FORMAT)
    year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
    try:
        date(int(year) if year else 2000, month, day)
    except ValueError as exc:
        raise ValueError(BIRTHDAY_FORMAT) from exc
    if year and int(year) < 1900:
        raise ValueError(BIRTHDAY_FORMAT)
    return f"{year}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


def birthday_month_day(birthday: str | None) -> str | None:
    """The month-day ("MM-DD") of a stored birthday, or None."""
    return birthday[-5:] if birthday else None


def canonical_event_name(name: str) -> str:
    """'product_added', 'product added' and 'Product Added' are the same Segment event."""
    key = re.sub(r"[\s_\-]+", " ", name).strip().lower()
    return _CANONICAL_NAMES.get(key, name.strip())


# ---------------------------------------------------------------------------------------------
# Input models: what a storefront may send. Unknown fields are accepted (Segment clients send many).


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


Money = Decimal


class Product(_Open):
    product_id: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)
    price: Money | None = Field(default=None, ge=0, le=Decimal("10000000"))
    quantity: int = Field(default=1, ge=0, le=100000)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    image_url: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048)
    cart_id: str | None = Field(default=None, max_length=200)

    @field_validator("product_id", "sku", "cart_id", mode="before")
    @classmethod
    def _idish(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @field_validator("image_url", "url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and v and not re.match(r"^https?://", v, re.I):
            raise ValueError("must be an absolute http(s) URL")
        return v

    @model_validator(mode="after")
    def _identified(self) -> Product:
        if not (self.product_id or self.sku):
            raise ValueError("a product needs product_id or sku")
        return self


class CartProperties(_Open):
    """Product Added / Product Removed: one product, plus the cart it belongs to."""

    cart_id: str | None = Field(default=None, max_length=200)
    product_id: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)
    price: Money | None = Field(default=None, ge=0, le=Decimal("10000000"))
    quantity: int | None = Field(default=None, ge=1, le=100000)  # absent on a removal: the whole line
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    image_url: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048)

    _idish = field_validator("product_id", "sku", "cart_id", mode="before")(Product._idish.__func__)  # type: ignore[attr-defined]
    _http_url = field_validator("image_url", "url")(Product._http_url.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _identified(self) -> CartProperties:
        if not (self.product_id or self.sku):
            raise ValueError("product_id or sku is required")
        return self


class ProductProperties(_Open):
    """Product Viewed / Back In Stock Subscribed / Back In Stock: one product, no cart.

    The product's key is its sku, else its product_id: a store must send the same identifier in
    Back In Stock as in the subscriptions it answers.
    """

    product_id: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)
    price: Money | None = Field(default=None, ge=0, le=Decimal("10000000"))
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    image_url: str | None = Field(default=None, max_length=2048)
    url: str | None = Field(default=None, max_length=2048)

    _idish = field_validator("product_id", "sku", mode="before")(Product._idish.__func__)  # type: ignore[attr-defined]
    _http_url = field_validator("image_url", "url")(Product._http_url.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _identified(self) -> ProductProperties:
        if not (self.product_id or self.sku):
            raise ValueError("product_id or sku is required")
        return self


class CartSnapshotProperties(_Open):
    """Cart Viewed / Checkout Started: the whole cart as it is now."""

    cart_id: str | None = Field(default=None, max_length=200)
    checkout_id: str | None = Field(default=None, max_length=200)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    value: Money | None = Field(default=None, ge=0)
    products: list[Product] | None = Field(default=None, max_length=500)


class OrderProperties(_Open):
    order_id: str = Field(min_length=1, max_length=200)
    cart_id: str | None = Field(default=None, max_length=200)
    checkout_id: str | None = Field(default=None, max_length=200)
    total: Money | None = Field(default=None, ge=0)
    revenue: Money | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    products: list[Product] | None = Field(default=None, max_length=500)

    @field_validator("order_id", "cart_id", "checkout_id", mode="before")
    @classmethod
    def _idish(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


class ConsentFields(_Open):
    consent: dict[Literal["email", "sms", "push"], Literal["subscribed", "unsubscribed"]] | None = None
    # per message category (e.g. reminders, offers, news), chosen on the preferences page
    categories: dict[str, Literal["subscribed", "unsubscribed"]] | None = Field(default=None, max_length=20)
    consent_source: str | None = Field(default=None, max_length=200)

    @field_validator("consent_source")
    @classmethod
    def _not_reserved(cls, v: str | None) -> str | None:
        # "boomerang:" sources are written by Boomerang itself (e.g. a confirmed double opt-in)
        if v and v.lower().startswith(RESERVED_SOURCE_PREFIX):
            raise ValueError(f"sources starting with '{RESERVED_SOURCE_PREFIX}' are reserved")
        return v

    consent_text: str | None = Field(default=None, max_length=2000)


def _platform(v: str) -> str:
    from shared.domain.contacts import normalise_platform

    return normalise_platform(v)


class DeviceProperties(_Open):
    """Device Registered / Device Unregistered: a push token for APNs or FCM."""

    token: str = Field(min_length=8, max_length=4096, pattern=r"^[^\s]+$")
    platform: str = Field(description="apns, apns_sandbox or fcm")

    @field_validator("platform")
    @classmethod
    def _known(cls, v: str) -> str:
        try:
            return _platform(v)
        except ValueError as exc:
            raise ValueError("must be apns, apns_sandbox or fcm") from exc


class Traits(ConsentFields):
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    timezone: str | None = Field(default=None, max_length=64)
    birthday: str | None = None  # "YYYY-MM-DD", "MM-DD" or "--MM-DD"; null clears it
    device_token: str | None = Field(default=None, min_length=8, max_length=4096)
    device_platform: str | None = None

    @field_validator("device_platform")
    @classmethod
    def _device_platform(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            return _platform(v)
        except ValueError as exc:
            raise ValueError("must be apns, apns_sandbox or fcm") from exc

    @model_validator(mode="after")
    def _device_pair(self) -> Traits:
        if bool(self.device_token) != bool(self.device_platform):
            raise ValueError("device_token and device_platform go together")
        return self

    @model_validator(mode="before")
    @classmethod
    def _segment_aliases(cls, data: Any) -> Any:
        # Segment's reserved traits are camelCase; accept both spellings.
        if isinstance(data, dict):
            for camel, snake in (("firstName", "first_name"), ("lastName", "last_name")):
                if camel in data and snake not in data:
                    data = {**data, snake: data[camel]}
        return data

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        v = v.strip().lower()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
            raise ValueError("must be an email address like name@example.com")
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        from shared.domain.contacts import normalise_phone

        try:
            return normalise_phone(v)
        except ValueError as exc:
            raise ValueError("must be a valid international number, like +14155550123") from exc

    @field_validator("birthday", mode="before")
    @classmethod
    def _birthday(cls, v: Any) -> str | None:
        if v is None or v == "":
            return None
        if not isinstance(v, str):
            raise ValueError(BIRTHDAY_FORMAT)
        return parse_birthday(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError("must be an IANA time zone such as Europe/Warsaw") from exc
        return v or None


# Traits a store may clear by sending null (the others ignore a null: Segment clients send many).
CLEARABLE_TRAITS = ("birthday",)


_TRACK_PROPERTIES: dict[str, type[_Open]] = {
    PRODUCT_VIEWED: ProductProperties,
    BACK_IN_STOCK_SUBSCRIBED: ProductProperties,
    BACK_IN_STOCK: ProductProperties,
    PRODUCT_ADDED: CartProperties,
    PRODUCT_REMOVED: CartProperties,
    CART_VIEWED: CartSnapshotProperties,
    CHECKOUT_STARTED: CartSnapshotProperties,
    ORDER_COMPLETED: OrderProperties,
    ORDER_CANCELLED: OrderProperties,
    ORDER_REFUNDED: OrderProperties,
    CONSENT_UPDATED: ConsentFields,
    DEVICE_REGISTERED: DeviceProperties,
    DEVICE_UNREGISTERED: DeviceProperties,
}

_ID = r"^[^\x00-\x1f]+$"


class Call(_Open):
    type: Literal["track", "identify", "page", "screen", "group", "alias"]
    messageId: str | None = Field(default=None, min_length=1, max_length=200, pattern=_ID)
    userId: str | None = Field(default=None, min_length=1, max_length=255, pattern=_ID)
    anonymousId: str | None = Field(default=None, min_length=1, max_length=255, pattern=_ID)
    timestamp: str | None = None
    event: str | None = Field(default=None, min_length=1, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("userId", "anonymousId", "messageId", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from datetime import datetime

        try:
            parsed = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("must be an ISO-8601 date-time such as 2026-11-23T10:00:00Z") from exc
        if parsed.tzinfo is None:
            raise ValueError("must include a time zone offset or Z")
        return v

    @field_validator("event")
    @classmethod
    def _not_reserved_event(cls, v: str | None) -> str | None:
        if v is not None and canonical_event_name(v) in RESERVED_EVENTS:
            raise ValueError(
                f"'{canonical_event_name(v)}' is sent by Boomerang itself; a store cannot send it"
            )
        return v

    @model_validator(mode="after")
    def _shape(self) -> Call:
        if not (self.userId or self.anonymousId):
            raise ValueError("userId or anonymousId is required")
        if self.type == "track":
            if not self.event:
                raise ValueError("event is required for a track call")
            self.event = canonical_event_name(self.event)
        return self


class ApiError(BaseModel):
    index: int
    field: str
    message: str


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _errors(index: int, prefix: str, exc: ValidationError) -> list[ApiError]:
    out = []
    for e in exc.errors():
        loc = _loc(tuple(e.get("loc", ())))
        field = ".".join(p for p in (prefix, loc) if p) or "(call)"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "literal_error" and "expected" in (e.get("ctx") or {}):
            msg = f"must be one of {e['ctx']['expected']}"
        out.append(ApiError(index=index, field=field, message=msg))
    return out


# ---------------------------------------------------------------------------------------------
# Canonical event: what flows on the bus.


class CanonicalEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str
    store_id: str
    type: str
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    timestamp: str | None = None  # the client's clock, kept for analytics
    received_at: float  # Boomerang's clock (epoch seconds); journeys time from this
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def cart_id(self) -> str:
        """The cart a cart event belongs to; one default cart per visitor when the store sends none."""
        cid = self.properties.get("cart_id")
        if cid:
            return str(cid)
        who = f"u:{self.user_id}" if self.user_id else f"a:{self.anonymous_id}"
        return "default-" + hashlib.sha256(who.encode()).hexdigest()[:24]


def _plain(value: Any) -> Any:
    """Models to JSON-ready values; money stays exact as a string-free number."""
    return json.loads(json.dumps(value, default=lambda o: float(o) if isinstance(o, Decimal) else str(o)))


def _derived_message_id(store_id: str, raw: dict[str, Any]) -> str:
    # No messageId: derive one from the content, so the same call sent again is still deduplicated.
    body = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "derived-" + hashlib.sha256(f"{store_id}\n{body}".encode()).hexdigest()[:32]


_CONTEXT_KEEP = ("timezone", "locale")


def normalise(
    calls: list[Any], store_id: str, received_at: float
) -> tuple[list[CanonicalEvent], list[ApiError]]:
    """Validate every call; return canonical events, or the full list of errors (all or nothing)."""
    events: list[CanonicalEvent] = []
    errors: list[ApiError] = []
    for i, raw in enumerate(calls):
        if not isinstance(raw, dict):
            errors.append(ApiError(index=i, field="(call)", message="each call must be a JSON object"))
            continue
        size = len(json.dumps(raw, default=str).encode())
        if size > MAX_CALL_BYTES:
            errors.append(
                ApiError(
                    index=i, field="(call)", message=f"call is {size} bytes; at most {MAX_CALL_BYTES} allowed"
                )
            )
            continue
        try:
            call = Call.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_errors(i, "", exc))
            continue
        properties: dict[str, Any] = call.properties
        traits: dict[str, Any] = call.traits
        try:
            if call.type == "track" and call.event in _TRACK_PROPERTIES:
                model = _TRACK_PROPERTIES[call.event]
                properties = _plain(model.model_validate(call.properties).model_dump(exclude_none=True))
            if call.type == "identify":
                parsed = Traits.model_validate(call.traits)
                traits = _plain(parsed.model_dump(exclude_none=True))
                # an explicit null (or "") clears these; kept as null so the fold sees it
                traits.update(
                    {
                        n: None
                        for n in CLEARABLE_TRAITS
                        if n in parsed.model_fields_set and traits.get(n) is None
                    }
                )
        except ValidationError as exc:
            errors.extend(_errors(i, "properties" if call.type == "track" else "traits", exc))
            continue
        context = {k: call.context[k] for k in _CONTEXT_KEEP if isinstance(call.context.get(k), str)}
        events.append(
            CanonicalEvent(
                message_id=call.messageId or _derived_message_id(store_id, raw),
                store_id=store_id,
                type=call.type,
                event=call.event if call.type == "track" else None,
                user_id=call.userId,
                anonymous_id=call.anonymousId,
                properties=_plain(properties),
                traits=_plain(traits),
                timestamp=call.timestamp,
                received_at=received_at,
                context=context,
            )
        )
    return (events, []) if not errors else ([], errors)


def customer_event(
    store_id: str,
    customer_id: str,
    event: str,
    properties: dict[str, Any],
    received_at: float,
    message_id: str,
) -> CanonicalEvent:
    """A track call Boomerang itself makes for a customer id ("u:<userId>" or "a:<anonymousId>"),
    e.g. an unsubscribe click or a carrier STOP, so it travels the same fold as a store's calls."""
    kind, _, ident = customer_id.partition(":")
    return CanonicalEvent(
        message_id=message_id,
        store_id=store_id,
        type="track",
        event=event,
        user_id=ident if kind == "u" else None,
        anonymous_id=ident if kind == "a" else None,
        properties=properties,
        received_at=received_at,
    )
