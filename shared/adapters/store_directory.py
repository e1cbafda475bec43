"""Stores (tenants), their write keys and webhook secrets in the table. Keys are stored only as hashes.

Items: the store `STORE#s` / `STORE`; a write key `APIKEY#<sha256>` / `APIKEY` (looked up on every
request) with its back-reference `STORE#s` / `KEY#<sha256>` (so a store's keys can be found to
rotate or remove them); a webhook secret `STORE#s` / `WEBHOOK#<platform>` (never part of `Store`,
so it cannot reach a template or a log line).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from shared.adapters.form_keys import FORM_KEY_SK, form_key_pk
from shared.domain.stores import Store, new_api_key
from shared.platform import indexes, keys
from shared.platform.aws import from_item, key, to_item
from shared.platform.lru import Lru

KEY_REF_PREFIX = "KEY#"
WEBHOOK_SECRET_PREFIX = "WEBHOOK#"
TTL_ATTRIBUTE = "expires_at"  # the table's TTL attribute (infra/description.py TABLE.ttl_attribute)


class KeyInUse(Exception):
    """The write key already belongs to another store: writing it would move that store's traffic."""


class StoreExists(Exception):
    pass


class UnknownStore(Exception):
    pass


@dataclass(frozen=True)
class KeyInfo:
    key_hash: str
    created_at: float
    expires_at: float | None  # set by a rotation: the old key works until then

    @property
    def fingerprint(self) -> str:
        return self.key_hash[:12]  # enough to tell keys apart in a listing; useless to an attacker


def _cancelled(exc: Exception) -> list[str]:
    """The reasons of a cancelled transaction, one per item ('ConditionalCheckFailed', 'None')."""
    response = getattr(exc, "response", {}) or {}
    if response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise exc
    reasons = [r.get("Code", "None") for r in response.get("CancellationReasons", [])]
    if not reasons:  # some endpoints only say it in the message
        message = response.get("Error", {}).get("Message", "")
        inside = message[message.find("[") + 1 : message.rfind("]")]
        reasons = [r.strip() for r in inside.split(",")] if "[" in message else []
    return reasons


# A warm ingest λ's memory for lookups: write keys, stores and webhook secrets found (a few per
# store), and misses (wrong keys, unknown stores in webhook URLs), each an LRU of this many entries.
CACHE_ENTRIES = 1024
MISS_ENTRIES = 256


