"""Stores (tenants) and their write keys in the table. Keys are stored only as hashes."""

from __future__ import annotations

import threading
import time
from typing import Any

from shared.domain.stores import Store, new_api_key
from shared.platform import indexes, keys
from shared.platform.aws import from_item, key, to_item


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
