"""One page at a time of a sparse index's partition: the one Query every audience and segment read uses.

Journey audiences (a SKU's back-in-stock list, a day's birthdays, the at-risk day, a broadcast's
segment) and the daily segments run all read an index partition a page at a time, carrying
DynamoDB's LastEvaluatedKey (wire format, JSON-safe) in the task that reads the next page.
"""

from __future__ import annotations

from typing import Any

from shared.platform import indexes
from shared.platform.aws import from_item


class IndexPages:
    def __init__(self, ddb: Any, table: str) -> None:
        self.ddb = ddb
        self.table = table

    def page(
        self, index: indexes.IndexSpec, value: str, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of an index partition: (items as plain dicts, LastEvaluatedKey or None)."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": index.partition},
            "ExpressionAttributeValues": {":p": {"S": value}},
            "Limit": limit,
        }
        if start:
            args["ExclusiveStartKey"] = start
        resp = self.ddb.query(**args)
        return [from_item(i) for i in resp.get("Items", [])], resp.get("LastEvaluatedKey")
