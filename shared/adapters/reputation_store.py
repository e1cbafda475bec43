"""The SES account's hourly delivered / hard-bounced / complained counts (shared/domain/reputation.py).

Written by the feedback λ once per SES message and kind: a marker item and the hour's counter change
in one transaction, so an SQS redelivery or a repeated SES event never counts twice. Read by the
journey step λ (one Query over the window), cached briefly per container: the pause may lag the
rate by `cache_s`, which is nothing next to a 7-day window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.domain.reputation import KINDS, WINDOW_H, Reputation
from shared.platform.aws import key

PK = "ACCOUNT#SES"  # account-wide: every store sends from the same SES account
MARKER_TTL_S = (WINDOW_H + 48) * 3600


def _hour(at: float) -> str:
    return "REP#" + datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H")


class ReputationStore:
    def __init__(
        self, ddb: Any, table: str, cache_s: float = 300, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.ddb, self.table, self.cache_s, self._monotonic = ddb, table, cache_s, monotonic
        self._cached: tuple[float, Reputation] | None = None
        self._lock = threading.Lock()

    def count(self, kind: str, message_id: str, at: float) -> bool:
        """Count one SES outcome of one message; False if it was already counted."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        expires = {"N": str(int(at) + MARKER_TTL_S)}
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                "pk": {"S": f"{PK}#MSG#{message_id}"},
                                "sk": {"S": kind},
                                "expires_at": expires,
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": key(PK, _hour(at)),
                            "UpdateExpression": "ADD #k :one SET expires_at = if_not_exists(expires_at, :x)",
                            "ExpressionAttributeNames": {"#k": kind},
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":x": expires},
                        }
                    },
                ]
            )
        except self.ddb.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def window(self, now: float) -> Reputation:
        """The counts over the last WINDOW_H hours (this hour included)."""
        with self._lock:
            if self._cached is not None and self._monotonic() - self._cached[0] < self.cache_s:
                return self._cached[1]
        totals = dict.fromkeys(KINDS, 0)
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {
                ":pk": {"S": PK},
                ":a": {"S": _hour(now - (WINDOW_H - 1) * 3600)},
                ":b": {"S": _hour(now)},
            },
        }
        while True:
            resp = self.ddb.query(**args)
            for item in resp.get("Items", []):
                for k in KINDS:
                    totals[k] += int(item.get(k, {}).get("N", "0"))
            if "LastEvaluatedKey" not in resp:
                break
            args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        rep = Reputation(**totals)
        with self._lock:
            self._cached = (self._monotonic(), rep)
        return rep
