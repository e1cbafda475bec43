"""Journey instance records: the send records that make each step exactly-once, and the log."""

from __future__ import annotations

import uuid
from typing import Any

from shared import clock, keys
from shared.aws import from_item, key, to_item

LOG_TTL_S = 400 * 24 * 3600


class JourneyStore:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    def claim_send(
        self, store: str, journey: str, instance: str, step_id: str, record: dict[str, Any]
    ) -> str | None:
        """Write the send record before calling a provider. Returns a claim token, or None if the step
        was already handled (sent, skipped or in flight): the caller then never sends again."""
        token = uuid.uuid4().hex
        item = {
            "pk": keys.journey_pk(store, journey, instance),
            "sk": keys.send_sk(step_id),
            "status": "claimed",
            "claim": token,
            **record,
        }
        try:
            self.ddb.put_item(
                TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        return token

    def finish_send(
        self, store: str, journey: str, instance: str, step_id: str, token: str, fields: dict[str, Any]
    ) -> None:
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        sets = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        self.ddb.update_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), keys.send_sk(step_id)),
            UpdateExpression=f"SET {sets}",
            ConditionExpression="#claim = :claim",
            ExpressionAttributeNames={**names, "#claim": "claim"},
            ExpressionAttributeValues={**to_item(values), ":claim": {"S": token}},
        )

    def release_send(self, store: str, journey: str, instance: str, step_id: str, token: str) -> None:
        """The provider refused before accepting the message (e.g. throttled): let a retry send it."""
        self.ddb.delete_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), keys.send_sk(step_id)),
            ConditionExpression="#claim = :claim",
            ExpressionAttributeNames={"#claim": "claim"},
            ExpressionAttributeValues={":claim": {"S": token}},
        )

    def get_send(self, store: str, journey: str, instance: str, step_id: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(
            TableName=self.table,
            Key=key(keys.journey_pk(store, journey, instance), keys.send_sk(step_id)),
            ConsistentRead=True,
        )
        return from_item(resp["Item"]) if "Item" in resp else None

    def log(self, store: str, journey: str, instance: str, entry: dict[str, Any]) -> None:
        """Append to the instance's history (entered, waited, sent/skipped and why, exited and why)."""
        now = clock.now_ts()
        item = {
            "pk": keys.journey_pk(store, journey, instance),
            "sk": keys.log_sk(clock.iso(now), uuid.uuid4().hex[:8]),
            "at": now,
            "expires_at": int(now) + LOG_TTL_S,
            **entry,
        }
        self.ddb.put_item(TableName=self.table, Item=to_item(item))

    def history(self, store: str, journey: str, instance: str) -> list[dict[str, Any]]:
        resp = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.journey_pk(store, journey, instance)}},
            ConsistentRead=True,
        )
        return [from_item(i) for i in resp.get("Items", [])]
