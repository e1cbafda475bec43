"""Publishable form keys: the public key a store's signup form posts with (README "Signup forms").

A form key is not a secret — it sits in the store's page source — so it is stored as it is (the
CLI can show it again) and it opens exactly one door: `POST /v1/forms/<key>/submit` and the form's
public configuration. The event API never accepts it (write keys are looked up as `APIKEY#<sha256>`,
a different partition), so a leaked form key cannot send events. Rotating replaces it at once: the
old key answers 404 within the cache's minute.

Items: `FORMKEY#<key>` / `FORMKEY` -> the store; `STORE#s` / `FORMKEY` -> the store's current key.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from shared.platform import keys
from shared.platform.aws import from_item, key, to_item

KEY_PREFIX = "pk_"
FORM_KEY_SK = "FORMKEY"
KEY_PATTERN = re.compile(r"^pk_[A-Za-z0-9_-]{16,64}$")
_CACHE_ENTRIES = 1024  # bounded: random keys in a flood must not grow the container's memory


def form_key_pk(form_key: str) -> str:
    return f"FORMKEY#{form_key}"


def new_form_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(18)


class FormKeys:
    def __init__(self, ddb: Any, table: str, ttl_seconds: float = 60.0) -> None:
        self.ddb = ddb
        self.table = table
        self.ttl = ttl_seconds
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def store_for(self, form_key: str) -> str | None:
        """The store a publishable key belongs to, or None (malformed keys cost no read)."""
        if not KEY_PATTERN.match(form_key or ""):
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(form_key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        resp = self.ddb.get_item(TableName=self.table, Key=key(form_key_pk(form_key), FORM_KEY_SK))
        store_id = str(from_item(resp["Item"])["store_id"]) if "Item" in resp else None
        with self._lock:
            self._cache[form_key] = (now, store_id)
            self._cache.move_to_end(form_key)
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return store_id

    def current(self, store_id: str) -> str | None:
        resp = self.ddb.get_item(
            TableName=self.table, Key=key(keys.store_pk(store_id), FORM_KEY_SK), ConsistentRead=True
        )
        return str(from_item(resp["Item"])["form_key"]) if "Item" in resp else None

    def issue(self, store_id: str, rotate: bool = False) -> str:
        """The store's form key: the current one, or a new one (the old stops working) if `rotate`
        or there is none yet. One transaction: never two live keys, never a key without its store."""
        old = self.current(store_id)
        if old and not rotate:
            return old
        new = new_form_key()
        now = time.time()
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {"pk": form_key_pk(new), "sk": FORM_KEY_SK, "store_id": store_id, "created_at": now}
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {"pk": keys.store_pk(store_id), "sk": FORM_KEY_SK, "form_key": new, "created_at": now}
                    ),
                }
            },
        ]
        if old:
            items.append({"Delete": {"TableName": self.table, "Key": key(form_key_pk(old), FORM_KEY_SK)}})
        self.ddb.transact_write_items(TransactItems=items)
        with self._lock:
            self._cache.clear()
        return new
