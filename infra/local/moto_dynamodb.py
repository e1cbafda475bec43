"""DynamoDB writes in moto made as atomic and isolated as DynamoDB's own (installed by the emulator).

moto 5.2.5 gets three things wrong under concurrency, and Boomerang's exactly-once records depend on
all three:

- a cancelled TransactWriteItems restores a deep copy of the *whole table* taken when it started,
  undoing every write other requests made (and were told succeeded) in the meantime: in a race test
  13 of 300 puts and 16 of 300 deletes vanished, which sent a cart email twice and dropped a
  reminder under throttling;
- that deep copy iterates the table while other threads write it ("dictionary changed size during
  iteration"), as do Query and Scan;
- UpdateItem edits the stored item in place: a reader serialising it at the same moment sees half
  an update, and an update that fails half-way (item over 400 KB) stays half-applied.

`install()` replaces them, process-wide, with what DynamoDB guarantees:

- one lock serialises every read and write of item data in the backend (moto answers one request
  at a time per item anyway; the lock makes each request one step);
- UpdateItem is copy-on-write: it edits a copy, and puts the stored item back if it fails;
- TransactWriteItems checks every condition first and writes nothing unless all pass; if a write
  still fails (a validation moto only finds while writing), only the items this transaction wrote
  are put back. Cancellation reasons keep moto's wording and order.

The emulator installs it at start (infra/local/emulator.py) and the integration tests' `mock_aws`
worlds do too (tests/integration/conftest.py): same code path, same guarantees.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
# Backend methods that read or write item data; each runs as one step under the lock.
_SERIALISED = (
    "put_item",
    "get_item",
    "delete_item",
    "query",
    "scan",
    "export_table",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def install() -> None:
    """Patch moto's DynamoDB backend (idempotent; affects the whole process, server and mock_aws)."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_boomerang_atomic", False):
        return
    for name in _SERIALISED:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.update_item = _copy_on_write(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign, assignment]
    DynamoDBBackend._boomerang_atomic = True  # type: ignore[attr-defined]


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def _store(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    """Put `item` (None: nothing) back under its key, bypassing conditions, as it was."""
    if item is not None:
        if range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item
    elif range_key is not None:
        if hash_key in table.items:
            table.items[hash_key].pop(range_key, None)
            if not table.items[hash_key]:
                del table.items[hash_key]
    else:
        table.items.pop(hash_key, None)


def _keys(backend: Any, table: Any, key: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return hash_key, range_key


def _copy_on_write(update_item: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(update_item)
    def update(backend: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            table = backend.get_table(table_name)
            try:
                hash_key, range_key = _keys(backend, table, key)
            except (KeyError, TypeError):
                return update_item(backend, table_name, key, *args, **kwargs)  # moto words the error
            before = table.get_item(hash_key, range_key)
            if before is not None:
                # readers holding `before` keep a whole item; the update edits a copy
                _store(table, hash_key, range_key, copy.deepcopy(before))
            try:
                return update_item(backend, table_name, key, *args, **kwargs)
            except BaseException:
                _store(table, hash_key, range_key, before)
                raise

    return update


def _transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _LOCK:
        # 1. Check everything, writing nothing.
        ops: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        targets: set[tuple[str, str]] = set()
        reasons: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            old: dict[str, Any] | None = None
            try:
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                if op_type == "Put":
                    table = backend.get_table(table_name)
                    attrs = op["Item"]
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                target = (str(table_name), str(dict(sorted(key.items()))))
                if target in targets:
                    raise MultipleTransactionsException()
                targets.add(target)
                ops.append((op_type, op, key))
                current = backend.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    check = get_filter_expression(
                        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    )
                    if not check.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            old = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=old)
                reasons.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise  # nothing written yet: a plain validation error, as before
            except ConditionalCheckFailed as exc:
                reasons.append(("ConditionalCheckFailed", str(exc.message), old))
            except Exception as exc:  # noqa: BLE001 - moto reports any other failure as a reason too
                reasons.append((type(exc).__name__, str(exc), old))
        if any(code is not None for code, _, _ in reasons):
            raise TransactionCanceledException(reasons)

        # 2. Write, remembering what each item was, to put back only those if a write fails.
        written: list[tuple[Any, Any, Any, Any]] = []
        for index, (op_type, op, key) in enumerate(ops):
            if op_type == "ConditionCheck":
                continue
            table = backend.get_table(op["TableName"])
            hash_key, range_key = _keys(backend, table, key)
            written.append((table, hash_key, range_key, table.get_item(hash_key, range_key)))
            try:
                _write(backend, op_type, op, key)
            except BaseException as exc:
                for table_, hash_, range_, before in reversed(written):
                    _store(table_, hash_, range_, before)
                if isinstance(exc, MockValidationException) or not isinstance(exc, Exception):
                    raise
                failed: list[tuple[Any, Any, Any]] = [(None, None, None)] * len(ops)
                failed[index] = (type(exc).__name__, str(exc), None)
                raise TransactionCanceledException(failed) from exc


def _write(backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(
            op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values
        )
    elif op_type == "Delete":
        backend.delete_item(
            op["TableName"], key, expression_attribute_names=names, expression_attribute_values=values
        )
    else:
        backend.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
