"""moto's DynamoDB as the emulator runs it: a cancelled transaction never undoes other writes (16.8).

Before infra/local/moto_dynamodb.py, a cancelled TransactWriteItems restored a snapshot of the whole
table, so puts and deletes other threads had been told succeeded came undone (13 of 300 puts and
16 of 300 deletes in the issue's race test).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.local import moto_dynamodb
from tests.aws_fixtures import FAKE_CREDENTIALS

TABLE = "race"
PREFILL = 600  # a table big enough that moto's snapshot took long enough to race with


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    moto_dynamodb.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _keys(client: Any, pk: str) -> set[str]:
    found: set[str] = set()
    for page in client.get_paginator("query").paginate(
        TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}}
    ):
        found |= {i["sk"]["S"] for i in page["Items"]}
    return found


def test_cancelled_transactions_never_undo_acknowledged_writes(ddb: Any) -> None:
    for i in range(PREFILL):
        ddb.put_item(TableName=TABLE, Item={**_key("old", f"{i:05d}"), "pad": {"S": "x" * 200}})
    done = threading.Event()
    cancelled = [0]
    errors: list[BaseException] = []

    def puts() -> None:
        for i in range(300):
            ddb.put_item(TableName=TABLE, Item=_key("new", f"{i:05d}"))

    def deletes() -> None:
        for i in range(300):
            ddb.delete_item(TableName=TABLE, Key=_key("old", f"{i:05d}"))

    def cancelling(worker: int) -> None:
        n = 0
        while not done.is_set():
            n += 1
            try:
                ddb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": TABLE, "Item": _key("txn", f"{worker}-{n}")}},
                        {
                            "Update": {
                                "TableName": TABLE,
                                "Key": _key("old", f"{PREFILL - 1 - worker:05d}"),
                                "UpdateExpression": "SET n = :n",
                                "ExpressionAttributeValues": {":n": {"N": str(n)}},
                            }
                        },
                        {
                            "ConditionCheck": {
                                "TableName": TABLE,
                                "Key": _key("missing", "x"),
                                "ConditionExpression": "attribute_exists(pk)",
                            }
                        },
                    ]
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    errors.append(exc)
                    return
                cancelled[0] += 1
            except Exception as exc:  # moto's snapshot: "dictionary changed size during iteration"
                errors.append(exc)

    writers = [threading.Thread(target=puts), threading.Thread(target=deletes)]
    cancellers = [threading.Thread(target=cancelling, args=(w,)) for w in range(2)]
    for t in cancellers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in cancellers:
        t.join()

    assert cancelled[0] > 0
    assert _keys(ddb, "new") == {f"{i:05d}" for i in range(300)}  # every acknowledged put is there
    assert _keys(ddb, "old") == {f"{i:05d}" for i in range(300, PREFILL)}  # every delete stayed done
    assert _keys(ddb, "txn") == set()  # and no cancelled transaction wrote anything
    untouched = ddb.get_item(TableName=TABLE, Key=_key("old", f"{PREFILL - 1:05d}"))["Item"]
    assert "n" not in untouched
    assert errors == []


def test_a_transaction_that_fails_while_writing_puts_back_only_its_own_items(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item={**_key("a", "1"), "v": {"S": "before"}})
    ddb.put_item(TableName=TABLE, Item={**_key("b", "1"), "v": {"S": "kept"}})
    big = "x" * 300_000  # two of these make the item exceed 400 KB: moto only finds out while writing
    ddb.put_item(TableName=TABLE, Item={**_key("c", "1"), "v": {"S": big}})
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**_key("a", "1"), "v": {"S": "after"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": _key("c", "1"),
                        "UpdateExpression": "SET w = :w",
                        "ExpressionAttributeValues": {":w": {"S": big}},
                    }
                },
            ]
        )
    assert err.value.response["Error"]["Code"] in ("TransactionCanceledException", "ValidationException")
    assert ddb.get_item(TableName=TABLE, Key=_key("a", "1"))["Item"]["v"] == {"S": "before"}
    assert ddb.get_item(TableName=TABLE, Key=_key("b", "1"))["Item"]["v"] == {"S": "kept"}
    assert "w" not in ddb.get_item(TableName=TABLE, Key=_key("c", "1"))["Item"]
