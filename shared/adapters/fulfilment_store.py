"""What Boomerang sent each fulfilment partner about an order, and what the partner answered.

One item per (order, partner, action) in the order's partition: ``STORE#s#ORDER#<id>`` /
``FWD#<partner>#<create|cancel>``, next to the order item (``boomerang orders show`` reads the
partition). Kept apart from the order item so the profile fold's order writes stay small and a
partner's retries never contend with them.

Exactly once per attempt: attempt n is claimed with a conditional write (attempt = n - 1), so a
duplicate delivery of the same retry task, or a replayed order event, sends nothing twice; a claim
whose λ died before recording its answer may be taken again once stale (the partner sees the same
Idempotency-Key).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from shared.platform import keys
from shared.platform.aws import from_item, key, to_item

FWD_PREFIX = "FWD#"
OPEN = ("pending", "retrying")  # statuses an attempt may still be made in
MAX_ANSWER_CHARS = 500  # of a partner's answer body, kept on the attempt


def fwd_sk(partner_id: str, action: str) -> str:
    return f"{FWD_PREFIX}{partner_id}#{action}"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


class FulfilmentStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    def _key(self, store: str, order: str, partner: str, action: str) -> dict[str, Any]:
        return key(keys.order_pk(store, order), fwd_sk(partner, action))

    def open(self, record: dict[str, Any]) -> bool:
        """Create the record of a forward; False when it already exists (a replayed order event)."""
        item = {
            "pk": keys.order_pk(record["store_id"], record["order_id"]),
            "sk": fwd_sk(record["partner_id"], record["action"]),
            "status": "pending",
            "attempt": 0,
            "attempts": [],
            **record,
        }
        try:
            self.ddb.put_item(
                TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def get(self, store: str, order: str, partner: str, action: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(
            TableName=self.table, Key=self._key(store, order, partner, action), ConsistentRead=True
        )
        return from_item(resp["Item"]) if "Item" in resp else None

    def for_order(self, store: str, order: str) -> list[dict[str, Any]]:
        """Every forward of an order (a Query of its partition), by partner and action."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :fwd)",
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.order_pk(store, order)},
                ":fwd": {"S": FWD_PREFIX},
            },
            "ConsistentRead": True,
        }
        while True:
            resp = self.ddb.query(**kwargs)
            out += [from_item(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def order(self, store: str, order: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(TableName=self.table, Key=key(keys.order_pk(store, order), keys.ORDER_SK))
        return from_item(resp["Item"]) if "Item" in resp else None

    def take_rate_slot(self, store: str, partner: str, window: int, allowed: int, expires_at: int) -> bool:
        """One request in the partner's rate window `window` (Unix seconds), if fewer than `allowed`
        were made in it: a conditional counter, so concurrent forwarders never exceed it together."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key(keys.partner_pk(store, partner), f"RATE#{window}"),
                UpdateExpression="ADD used :one SET expires_at = :exp",
                ConditionExpression="attribute_not_exists(used) OR used < :allowed",
                ExpressionAttributeValues=to_item({":one": 1, ":allowed": allowed, ":exp": expires_at}),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def claim_attempt(
        self, store: str, order: str, partner: str, action: str, n: int, now: float, stale_before: float
    ) -> bool:
        """Take attempt `n`: only one λ makes it, however often its task is delivered."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(store, order, partner, action),
                UpdateExpression="SET attempt = :n, claimed_at = :now",
                ConditionExpression=(
                    "#s IN (:pending, :retrying) AND (attempt = :prev OR (attempt = :n AND claimed_at < :stale "
                    "AND size(attempts) < :n))"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item(
                    {
                        ":n": n,
                        ":prev": n - 1,
                        ":now": now,
                        ":stale": stale_before,
                        ":pending": "pending",
                        ":retrying": "retrying",
                    }
                ),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def record_attempt(
        self,
        store: str,
        order: str,
        partner: str,
        action: str,
        attempt: dict[str, Any],
        status: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """The attempt's outcome and the partner's answer, appended; the forward's new status."""
        attempt = {**attempt, "answer": str(attempt.get("answer") or "")[:MAX_ANSWER_CHARS]}
        sets = ["#s = :status", "attempts = list_append(attempts, :attempt)"]
        values: dict[str, Any] = {":status": status, ":attempt": [attempt]}
        for i, value in enumerate((extra or {}).values()):
            sets.append(f"#e{i} = :e{i}")
            values[f":e{i}"] = value
        self.ddb.update_item(
            TableName=self.table,
            Key=self._key(store, order, partner, action),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames={"#s": "status", **{f"#e{i}": n for i, n in enumerate(extra or {})}},
            ExpressionAttributeValues=to_item(values),
        )

    def close(self, store: str, order: str, partner: str, action: str, status: str, reason: str) -> bool:
        """End an open forward without another attempt (cancelled before delivery, given up)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(store, order, partner, action),
                UpdateExpression="SET #s = :status, reason = :reason",
                ConditionExpression="#s IN (:pending, :retrying)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item(
                    {":status": status, ":reason": reason, ":pending": "pending", ":retrying": "retrying"}
                ),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def record_shipment(
        self, store: str, order: str, partner: str, status: str, at: float, details: dict[str, Any]
    ) -> None:
        """A partner's shipping update on its create record: the first time of each status is kept.
        The tracking details only while the record still has its document: a customer erased since
        (privacy.scrub_forward) gets the times, for the report, and no tracking number back."""
        field = "shipped_at" if status == "shipped" else "delivered_at"
        sets = [f"{field} = if_not_exists({field}, :at)"]
        values: dict[str, Any] = {":at": at}
        if status == "delivered":  # delivered implies shipped, for partners that report only delivery
            sets.append("shipped_at = if_not_exists(shipped_at, :at)")
        times = (list(sets), dict(values))
        for i, (name, value) in enumerate(sorted(details.items())):
            if value is not None:
                sets.append(f"{name} = :d{i}")
                values[f":d{i}"] = value
        attempts = [(sets, values, "attribute_exists(pk) AND attribute_exists(document)")]
        attempts.append((*times, "attribute_exists(pk)"))
        for sets_, values_, condition in attempts:
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key=self._key(store, order, partner, "create"),
                    UpdateExpression="SET " + ", ".join(sets_),
                    ConditionExpression=condition,
                    ExpressionAttributeValues=to_item(values_),
                )
                return
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise


def document_of(record: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(record["document"]))
