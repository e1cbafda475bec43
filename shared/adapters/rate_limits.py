"""Fixed-window rate limits held in the table, so they hold across every λ instance.

A public endpoint (the signup form) runs on as many λ instances as requests arrive in parallel, so a
counter in one instance's memory would let a flood through N times. Each limit is one item per
window, `RATE#<scope>#<window start>` / `RATE`, bumped with a conditional UpdateItem (`n < limit`):
one write per limit per request, no read, and a refused bump changes nothing. Items carry the
table's TTL attribute and vanish a day later. Scopes are hashed by the caller (an IP address is
personal data and is never stored). Instances also remember, in bounded memory, which scopes are
already over their limit in the current window, so a flood costs no writes after the first refusal.

Windows are on wall-clock time, not Boomerang's clock: floods arrive in real seconds even when the
emulator runs journeys faster. The TTL is the one thing read on Boomerang's clock (the emulator's
sweeper expires items by it), so it is written there: the same value on AWS, and under a compressed
or shifted emulator clock an item is never swept while its window is still open.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.platform import clock
from shared.platform.aws import key

RATE_SK = "RATE"
TTL_ATTRIBUTE = "expires_at"
KEEP_S = 86400
_MEMORY = 4096  # scopes remembered as over their limit, per instance


@dataclass(frozen=True)
class Limit:
    scope: str  # e.g. "form-ip#<store>#<hash of the IP>"; no personal data
    limit: int
    window_s: int


def rate_pk(scope: str, window_start: int) -> str:
    return f"RATE#{scope}#{window_start}"


class RateLimiter:
    def __init__(self, ddb: Any, table: str, now: Callable[[], float] = time.time) -> None:
        self.ddb = ddb
        self.table = table
        self.now = now
        self._over: OrderedDict[str, float] = OrderedDict()  # pk -> window end
        self._lock = threading.Lock()

    def take(self, limits: list[Limit]) -> Limit | None:
        """Count one request against every limit, in order; the first limit it exceeds, or None."""
        now = self.now()
        for limit in limits:
            start = int(now // limit.window_s * limit.window_s)
            pk = rate_pk(limit.scope, start)
            with self._lock:
                if pk in self._over:
                    return limit
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key=key(pk, RATE_SK),
                    UpdateExpression="ADD #n :one SET #e = if_not_exists(#e, :e)",
                    ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                    ExpressionAttributeNames={"#n": "n", "#e": TTL_ATTRIBUTE},
                    ExpressionAttributeValues={
                        ":one": {"N": "1"},
                        ":limit": {"N": str(limit.limit)},
                        ":e": {"N": str(_expiry(start + limit.window_s + KEEP_S - now))},
                    },
                )
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if code != "ConditionalCheckFailedException":
                    raise
                with self._lock:
                    self._over[pk] = start + limit.window_s
                    for old in [k for k, end in self._over.items() if end <= now]:
                        del self._over[old]
                    while len(self._over) > _MEMORY:
                        self._over.popitem(last=False)
                return limit
        return None


def _expiry(wall_seconds_left: float) -> int:
    """The TTL value for an item that must live `wall_seconds_left` more real seconds."""
    return int(clock.now_ts() + wall_seconds_left * clock.speed()) + 1
