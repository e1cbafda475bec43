"""Send pages of a broadcast in DynamoDB: the members due at one instant, a few hundred per item.

The daily run's audience task writes, per page of the segment it reads, one item per send instant
(deterministic keys: a replayed task overwrites the same items with the same members). The
instant's execution reads them back in key order, one at a time, carrying the last key as its
cursor. A DONE item says the run has written every page, so an execution that has caught up with
the writer waits for more instead of finishing early.

  pk STORE#<store>#BCAST#<journey>#<day>#<run>   sk AT#<instant>#<shard>#<source page>   customers, expires_at
  pk (same)                                        sk DONE                         expires_at
"""

from __future__ import annotations

from typing import Any

KEEP_S = 14 * 86400  # pages outlive the day by two weeks (replays, investigations), then TTL


def broadcast_pk(store: str, journey: str, day: str, run: str) -> str:
    return f"STORE#{store}#BCAST#{journey}#{day}#{run}"


def shard_prefix(instant: int, shard: int) -> str:
    return f"AT#{instant:010d}#{shard:03d}#"


def page_sk(instant: int, shard: int, page_id: str) -> str:
    return shard_prefix(instant, shard) + page_id


class BroadcastPages:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    def put_page(
        self, pk: str, instant: int, shard: int, page_id: str, customers: list[str], expires_at: int
    ) -> None:
        """Idempotent: the same source page always yields the same item."""
        self.ddb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": pk},
                "sk": {"S": page_sk(instant, shard, page_id)},
                "customers": {"L": [{"S": c} for c in customers]},
                "expires_at": {"N": str(expires_at)},
            },
        )

    def mark_done(self, pk: str, expires_at: int) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item={"pk": {"S": pk}, "sk": {"S": "DONE"}, "expires_at": {"N": str(expires_at)}},
        )

    def done(self, pk: str) -> bool:
        resp = self.ddb.get_item(
            TableName=self.table,
            Key={"pk": {"S": pk}, "sk": {"S": "DONE"}},
            ProjectionExpression="sk",
            ConsistentRead=True,
        )
        return "Item" in resp

    def next_page(self, pk: str, instant: int, shard: int, after: str | None) -> tuple[str, list[str]] | None:
        """The shard's first page after `after` (a page sk), or None when there is none (yet)."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :at)",
            "ExpressionAttributeValues": {":p": {"S": pk}, ":at": {"S": shard_prefix(instant, shard)}},
            "Limit": 1,
            "ConsistentRead": True,
        }
        if after:
            args["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after}}
        items = self.ddb.query(**args).get("Items", [])
        if not items:
            return None
        return items[0]["sk"]["S"], [c["S"] for c in items[0]["customers"]["L"]]
