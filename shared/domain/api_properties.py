"""What a storefront may send in a call's properties (per event) and traits (identify).

One pydantic model per event shape, so a bad call is refused at the edge with the field named;
unknown fields are accepted (Segment clients send many). shared/domain/api_calls.py picks the
model for each call through TRACK_PROPERTIES.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain.birthdays import BIRTHDAY_FORMAT, parse_birthday
from shared.domain.events import (
    BACK_IN_STOCK,
    BACK_IN_STOCK_SUBSCRIBED,
    CART_VIEWED,
    CHECKOUT_STARTED,
    CONSENT_UPDATED,
    DEVICE_REGISTERED,
    DEVICE_UNREGISTERED,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    PRODUCT_ADDED,
    PRODUCT_REMOVED,
    PRODUCT_VIEWED,
    RESERVED_SOURCE_PREFIX,
    WEB_PUSH_SUBSCRIBED,
    WEB_PUSH_UNSUBSCRIBED,
)
from shared.domain.limits import MAX_ORDER_TOTAL, MAX_PRICE, MAX_QUANTITY
from shared.domain.webpush import WebPushSubscribedProperties, WebPushUnsubscribedProperties


class OpenModel(BaseModel):
    # Segment clients send many fields Boomerang does not read: accepted, kept, never an error
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


Money = Decimal


class Product(OpenModel):
    product_id: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)
    price: Money | None = Field(default=None, ge=0, le=MAX_PRICE)
    quantity: int = Field(default=1, ge=0, le=MAX_QUANTITY)
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


class CartProperties(OpenModel):
    """Product Added / Product Removed: one product, plus the cart it belongs to."""

    cart_id: str | None = Field(default=None, max_length=200)
    product_id: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)
    price: Money | None = Field(default=None, ge=0, le=MAX_PRICE)
    quantity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)  # absent on a removal: the whole line
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


class ProductProperties(OpenModel):
    """Product Viewed / Back In Stock Subscribed / Back In Stock: one product, no cart.

    The product's key is its sku, else its product_id: a store must send the same identifier in
    Back In Stock as in the subscriptions it answers.
    """

    product_id: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=500)
    price: Money | None = Field(default=None, ge=0, le=MAX_PRICE)
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


class BackInStockProperties(ProductProperties):
    """Back In Stock: a sku or product_id, or only a platform's inventory item (Shopify's
    inventory_levels/update names nothing else), whose sku the profile fold looks up."""

    inventory_item_id: str | None = Field(default=None, max_length=200)

    _item_idish = field_validator("inventory_item_id", mode="before")(Product._idish.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _identified(self) -> BackInStockProperties:
        if not (self.product_id or self.sku or self.inventory_item_id):
            raise ValueError("product_id, sku or inventory_item_id is required")
        return self


class CartSnapshotProperties(OpenModel):
    """Cart Viewed / Checkout Started: the whole cart as it is now."""

    cart_id: str | None = Field(default=None, max_length=200)
    checkout_id: str | None = Field(default=None, max_length=200)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    value: Money | None = Field(default=None, ge=0, le=MAX_ORDER_TOTAL)
    products: list[Product] | None = Field(default=None, max_length=500)
    # the platform's own way back to this checkout (Shopify's abandoned_checkout_url): reminders link it
    recovery_url: str | None = Field(default=None, max_length=2048)

    _http_url = field_validator("recovery_url")(Product._http_url.__func__)  # type: ignore[attr-defined]


class OrderProperties(OpenModel):
    order_id: str = Field(min_length=1, max_length=200)
    cart_id: str | None = Field(default=None, max_length=200)
    checkout_id: str | None = Field(default=None, max_length=200)
    total: Money | None = Field(default=None, ge=0, le=MAX_ORDER_TOTAL)
    revenue: Money | None = Field(default=None, ge=0, le=MAX_ORDER_TOTAL)
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    products: list[Product] | None = Field(default=None, max_length=500)

    @field_validator("order_id", "cart_id", "checkout_id", mode="before")
    @classmethod
    def _idish(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


class ConsentFields(OpenModel):
    consent: (
        dict[Literal["email", "sms", "push", "webpush"], Literal["subscribed", "unsubscribed"]] | None
    ) = None
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
    consent_url: str | None = Field(
        default=None, max_length=2000, pattern=r"^https?://"
    )  # the page it was given on
    # when the choice was made where it was made (e.g. Shopify's consent_updated_at); without it, receipt
    consent_at: str | None = None

    @field_validator("consent_at")
    @classmethod
    def _consent_at(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from datetime import datetime

        try:
            parsed = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                "must be an ISO-8601 date-time with an offset, e.g. 2026-11-23T10:00:00Z"
            ) from exc
        if parsed.tzinfo is None:
            raise ValueError("must include a time zone offset or Z")
        return v


def _platform(v: str) -> str:
    from shared.domain.contacts import normalise_platform

    return normalise_platform(v)


class DeviceProperties(OpenModel):
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


TRACK_PROPERTIES: dict[str, type[OpenModel]] = {
    PRODUCT_VIEWED: ProductProperties,
    BACK_IN_STOCK_SUBSCRIBED: ProductProperties,
    BACK_IN_STOCK: BackInStockProperties,
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
    WEB_PUSH_SUBSCRIBED: WebPushSubscribedProperties,  # type: ignore[dict-item]
    WEB_PUSH_UNSUBSCRIBED: WebPushUnsubscribedProperties,  # type: ignore[dict-item]
}
