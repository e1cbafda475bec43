"""Product lists a step can show, uploaded by the store next to its templates.

``catalog/<store_id>/<collection>.json`` is a JSON list of products ({sku, name, price, currency,
image_url, url}), e.g. ``best-sellers.json``. ``catalog/<store_id>/related.json`` maps a SKU to the
products that go with it (``{"SKU-1": [{...}, ...]}``): the complementary-products step shows what
goes with the order's items, minus what was bought. A missing file is an empty list (the step is
skipped with that reason), never an error that stops a journey.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.platform.lru import Lru

PREFIX = "catalog/"
MAX_BYTES = 1024 * 1024
log = logging.getLogger("boomerang")


class ProductCatalog:
    def __init__(
        self, s3: Any, bucket: str, ttl_seconds: float = 300, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: Lru[str, tuple[float, Any]] = Lru(512)  # a few files per store
        self._lock = threading.Lock()

    def collection(self, store_id: str, name: str) -> list[dict[str, Any]]:
        data = self._read(f"{PREFIX}{store_id}/{name}.json")
        return [p for p in data if isinstance(p, dict)] if isinstance(data, list) else []

    def related(self, store_id: str, skus: list[str]) -> list[dict[str, Any]]:
        data = self._read(f"{PREFIX}{store_id}/related.json")
        if not isinstance(data, dict):
            return []
        seen, found = set(skus), []
        for sku in skus:
            for p in data.get(sku) or []:
                key = isinstance(p, dict) and (p.get("sku") or p.get("product_id"))
                if key and key not in seen:
                    seen.add(key)
                    found.append(p)
        return found

    def _read(self, key: str) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        value: Any = None
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read(MAX_BYTES + 1)
            if len(body) > MAX_BYTES:
                log.error("catalog file too large; ignored", extra={"key": key})
            else:
                value = json.loads(body)
        except self._s3.exceptions.NoSuchKey:
            value = None
        except (ValueError, UnicodeDecodeError):
            log.error("catalog file is not valid JSON; ignored", extra={"key": key})
        with self._lock:
            self._cache[key] = (now, value)
        return value
