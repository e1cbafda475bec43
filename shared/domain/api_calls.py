"""The event API's calls (Segment-compatible track, identify, batch) and their validation.

A storefront call is validated here once, at the edge: all calls of a request pass, or every
error is returned with its index and field; the valid ones become canonical events
(shared/domain/events.py), the only form anything downstream reads.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from shared.domain import limits
from shared.domain.api_properties import CLEARABLE_TRAITS, TRACK_PROPERTIES, OpenModel, Traits
from shared.domain.events import RESERVED_EVENTS, CanonicalEvent, canonical_event_name

MAX_CALLS_PER_BATCH = 100
MAX_BODY_BYTES = 500 * 1024
MAX_CALL_BYTES = 32 * 1024  # Segment's per-call limit; keeps every bus entry far below 256 KB

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")

_ID = r"^[^\x00-\x1f]+$"


class Call(OpenModel):
    type: Literal["track", "identify", "page", "screen", "group", "alias"]
    messageId: str | None = Field(default=None, min_length=1, max_length=200, pattern=_ID)
    userId: str | None = Field(default=None, min_length=1, max_length=255, pattern=_ID)
    anonymousId: str | None = Field(default=None, min_length=1, max_length=255, pattern=_ID)
    timestamp: str | None = None
    event: str | None = Field(default=None, min_length=1, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("userId", "anonymousId", "messageId", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            parsed = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("must be an ISO-8601 date-time such as 2026-11-23T10:00:00Z") from exc
        if parsed.tzinfo is None:
            raise ValueError("must include a time zone offset or Z")
        return v

    @field_validator("event")
    @classmethod
    def _not_reserved_event(cls, v: str | None) -> str | None:
        if v is not None and canonical_event_name(v) in RESERVED_EVENTS:
            raise ValueError(
                f"'{canonical_event_name(v)}' is sent by Boomerang itself; a store cannot send it"
            )
        return v

    @model_validator(mode="after")
    def _shape(self) -> Call:
        if not (self.userId or self.anonymousId):
            raise ValueError("userId or anonymousId is required")
        if self.type == "track":
            if not self.event:
                raise ValueError("event is required for a track call")
            self.event = canonical_event_name(self.event)
        return self


class ApiError(BaseModel):
    index: int
    field: str
    message: str


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _errors(index: int, prefix: str, exc: ValidationError) -> list[ApiError]:
    out = []
    for e in exc.errors():
        loc = _loc(tuple(e.get("loc", ())))
        field = ".".join(p for p in (prefix, loc) if p) or "(call)"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "literal_error" and "expected" in (e.get("ctx") or {}):
            msg = f"must be one of {e['ctx']['expected']}"
        out.append(ApiError(index=index, field=field, message=msg))
    return out


def _plain(value: Any) -> Any:
    """Models to JSON-ready values; money stays exact as a string-free number."""
    return json.loads(json.dumps(value, default=lambda o: float(o) if isinstance(o, Decimal) else str(o)))


# Set per request attempt by SDKs, so not part of what a call is (a retry must derive the same id).
_PER_ATTEMPT = ("sentAt", "writeKey")


def _derived_message_id(store_id: str, raw: dict[str, Any]) -> str:
    # No messageId: derive one from the content, so the same call sent again is still deduplicated.
    content = {k: v for k, v in raw.items() if k not in _PER_ATTEMPT}
    body = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return "derived-" + hashlib.sha256(f"{store_id}\n{body}".encode()).hexdigest()[:32]


_CONTEXT_TEXT = ("timezone", "locale")  # the fold reads these: kept only as text
# personal data no rule reads: the IP address, and context.traits (a copy of the customer's traits,
# emails included, that identify calls carry where they belong)
_CONTEXT_DROPPED = ("ip", "traits")


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def skew_corrected(timestamp: str | None, sent_at: str | None, received_at: float) -> str | None:
    """Segment's rule: a client clock that is off by d is off by d in both `timestamp` and `sentAt`,
    so timestamp + (receivedAt - sentAt) is the event's time on the server's clock."""
    ts, sent = _parse_ts(timestamp), _parse_ts(sent_at)
    if ts is None or sent is None:
        return timestamp
    corrected = ts + (datetime.fromtimestamp(received_at, tz=UTC) - sent)
    return corrected.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _context(call: Call, original_timestamp: str | None, corrected: str | None) -> dict[str, Any]:
    # Segment's context (library, page, campaign, userAgent, ...) is kept for analytics
    context = _plain({k: v for k, v in call.context.items() if k not in _CONTEXT_TEXT + _CONTEXT_DROPPED})
    context.update({k: call.context[k] for k in _CONTEXT_TEXT if isinstance(call.context.get(k), str)})
    if corrected != original_timestamp:
        context["original_timestamp"] = original_timestamp
    return context


def normalise(
    calls: list[Any], store_id: str, received_at: float, batch_sent_at: str | None = None
) -> tuple[list[CanonicalEvent], list[ApiError]]:
    """Validate every call; return canonical events, or the full list of errors (all or nothing).
    `timestamp` is corrected for the client's clock skew when the call (or batch) has `sentAt`."""
    events: list[CanonicalEvent] = []
    errors: list[ApiError] = []
    for i, raw in enumerate(calls):
        if not isinstance(raw, dict):
            errors.append(ApiError(index=i, field="(call)", message="each call must be a JSON object"))
            continue
        # before any model reads it: text, nesting and numbers that can be stored, traits bounded
        problems = limits.first_problems(raw) or limits.trait_problems(raw.get("traits"))
        if problems:
            errors += [ApiError(index=i, field=f, message=m) for f, m in problems]
            continue
        size = len(json.dumps(raw, default=str).encode())
        if size > MAX_CALL_BYTES:
            errors.append(
                ApiError(
                    index=i, field="(call)", message=f"call is {size} bytes; at most {MAX_CALL_BYTES} allowed"
                )
            )
            continue
        try:
            call = Call.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_errors(i, "", exc))
            continue
        properties: dict[str, Any] = call.properties
        traits: dict[str, Any] = call.traits
        try:
            if call.type == "track" and call.event in TRACK_PROPERTIES:
                model = TRACK_PROPERTIES[call.event]
                properties = _plain(model.model_validate(call.properties).model_dump(exclude_none=True))
            if call.type == "identify":
                parsed = Traits.model_validate(call.traits)
                traits = _plain(parsed.model_dump(exclude_none=True))
                # an explicit null (or "") clears these; kept as null so the fold sees it
                traits.update(
                    {
                        n: None
                        for n in CLEARABLE_TRAITS
                        if n in parsed.model_fields_set and traits.get(n) is None
                    }
                )
        except ValidationError as exc:
            errors.extend(_errors(i, "properties" if call.type == "track" else "traits", exc))
            continue
        sent = raw.get("sentAt") if isinstance(raw.get("sentAt"), str) else batch_sent_at
        timestamp = skew_corrected(call.timestamp, sent, received_at)
        events.append(
            CanonicalEvent(
                message_id=call.messageId or _derived_message_id(store_id, raw),
                store_id=store_id,
                type=call.type,
                event=call.event if call.type == "track" else None,
                user_id=call.userId,
                anonymous_id=call.anonymousId,
                properties=_plain(properties),
                traits=_plain(traits),
                timestamp=timestamp,
                received_at=received_at,
                context=_context(call, call.timestamp, timestamp),
            )
        )
    return (events, []) if not errors else ([], errors)
