"""Data-subject requests made through the API: parsed and checked at the door (the ingest λ), an
erasure carried out later by the privacy λ from the bus event the door published."""

from __future__ import annotations

import json
import uuid
from typing import Any

from shared.services.privacy.collect import BadRequest, Who
from shared.services.privacy.erase import Eraser

FIELDS = ("customer", "email", "phone")


def who_from(store_id: str, params: dict[str, Any]) -> Who:
    """The person a request names (query string or JSON body): exactly one of FIELDS."""
    unknown = sorted(set(params) - {*FIELDS, "format"})
    if unknown:
        raise BadRequest(unknown[0], f"unknown field; allowed: {', '.join(FIELDS)} (and format for exports)")
    values = {}
    for name in FIELDS:
        v = params.get(name)
        if v is not None and not isinstance(v, str):
            raise BadRequest(name, "must be a string")
        values[name] = v or None
    return Who(store_id=store_id, **values).check()


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # (a 4,300+ digit integer, nesting past the parser's stack)
        raise BadRequest("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body", 'expected a JSON object such as {"customer": "u:123"}')
    from shared.domain import limits

    for field, message in limits.first_problems(data, limit=1):  # e.g. a lone surrogate: never hashable
        raise BadRequest(field, message)
    return data


def erasure_request(who: Who, requested_at: float) -> dict[str, Any]:
    """The bus event's detail; request_id lets the store match the privacy λ's log line."""
    detail: dict[str, Any] = {
        "store_id": who.store_id,
        "requested_at": requested_at,
        "request_id": uuid.uuid4().hex,
    }
    detail.update({n: getattr(who, n) for n in FIELDS if getattr(who, n)})
    return detail


def is_retention_run(body: dict[str, Any]) -> bool:
    """The monthly schedule's event (infra/description.py monthly-retention)."""
    return body.get("detail-type") == "Scheduled Event" or body.get("task") == "retention"


def run_erasure_request(body: dict[str, Any], eraser: Eraser) -> dict[str, Any]:
    """An erasure request as the privacy λ receives it (an EventBridge event in an SQS message)."""
    detail = body.get("detail", body)
    who = who_from(str(detail.get("store_id") or ""), {n: detail.get(n) for n in FIELDS})
    result = eraser.erase(who, requested_at=float(detail["requested_at"]))
    return {"store": who.store_id, "request_id": detail.get("request_id"), **result.as_dict()}
