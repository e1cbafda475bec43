"""Stores (tenants) and their write keys. Keys are stored only as hashes."""

from __future__ import annotations

import re
import secrets
import threading
import time
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared import indexes, keys
from shared.aws import from_item, key, to_item
from shared.delivery import DeliveryPolicy
from shared.profiles import LoyaltyPolicy, RetentionPolicy

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
    # Shown in every marketing email's footer; without it marketing email is not sent (CAN-SPAM)
    address: PostalAddress | None = None

    @field_validator("sms_sender_id")
    @classmethod
    def _sender_id(cls, v: str | None) -> str | None:
        from shared.sms import valid_sender_id

        if v is not None and not valid_sender_id(v):
            raise ValueError("1 to 11 letters and digits, at least one letter (carriers' rule)")
        return v

    @field_validator("url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")

    def template_vars(self) -> dict[str, Any]:
        """What templates see as ``store`` (the shape is in shared/template_catalog.py)."""
        return {
            "name": self.name,
            "url": self.url,
            "address": self.address.one_line() if self.address else None,
            "address_lines": self.address.formatted_lines() if self.address else [],
        }

    def recovery_url(self, cart_id: str, campaign: str, medium: str = "email") -> str:
        base = (self.cart_url or f"{self.url}/cart").replace("{cart_id}", cart_id)
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


class StoreDirectory:
    """Looks stores up by id or by write key, caching briefly (keys are checked on every request)."""

    def __init__(self, ddb: Any, table: str, ttl_seconds: float = 60.0) -> None:
        self.ddb = ddb
        self.table = table
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, cache_key: str, load: Any) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(cache_key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        with self._lock:
            self._cache[cache_key] = (now, value)
        return value

    def store_id_for_key(self, api_key: str) -> str | None:
        if not api_key or len(api_key) > 200:
            return None
        key_hash = keys.hash_api_key(api_key)

        def load() -> str | None:
            resp = self.ddb.get_item(
                TableName=self.table, Key=key(keys.api_key_pk(key_hash), keys.API_KEY_SK)
            )
            item = from_item(resp["Item"]) if "Item" in resp else None
            return item["store_id"] if item and not item.get("revoked") else None

        result: str | None = self._cached("key:" + key_hash, load)
        return result

    def get(self, store_id: str) -> Store | None:
        def load() -> Store | None:
            resp = self.ddb.get_item(TableName=self.table, Key=key(keys.store_pk(store_id), keys.STORE_SK))
            if "Item" not in resp:
                return None
            data = from_item(resp["Item"])
            return Store.model_validate(
                {k: v for k, v in data.items() if k not in ("pk", "sk", indexes.STORES.partition)}
            )

        result: Store | None = self._cached("store:" + store_id, load)
        return result

    def store_ids(self) -> list[str]:
        """Every store, from the sparse `stores` index (a Query, never a Scan)."""
        found: list[str] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": indexes.STORES.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": indexes.STORES.partition},
            "ExpressionAttributeValues": {":p": {"S": indexes.STORES_LISTING}},
        }
        while True:
            resp = self.ddb.query(**args)
            found += [from_item(i)["store_id"] for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return found
            args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def put(self, store: Store, api_key: str | None = None) -> str:
        """Create or update a store; with a new (or given) write key. Returns the key, shown once."""
        api_key = api_key or new_api_key()
        store_item = {
            "pk": keys.store_pk(store.store_id),
            "sk": keys.STORE_SK,
            **store.model_dump(mode="json"),
            indexes.STORES.partition: indexes.STORES_LISTING,  # listed for the scheduled runs
        }
        key_item = {
            "pk": keys.api_key_pk(keys.hash_api_key(api_key)),
            "sk": keys.API_KEY_SK,
            "store_id": store.store_id,
            "created_at": time.time(),
        }
        self.ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self.table, "Item": to_item(store_item)}},
                {"Put": {"TableName": self.table, "Item": to_item(key_item)}},
            ]
        )
        with self._lock:
            self._cache.clear()
        return api_key
