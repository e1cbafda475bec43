"""Stores (tenants): their settings, postal address and policies. Write keys: adapters.store_directory."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.delivery import DeliveryPolicy
from shared.domain.forms import FormConfig
from shared.domain.loyalty import LoyaltyPolicy
from shared.domain.privacy import DataRetention
from shared.domain.retention import RetentionPolicy

STORE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
# Countries that write the postal code before the city ("10115 Berlin", "00-001 Warszawa").
_POSTCODE_FIRST = frozenset(
    "AT BE BG CH CZ DE DK EE ES FI FR GR HR HU IL IS IT LI LT LU LV MC NL NO PL PT RO SE SI SK TR".split()
)
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})
_ADDRESS_TEXT = re.compile(r"^[^\x00-\x1f\x7f<>]+$")  # one printable line; no markup


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    from babel import Locale

    # CLDR's two-letter territories, less the groupings and the unknown region, which are not countries
    names = Locale.parse("en").territories
    return {c: str(n) for c, n in names.items() if re.fullmatch(r"[A-Z]{2}", c) and c not in _NOT_COUNTRIES}


class PostalAddress(BaseModel):
    """The store's physical postal address, shown in the footer of every marketing email (CAN-SPAM
    requires a valid one: a street address, or a PO box registered with the postal service)."""

    model_config = ConfigDict(extra="forbid")

    lines: list[str] = Field(min_length=1, max_length=3)  # street, building, PO box
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$")
    region: str | None = Field(default=None, max_length=100)  # state, province, county
    country: str  # ISO 3166-1 alpha-2, e.g. GB, US, PL

    @field_validator("lines")
    @classmethod
    def _lines(cls, v: list[str]) -> list[str]:
        out = [" ".join(line.split()) for line in v]
        for n, line in enumerate(out, 1):
            if not line or len(line) > 100 or not _ADDRESS_TEXT.match(line):
                raise ValueError(
                    f"line {n} must be 1 to 100 printable characters on one line, without < or >"
                )
        return out

    @field_validator("city", "region")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = " ".join(v.split())
        if not v or not _ADDRESS_TEXT.match(v):
            raise ValueError("must be printable text on one line, without < or >")
        return v

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        code = v.strip().upper()
        if code not in _country_names():
            raise ValueError(f"{v!r} is not an ISO 3166-1 alpha-2 country code; use e.g. GB, US, PL, DE")
        return code

    def formatted_lines(self) -> list[str]:
        """The address as it is written on an envelope, one element per line."""
        if self.country in _POSTCODE_FIRST:
            place = " ".join(p for p in (self.postal_code, self.city) if p)
            if self.region:
                place += f", {self.region}"
        else:  # "Springfield, IL 62701", "Bristol BS1 4AA"
            place = self.city + (f", {self.region}" if self.region else "")
            place += f" {self.postal_code}" if self.postal_code else ""
        return [*self.lines, place, _country_names()[self.country]]

    def one_line(self) -> str:
        return ", ".join(self.formatted_lines())


class Store(BaseModel):
    store_id: str = Field(pattern=STORE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(pattern=r"^https?://")
    sender_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    sender_name: str | None = None
    # Where "return to your cart" points; {cart_id} is filled in. Default: <url>/cart
    cart_url: str | None = None
    unsubscribe_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    timezone: str = "UTC"  # customers with no time zone of their own (traits, phone) get this one
    locale: str = "en"
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)  # quiet hours and frequency caps
    # New email consent waits as "pending" until the customer clicks the link Boomerang sends
    double_opt_in_email: bool = False
    sms_sender_id: str | None = None  # alphanumeric sender ID where the country allows one
    loyalty: LoyaltyPolicy = Field(default_factory=LoyaltyPolicy)  # points per order, tiers by points
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)  # when a customer is at risk
    # how long personal data is kept (GDPR Art. 5(1)(e)); defaults and reasons in shared/domain/privacy.py
    data_retention: DataRetention = Field(default_factory=DataRetention)
    # Shown in every marketing email's footer; without it marketing email is not sent (CAN-SPAM)
    address: PostalAddress | None = None
    # the signup form and welcome pop-up (README "Signup forms"); posted with the publishable form key
    form: FormConfig | None = None

    @field_validator("sms_sender_id")
    @classmethod
    def _sender_id(cls, v: str | None) -> str | None:
        from shared.domain.contacts import valid_sender_id

        if v is not None and not valid_sender_id(v):
            raise ValueError("1 to 11 letters and digits, at least one letter (carriers' rule)")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Europe/Warsaw or America/Chicago") from exc
        return v

    @field_validator("url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    def template_vars(self) -> dict[str, Any]:
        """What templates see as ``store`` (the shape is in shared/domain/template_variables.py)."""
        return {
            "name": self.name,
            "url": self.url,
            "address": self.address.one_line() if self.address else None,
            "address_lines": self.address.formatted_lines() if self.address else [],
        }

    def recovery_url(
        self, cart_id: str, campaign: str, medium: str = "email", base: str | None = None
    ) -> str:
        """`base`: the platform's own link to the checkout (Shopify's abandoned_checkout_url), else the
        store's cart page."""
        base = base or (self.cart_url or f"{self.url}/cart").replace("{cart_id}", cart_id)
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}boomerang_cart={cart_id}&utm_source=boomerang&utm_medium={medium}&utm_campaign={campaign}"

    @property
    def unsubscribe_mailto(self) -> str | None:
        # mailbox providers offer this to people whose client cannot do one-click
        return f"mailto:{self.unsubscribe_email}?subject=unsubscribe" if self.unsubscribe_email else None

    @property
    def sender(self) -> str:
        if self.sender_name:
            safe = re.sub(r'["\r\n]', "", self.sender_name)
            return f'"{safe}" <{self.sender_email}>'
        return self.sender_email


def new_api_key() -> str:
    return "bk_" + secrets.token_urlsafe(32)
