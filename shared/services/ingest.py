"""The event API's decisions, kept apart from the HTTP plumbing in functions/ingest/handler.py."""

from __future__ import annotations

import base64
import binascii
import json
import zlib
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
    "send your store's write key as the HTTP Basic user name (Segment style), in the x-api-key header "
    "or as writeKey in the body"
)
# What every ingest route inflates; "identity" is the absence of an encoding (RFC 9110).
CONTENT_ENCODINGS = ("gzip", "x-gzip", "deflate", "identity")
RETRY_AFTER_S = 5  # what 503 (and the gateway's 429) tell SDKs to wait before resending
_INFLATE_CHUNK = 64 * 1024


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


def _too_large(what: str, size: str, limit: int) -> ApiProblem:
    return ApiProblem(413, "payload_too_large", f"{what} is {size} bytes; at most {limit} allowed")


def _inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """Inflate one layer, stopping as soon as the output passes `limit` (a zip bomb costs at most
    `limit` bytes of memory, never its declared size)."""
    # gzip: the gzip header (wbits 16+); deflate: RFC 9110 means zlib-wrapped, but some clients send
    # raw deflate, so a missing zlib header is tried again as raw
    attempts = (zlib.MAX_WBITS | 16,) if encoding in ("gzip", "x-gzip") else (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    for n, wbits in enumerate(attempts):
        inflater = zlib.decompressobj(wbits)
        out = bytearray()
        pending = data
        try:
            while pending:
                out += inflater.decompress(pending, min(_INFLATE_CHUNK, limit + 1 - len(out)))
                if len(out) > limit:
                    raise _too_large("decompressed body", f"over {limit}", limit)
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    break
            out += inflater.flush(limit + 1 - len(out))
        except zlib.error as exc:
            if n + 1 < len(attempts):
                continue
            raise ApiProblem(
                400,
                "malformed_body",
                f"body is not valid {encoding} data (Content-Encoding: {encoding}): {exc}",
            ) from exc
        if not inflater.eof:
            if n + 1 < len(attempts):
                continue
            raise ApiProblem(400, "malformed_body", f"body is truncated {encoding} data")
        if len(out) > limit:
            raise _too_large("decompressed body", f"over {limit}", limit)
        return bytes(out)
    raise AssertionError("unreachable")


def content_encodings(headers: dict[str, str] | None) -> list[str]:
    """The Content-Encoding layers in the order they were applied; 415 for one we cannot undo."""
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    layers = [e.strip().lower() for e in (lower.get("content-encoding") or "").split(",") if e.strip()]
    for layer in layers:
        if layer not in CONTENT_ENCODINGS:
            raise ApiProblem(
                415,
                "unsupported_encoding",
                f"Content-Encoding {layer!r} is not supported; send gzip, deflate or no Content-Encoding",
            )
    return [e for e in layers if e != "identity"]


def read_body(
    raw: str | None, is_base64: bool, headers: dict[str, str] | None = None, limit: int | None = None
) -> bytes:
    """The request body as the client meant it: base64 undone (API Gateway's binary media types),
    then every Content-Encoding layer, within the body limit before and after inflating."""
    from shared.domain.api_calls import MAX_BODY_BYTES

    limit = limit or MAX_BODY_BYTES
    encodings = content_encodings(headers)
    if encodings and not is_base64 and "\ufffd" in (raw or ""):
        # compressed bytes handed over as text: what was not UTF-8 is lost, so say how to send it
        raise ApiProblem(
            400,
            "malformed_body",
            "the compressed body arrived as text and was altered on the way; send it with a binary "
            "Content-Type such as application/octet-stream",
        )
    try:
        data = (raw or "").encode("utf-8") if not is_base64 else base64.b64decode(raw or "")
    except (binascii.Error, ValueError) as exc:
        raise ApiProblem(400, "malformed_body", "body is not valid base64") from exc
    if len(data) > limit:
        raise _too_large("body", str(len(data)), limit)
    for encoding in reversed(encodings):
        data = _inflate(data, encoding, limit)
    return data


def parse_json(body: bytes) -> Any:
    """The body's JSON; integers too long to store and NaN/Infinity come back as markers that
    limits.check() names with their field (a 400 with the call's index, not a crash)."""
    from shared.domain import limits

    try:
        return limits.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # past the parser's own stack: far beyond MAX_DEPTH anyway
        raise ApiProblem(
            400,
            "malformed_json",
            f"body is nested too deeply; at most {limits.MAX_DEPTH} levels are allowed in a call",
        ) from exc


def check_envelope(payload: Any, route: str) -> None:
    """400 for a value outside the calls that could not be read or stored (a writeKey or sentAt with
    a lone surrogate, a huge number): the calls themselves are checked one by one by normalise()."""
    from shared.domain import limits
    from shared.domain.api_calls import ApiError

    if not isinstance(payload, dict):
        return
    calls_part = (
        ("batch",) if route == "batch" else tuple(k for k in payload if k not in ("writeKey", "sentAt"))
    )
    envelope = {k: v for k, v in payload.items() if k not in calls_part}
    problems = limits.first_problems(envelope)
    if problems:
        errors = [ApiError(index=-1, field=f, message=m) for f, m in problems]
        raise ApiProblem(
            400, "invalid_body", f"{len(errors)} problem(s) outside the calls; nothing was accepted", errors
        )


def write_key_from_body(payload: Any) -> str | None:
    """Segment's libraries also put the write key in the body (`writeKey`): the third way in."""
    key = payload.get("writeKey") if isinstance(payload, dict) else None
    return key.strip() or None if isinstance(key, str) else None


def parse_calls(payload: Any, route: str) -> list[Any]:
    """The calls a request carries: a batch, or one track/identify call whose type the path implies.
    Envelope fields (`writeKey`, `sentAt`, batch-level `context`) are not part of a call."""
    from shared.domain.api_calls import MAX_CALLS_PER_BATCH, ApiError

    if isinstance(payload, bytes | bytearray):
        payload = parse_json(bytes(payload))
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
        shared_context = payload.get("context")
        if isinstance(shared_context, dict):  # Segment's batch-level context applies to every call
            calls = [
                {**c, "context": {**shared_context, **(c.get("context") or {})}}
                if isinstance(c, dict) and isinstance(c.get("context", {}), dict)
                else c  # a call's context that is not an object (even []) is its own validation error
                for c in calls
            ]
        return calls
    payload = {k: v for k, v in payload.items() if k not in ("writeKey", "sentAt")}
    payload.setdefault("type", route)
    if payload["type"] != route:
        raise ApiProblem(
            400,
            "invalid_body",
            f"/v1/{route} takes {route} calls",
            [ApiError(index=0, field="type", message=f"must be '{route}' on this path, or use /v1/batch")],
        )
    return [payload]


def sent_at(payload: Any) -> str | None:
    """The batch's `sentAt` (the client's clock when it sent the request), if any."""
    value = payload.get("sentAt") if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


def validate(
    calls: list[Any], store_id: str, received_at: float, batch_sent_at: str | None = None
) -> list[CanonicalEvent]:
    from shared.domain.api_calls import normalise

    events, errors = normalise(calls, store_id, received_at, batch_sent_at)
    if errors:
        raise ApiProblem(400, "validation_failed", f"{len(errors)} problem(s); nothing was accepted", errors)
    return events
