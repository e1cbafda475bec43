"""The table as the privacy service sees it: a store's items page by page, a person's partitions,
deletes in batches, and the erasure tombstones.

Finding everything a person left needs a Scan: events markers, carts, orders and journey runs are
keyed by their own ids, not the customer's, and no index lists them by customer. An erasure or an
export is a rare, offline job (a few a month per store), so reading the table is the right trade:
about $0.03 per GB read on demand, against an index (and its writes on every event) kept only for
them. The Scan pages with ConsistentRead, so nothing written before the erasure began is missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shared.domain.privacy import event_identifiers
from shared.platform import keys
from shared.platform.aws import from_item, key, to_item

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100


class TombstoneRegister:
    """The erasure tombstones: written by erasure, read by the fold and the journey trigger."""

    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    def put(self, store: str, identifiers: Iterable[tuple[str, str]], at: float) -> int:
        items = [
            {"pk": keys.erased_pk(store, kind, value), "sk": keys.ERASED_SK, "kind": kind, "erased_at": at}
            for kind, value in identifiers
        ]
        for item in items:
            # the latest erasure wins: it covers every event received before it
            self.ddb.put_item(TableName=self.table, Item=to_item(item))
        return len(items)

    def erased_at(self, store: str, identifiers: list[tuple[str, str]]) -> list[float]:
        """When each of these identifiers was erased (only the erased ones); one consistent read."""
        wanted = list(dict.fromkeys(keys.erased_pk(store, k, v) for k, v in identifiers))
        found: list[float] = []
        for start in range(0, len(wanted), BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [key(pk, keys.ERASED_SK) for pk in wanted[start : start + BATCH_GET_MAX]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "erased_at",
                }
            }
            for attempt in range(8):
                resp = self.ddb.batch_get_item(RequestItems=request)
                found += [
                    float(from_item(i)["erased_at"]) for i in resp.get("Responses", {}).get(self.table, [])
                ]
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("tombstone lookup throttled; the message will be retried")
        return found

    def drops(self, event: Any) -> bool:
        """True for an event of an erased customer received before their erasure."""
        from shared.domain.privacy import dropped_by_erasure

        ids = event_identifiers(event)
        return bool(ids) and dropped_by_erasure(event.received_at, self.erased_at(event.store_id, ids))


class PrivacyStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table
        self.tombstones = TombstoneRegister(ddb, table)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(TableName=self.table, Key=key(pk, sk), ConsistentRead=True)
        return from_item(resp["Item"]) if "Item" in resp else None

    def partition(self, pk: str) -> list[dict[str, Any]]:
        """Every item of one partition (a customer's, or a journey instance's)."""
        found: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            resp = self.ddb.query(**args)
            found += [from_item(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return found
            args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def scan_store(self, store: str, only_profiles: bool = False) -> Iterator[dict[str, Any]]:
        """Every item of one store, page by page (the filter saves transfer, not read capacity)."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": {"S": f"STORE#{store}#"}},
            "ConsistentRead": True,
        }
        if only_profiles:
            args["FilterExpression"] += " AND sk = :profile"
            args["ExpressionAttributeValues"][":profile"] = {"S": keys.PROFILE_SK}
        while True:
            resp = self.ddb.scan(**args)
            for item in resp.get("Items", []):
                yield from_item(item)
            if "LastEvaluatedKey" not in resp:
                return
            args["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def delete(self, items: Iterable[dict[str, Any]]) -> int:
        """Delete by key in batches of 25 (unprocessed ones retried); returns how many."""
        keys_ = list({(i["pk"], i["sk"]): None for i in items})
        for start in range(0, len(keys_), BATCH_WRITE_MAX):
            request = {
                self.table: [
                    {"DeleteRequest": {"Key": key(pk, sk)}}
                    for pk, sk in keys_[start : start + BATCH_WRITE_MAX]
                ]
            }
            for attempt in range(10):
                resp = self.ddb.batch_write_item(RequestItems=request)
                request = resp.get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 2.0))
            else:
                raise RuntimeError("deletes throttled; run the erasure again (it is idempotent)")
        return len(keys_)

    def pseudonymise_order(self, item: dict[str, Any], pseudonym: str) -> None:
        """An order stays for the store's revenue figures, no longer linked to anyone."""
        self.ddb.update_item(
            TableName=self.table,
            Key=key(item["pk"], item["sk"]),
            UpdateExpression="SET customer_id = :c REMOVE message_ids",
            ExpressionAttributeValues={":c": {"S": pseudonym}},
        )

    def scrub_forward(self, item: dict[str, Any], scrub: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
        """Replace a forward record by `scrub(item)`, unless the forwarder wrote to it since it was
        read (an attempt recorded, a status changed, a shipment): then read it again and scrub that.
        A put, so every attribute scrub dropped is gone; False when the record no longer exists."""
        from botocore.exceptions import ClientError

        current: dict[str, Any] | None = item
        for _ in range(10):
            if current is None:
                return False
            try:
                self.ddb.put_item(
                    TableName=self.table,
                    Item=to_item(scrub(current)),
                    ConditionExpression="attribute_exists(pk) AND size(attempts) = :n AND #s = :s"
                    " AND " + _unchanged(current, ("shipped_at", "delivered_at", "claimed_at")),
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=to_item(
                        {
                            ":n": len(current.get("attempts") or []),
                            ":s": current.get("status"),
                            **{
                                f":{n}": current[n]
                                for n in ("shipped_at", "delivered_at", "claimed_at")
                                if n in current
                            },
                        }
                    ),
                )
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            current = self.get(item["pk"], item["sk"])
        raise RuntimeError("forward record kept changing; run the erasure again (it is idempotent)")

    def forget_recipient(self, item: dict[str, Any]) -> None:
        """An offer code given stays given (never handed out twice), without whom to."""
        self.ddb.update_item(
            TableName=self.table, Key=key(item["pk"], item["sk"]), UpdateExpression="REMOVE recipient"
        )


def _unchanged(item: dict[str, Any], names: tuple[str, ...]) -> str:
    """A condition that these attributes are as read (present with that value, or absent)."""
    return " AND ".join(f"{n} = :{n}" if n in item else f"attribute_not_exists({n})" for n in names)
