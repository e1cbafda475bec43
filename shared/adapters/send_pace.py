"""Pacing sends at the SES account's MaxSendRate, shared by every concurrent broadcast worker.

A token bucket in DynamoDB: one counter item per second (`PACE#ses`, `S#<epoch second>`), taken
from with a conditional ADD so that workers together never take more than the rate in any second
of Boomerang's clock (shared/platform/clock.py: the emulator's --speed applies). A worker that
finds the second spent waits for the next one. The rate is SES's own (GetSendQuota), cached.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from shared.platform import clock

PACE_PK = "PACE#ses"
QUOTA_CACHE_S = 300  # the account's rate changes when AWS raises it: re-read every few minutes
KEEP_S = 3600  # counters expire (TTL) an hour on


def ses_max_send_rate(ses: Any) -> Callable[[], int]:
    """The account's MaxSendRate, read at most every QUOTA_CACHE_S real seconds."""
    cache: dict[str, float] = {}

    def rate() -> int:
        if not cache or time.monotonic() - cache["at"] > QUOTA_CACHE_S:
            quota = ses.get_send_quota()
            cache.update(rate=float(quota["MaxSendRate"]), at=time.monotonic())
        return max(1, math.floor(cache["rate"]))

    return rate


class SendPace:
    def __init__(
        self,
        ddb: Any,
        table: str,
        rate: Callable[[], int],
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.ddb = ddb
        self.table = table
        self.rate = rate
        # waits are on Boomerang's clock: a compressed clock waits less in real time
        self.sleep = sleep or clock.sleep

    def _take(self, second: int, n: int, limit: int) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": PACE_PK}, "sk": {"S": f"S#{second}"}},
                UpdateExpression="ADD taken :n SET expires_at = if_not_exists(expires_at, :exp)",
                ConditionExpression="attribute_not_exists(taken) OR taken <= :room",
                ExpressionAttributeValues={
                    ":n": {"N": str(n)},
                    ":room": {"N": str(limit - n)},
                    ":exp": {"N": str(second + KEEP_S)},
                },
            )
            return True
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False

    def take(self, want: int, deadline: float | None = None) -> int:
        """Up to `want` sends' worth of this second's tokens (at least 1), waiting for the next
        second while the current one is spent; 0 only if `deadline` (Boomerang time) comes first."""
        limit = self.rate()
        while True:
            now = clock.now_ts()
            if deadline is not None and now >= deadline:
                return 0
            second = math.floor(now)
            n = max(1, min(want, limit))
            while n >= 1:
                if self._take(second, n, limit):
                    return n
                n //= 2  # part of the second may be left: ask for less before waiting
            self.sleep(max(0.001, second + 1 - now))
