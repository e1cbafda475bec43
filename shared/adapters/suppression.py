"""The per-store suppression list: addresses Boomerang must not message again.

One item per (store, channel, address). The key holds a SHA-256 of the normalised address, never
the address itself, and the item stores no address either: the list can answer "is this address
suppressed?" for someone who knows the address, and nothing else.

Kinds:
- "hard": never send anything to the address (a permanent bounce: the mailbox does not exist);
- "marketing": no marketing messages (a spam complaint); messages about an order may still go.

A "hard" entry is never downgraded to "marketing"; a repeated report of the same kind changes
nothing (the first report is kept as the evidence), so replays are harmless.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from shared.platform import keys
from shared.platform.aws import from_item, key, to_item

SuppressionKind = Literal["hard", "marketing"]
SUPPRESS_SK = "SUPPRESS"


def normalise_address(channel: str, address: str) -> str:
    return keys.normalise_identifier(channel, address)


def address_hash(channel: str, address: str) -> str:
    return keys.identifier_hash(channel, address)


def suppression_pk(store_id: str, channel: str, address: str) -> str:
    return f"STORE#{store_id}#SUPPRESS#{channel}#{address_hash(channel, address)}"


class Suppression(BaseModel):
    channel: str
    kind: SuppressionKind
    reason: str
    source: str
    at: float

    def blocks(self, *, marketing: bool) -> bool:
        """Whether this entry forbids a message (marketing or not) to the address."""
        return self.kind == "hard" or marketing


class SuppressionList:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    def suppress(
        self,
        store_id: str,
        channel: str,
        address: str,
        *,
        kind: SuppressionKind,
        reason: str,
        source: str,
        at: float,
    ) -> bool:
        """Record a suppression; True if the list changed (new entry, or marketing upgraded to hard)."""
        if kind not in ("hard", "marketing"):
            raise ValueError(f"unknown suppression kind {kind!r}")
        if not address.strip():
            raise ValueError("empty address")
        entry = Suppression(channel=channel, kind=kind, reason=reason, source=source, at=at)
        item = {"pk": suppression_pk(store_id, channel, address), "sk": SUPPRESS_SK, **entry.model_dump()}
        condition = "attribute_not_exists(pk)"
        values: dict[str, Any] = {}
        if kind == "hard":
            condition += " OR #kind = :marketing"
            values[":marketing"] = {"S": "marketing"}
        request: dict[str, Any] = {
            "TableName": self.table,
            "Item": to_item(item),
            "ConditionExpression": condition,
        }
        if values:
            request["ExpressionAttributeNames"] = {"#kind": "kind"}
            request["ExpressionAttributeValues"] = values
        try:
            self.ddb.put_item(**request)
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False  # already suppressed at least as strongly
        return True

    def get(self, store_id: str, channel: str, address: str) -> Suppression | None:
        resp = self.ddb.get_item(
            TableName=self.table,
            Key=key(suppression_pk(store_id, channel, address), SUPPRESS_SK),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        data = from_item(resp["Item"])
        return Suppression.model_validate({k: v for k, v in data.items() if k not in ("pk", "sk")})
