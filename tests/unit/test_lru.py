"""The bounded LRU every in-memory cache is built on (shared/platform/lru.py)."""

from __future__ import annotations

import threading

import pytest

from shared.platform.lru import Lru


def test_evicts_the_least_recently_used_past_its_size() -> None:
    cache: Lru[str, int] = Lru(3)
    for n, name in enumerate("abc"):
        cache[name] = n
    assert cache.get("a") == 0  # "a" is now the most recently used: "b" goes first

    cache["d"] = 3

    assert len(cache) == 3
    assert "b" not in cache
    assert [cache.get(k) for k in "acd"] == [0, 2, 3]


def test_setting_an_existing_key_replaces_it_without_growing() -> None:
    cache: Lru[str, int] = Lru(2)
    cache["a"] = 1
    cache["a"] = 2
    assert (len(cache), cache.get("a"), cache.get("zz", -1)) == (1, 2, -1)
    assert cache.pop("a") == 2 and len(cache) == 0


def test_a_flood_of_distinct_keys_stays_bounded_across_threads() -> None:
    cache: Lru[int, int] = Lru(100)

    def fill(start: int) -> None:
        for n in range(start, start + 5_000):
            cache[n] = n
            cache.get(n - 1)

    threads = [threading.Thread(target=fill, args=(t * 5_000,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(cache) == 100


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Lru(0)
