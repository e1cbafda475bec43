"""AWS clients, built lazily and once per container (never at import time), plus DynamoDB codecs."""

from __future__ import annotations

import threading
from decimal import Decimal
from functools import cache
from typing import Any

_lock = threading.Lock()


@cache
def client(service: str) -> Any:
    # boto3 is imported here, not at module import, so cold starts only pay for what a handler uses.
    with _lock:
        import boto3
        from botocore.config import Config

        # A few quick SDK retries; longer throttling is retried by Step Functions (with the claim given back),
        # so a handler never sits out its timeout in back-off sleeps.
        # Message providers get one attempt: an SDK retry after a read timeout could deliver a message
        # the provider had already accepted. Throttles come back to the journey step instead, which
        # gives its claim back for Step Functions' retry (a rejected request is safe to repeat).
        # (botocore's `max_attempts` counts retries, `total_max_attempts` the first call too: a send's
        # `max_attempts: 1` was one retry, and standard mode retries a read timeout.)
        if service in SEND_SERVICES:
            cfg = Config(
                retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=10
            )
        else:
            cfg = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=3, read_timeout=10)
        return boto3.client(service, config=cfg)  # type: ignore[call-overload]


SEND_SERVICES = ("sesv2", "sns", "pinpoint")


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials)."""
    client.cache_clear()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value


@cache
def _codecs() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """A plain dict to DynamoDB's wire format (floats become exact Decimals, None is dropped)."""
    ser, _ = _codecs()
    return {k: ser.serialize(v) for k, v in _to_dynamo(data).items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    _, de = _codecs()
    return {k: _from_dynamo(de.deserialize(v)) for k, v in item.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}