class StoreDirectory:
    """Looks stores up by id or by write key, caching briefly (keys are checked on every request)."""

    def __init__(self, ddb: Any, table: str, ttl_seconds: float = 60.0) -> None:
        self.ddb = ddb
        self.table = table
        self.ttl = ttl_seconds
        # Found entries (live keys, stores, secrets) apart from misses: a flood of distinct wrong
        # keys cycles through the small miss cache and never evicts a real store's key.
        self._cache: Lru[str, tuple[float, Any]] = Lru(CACHE_ENTRIES)
        self._misses: Lru[str, tuple[float, Any]] = Lru(MISS_ENTRIES)

    def _cached(self, cache_key: str, load: Any) -> Any:
        now = time.monotonic()
        hit = self._cache.get(cache_key) or self._misses.get(cache_key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = load()
        (self._cache if value is not None else self._misses)[cache_key] = (now, value)
        if value is not None:
            self._misses.pop(cache_key)
        return value

    def store_id_for_key(self, api_key: str) -> str | None:
        if not api_key or len(api_key) > 200 or not api_key.isprintable():
            return None  # (a lone surrogate is not printable, and could not be hashed)
        key_hash = keys.hash_api_key(api_key)

        def load() -> tuple[str, float | None] | None:
            resp = self.ddb.get_item(
                TableName=self.table, Key=key(keys.api_key_pk(key_hash), keys.API_KEY_SK)
            )
            item = from_item(resp["Item"]) if "Item" in resp else None
            if not item or item.get("revoked"):
                return None
            expires = item.get(TTL_ATTRIBUTE)
            return item["store_id"], float(expires) if expires is not None else None

        found: tuple[str, float | None] | None = self._cached("key:" + key_hash, load)
        if found is None:
            return None
        # a rotated key's grace period ends on time, not when DynamoDB's TTL sweep gets to it
        if found[1] is not None and found[1] <= time.time():
            return None
        return found[0]

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

    def _forget(self) -> None:
        self._cache.clear()
        self._misses.clear()

    def _store_item(self, store: Store) -> dict[str, Any]:
        return {
            "pk": keys.store_pk(store.store_id),
            "sk": keys.STORE_SK,
            **store.model_dump(mode="json"),
            indexes.STORES.partition: indexes.STORES_LISTING,  # listed for the scheduled runs
        }

    def _key_puts(self, store_id: str, api_key: str, now: float) -> list[dict[str, Any]]:
        key_hash = keys.hash_api_key(api_key)
        return [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {
                            "pk": keys.api_key_pk(key_hash),
                            "sk": keys.API_KEY_SK,
                            "store_id": store_id,
                            "created_at": now,
                        }
                    ),
                    # refused when the key belongs to another store (re-putting one's own key is fine)
                    "ConditionExpression": "attribute_not_exists(pk) OR store_id = :s",
                    "ExpressionAttributeValues": {":s": {"S": store_id}},
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {"pk": keys.store_pk(store_id), "sk": KEY_REF_PREFIX + key_hash, "created_at": now}
                    ),
                }
            },
        ]

    def _write(self, items: list[dict[str, Any]], key_index: int | None, store_id: str) -> None:
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except Exception as exc:
            reasons = _cancelled(exc)
            if (
                key_index is not None
                and len(reasons) > key_index
                and reasons[key_index] == "ConditionalCheckFailed"
            ):
                raise KeyInUse("that write key belongs to another store; use a new key") from exc
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise (
                    StoreExists
                    if items[0]["Put"].get("ConditionExpression", "").startswith("attribute_not")
                    else UnknownStore
                )(store_id) from exc
            raise
        finally:
            self._forget()

    def put(self, store: Store, api_key: str | None = None) -> str:
        """Create or update a store; with a new (or given) write key. Returns the key, shown once.
        KeyInUse if the given key belongs to another store (nothing is written then)."""
        api_key = api_key or new_api_key()
        items = [{"Put": {"TableName": self.table, "Item": to_item(self._store_item(store))}}]
        self._write(items + self._key_puts(store.store_id, api_key, time.time()), 1, store.store_id)
        return api_key

    def create(self, store: Store, api_key: str | None = None) -> str:
        """A new store and its first write key; StoreExists if the id is taken."""
        api_key = api_key or new_api_key()
        items = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(self._store_item(store)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        self._write(items + self._key_puts(store.store_id, api_key, time.time()), 1, store.store_id)
        return api_key

    def update(self, store: Store) -> None:
        """New settings for an existing store; its keys and secrets stay. UnknownStore if absent."""
        items = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(self._store_item(store)),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        ]
        self._write(items, None, store.store_id)

    def _partition(self, store_id: str, prefix: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": keys.store_pk(store_id)}, ":s": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            resp = self.ddb.query(**args)
            found += [from_item(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return found
            args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def keys_of(self, store_id: str) -> list[KeyInfo]:
        """The store's write keys (as hashes), oldest first; rotated ones with their expiry."""
        now = time.time()
        out = []
        for ref in self._partition(store_id, KEY_REF_PREFIX):
            expires = ref.get(TTL_ATTRIBUTE)
            if expires is not None and float(expires) <= now:
                continue  # past its grace period (DynamoDB's TTL removes it within days)
            out.append(
                KeyInfo(
                    ref["sk"][len(KEY_REF_PREFIX) :],
                    float(ref.get("created_at", 0)),
                    float(expires) if expires else None,
                )
            )
        return sorted(out, key=lambda k: k.created_at)

    def rotate_key(self, store_id: str, grace_seconds: float, new_key: str | None = None) -> str:
        """A new write key; every current key keeps working for `grace_seconds` (0: ends now), so
        a store can redeploy its storefront before the old one stops. Returns the new key, once."""
        if self.get(store_id) is None:
            raise UnknownStore(store_id)
        new_key = new_key or new_api_key()
        now = time.time()
        until = now + max(0.0, grace_seconds)
        items = self._key_puts(store_id, new_key, now)
        for info in self.keys_of(store_id):
            if info.expires_at is not None and info.expires_at <= until:
                continue  # already ending sooner
            for pk, sk in (
                (keys.api_key_pk(info.key_hash), keys.API_KEY_SK),
                (keys.store_pk(store_id), KEY_REF_PREFIX + info.key_hash),
            ):
                items.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": key(pk, sk),
                            "UpdateExpression": "SET #e = :e",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeNames": {"#e": TTL_ATTRIBUTE},
                            "ExpressionAttributeValues": {":e": {"N": str(int(until))}},
                        }
                    }
                )
        if len(items) > 100:
            raise ValueError("too many live keys to rotate at once; remove expired ones first")
        self._write(items, 0, store_id)
        return new_key

    def set_webhook_secret(self, store_id: str, platform: str, secret: str | None) -> None:
        """The platform's shared secret for this store's webhooks; None removes it."""
        if self.get(store_id) is None:
            raise UnknownStore(store_id)
        item_key = key(keys.store_pk(store_id), WEBHOOK_SECRET_PREFIX + platform)
        if secret is None:
            self.ddb.delete_item(TableName=self.table, Key=item_key)
        else:
            item = {
                "pk": keys.store_pk(store_id),
                "sk": WEBHOOK_SECRET_PREFIX + platform,
                "secret": secret,
                "updated_at": time.time(),
            }
            self.ddb.put_item(TableName=self.table, Item=to_item(item))
        self._forget()

    def webhook_secret(self, store_id: str, platform: str) -> str | None:
        def load() -> str | None:
            resp = self.ddb.get_item(
                TableName=self.table, Key=key(keys.store_pk(store_id), WEBHOOK_SECRET_PREFIX + platform)
            )
            return str(from_item(resp["Item"])["secret"]) if "Item" in resp else None

        result: str | None = self._cached(f"webhook:{store_id}:{platform}", load)
        return result

    def webhook_platforms(self, store_id: str) -> list[str]:
        """Which platforms have a secret set (the secrets themselves are never listed)."""
        return sorted(
            i["sk"][len(WEBHOOK_SECRET_PREFIX) :] for i in self._partition(store_id, WEBHOOK_SECRET_PREFIX)
        )

    def remove(self, store_id: str) -> int:
        """The store, its write keys and webhook secrets; its customers' data stays (erasure is a
        separate, per-customer act). Returns how many items were deleted."""
        if self.get(store_id) is None:
            raise UnknownStore(store_id)
        targets = [key(keys.store_pk(store_id), keys.STORE_SK)]
        for ref in self._partition(store_id, KEY_REF_PREFIX):
            targets.append(key(keys.api_key_pk(ref["sk"][len(KEY_REF_PREFIX) :]), keys.API_KEY_SK))
            targets.append(key(keys.store_pk(store_id), ref["sk"]))
        targets += [
            key(keys.store_pk(store_id), i["sk"]) for i in self._partition(store_id, WEBHOOK_SECRET_PREFIX)
        ]
        for ref in self._partition(store_id, FORM_KEY_SK):  # the signup form's publishable key
            targets += [
                key(form_key_pk(ref["form_key"]), FORM_KEY_SK),
                key(keys.store_pk(store_id), FORM_KEY_SK),
            ]
        # the keys go first: a half-finished removal must never leave a key that still works
        for start in range(1, len(targets), 25):
            chunk = targets[start : start + 25]
            self.ddb.transact_write_items(
                TransactItems=[{"Delete": {"TableName": self.table, "Key": k}} for k in chunk]
            )
        self.ddb.delete_item(TableName=self.table, Key=targets[0])
        self._forget()
        return len(targets)
