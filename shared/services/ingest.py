"""The event API's decisions, kept apart from the HTTP plumbing in functions/ingest/handler.py."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.domain.api_calls import ApiError
    from shared.domain.events import CanonicalEvent

# shared.domain.api_calls (its pydantic models) is imported by the functions that use it, not here: the
# ingest λ imports this module for ApiProblem at cold start and pays for the models on first use.


class ApiProblem(Exception):
    """An error answer: HTTP status plus a JSON body that says what is allowed."""

    def __init__(self, status: int, error: str, message: str, errors: list[ApiError] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"success": False, "error": self.error, "message": self.message}
        if self.errors:
            out["errors"] = [e.model_dump() for e in self.errors]
        return out


UNAUTHORIZED = (
    "send your store's write key as the HTTP Basic user name (Segment style) or in the x-api-key header"
)


def api_key_from_headers(headers: dict[str, str]) -> str | None:
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    if lower.get("x-api-key"):
        return lower["x-api-key"].strip()
    auth = lower.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.split(":", 1)[0].strip() or None
    return None


def read_body(raw: str | None, is_base64: bool) -> bytes:
    from shared.domain.api_calls import MAX_BODY_BYTES

    data = (raw or "").encode("utf-8") if not is_base64 else base64.b64decode(raw or "")
    if len(data) > MAX_BODY_BYTES:
        raise ApiProblem(
            413, "payload_too_large", f"body is {len(data)} bytes; at most {MAX_BODY_BYTES} allowed"
        )
    return data


def parse_calls(body: bytes, route: str) -> list[Any]:
    """The calls a request carries: a batch, or one track/identify call whose type the path implies."""
    from shared.domain.api_calls import MAX_CALLS_PER_BATCH, ApiError

    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ApiProblem(400, "invalid_body", "body must be a JSON object")
    if route == "batch":
        calls = payload.get("batch")
        if not isinstance(calls, list):
            raise ApiProblem(
                400,
                "invalid_body",
                'body must be {"batch": [...]} with a list of track/identify calls',
                [ApiError(index=-1, field="batch", message="required: a list of calls")],
            )
        if len(calls) > MAX_CALLS_PER_BATCH:
            raise ApiProblem(
                413, "batch_too_large", f"batch has {len(calls)} calls; at most {MAX_CALLS_PER_BATCH} allowed"
            )
        if not calls:
            raise ApiProblem(400, "invalid_body", "batch is empty; send 1 to 100 calls")
        return calls
    payload.setdefault("type", route)
    if payload["type"] != route:
        raise ApiProblem(
            400,
            "invalid_body",
            f"/v1/{route} takes {route} calls",
            [ApiError(index=0, field="type", message=f"must be '{route}' on this path, or use /v1/batch")],
        )
    return [payload]


def validate(calls: list[Any], store_id: str, received_at: float) -> list[CanonicalEvent]:
    from shared.domain.api_calls import normalise

    events, errors = normalise(calls, store_id, received_at)
    if errors:
        raise ApiProblem(400, "validation_failed", f"{len(errors)} problem(s); nothing was accepted", errors)
    return events
