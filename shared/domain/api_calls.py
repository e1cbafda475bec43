"""The event API's calls (Segment-compatible track, identify, batch) and their validation.

A storefront call is validated here once, at the edge: all calls of a request pass, or every
error is returned with its index and field; the valid ones become canonical events
(shared/domain/events.py), the only form anything downstream reads.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

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
        from datetime import datetime

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


def _derived_message_id(store_id: str, raw: dict[str, Any]) -> str:
    # No messageId: derive one from the content, so the same call sent again is still deduplicated.
    body = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "derived-" + hashlib.sha256(f"{store_id}\n{body}".encode()).hexdigest()[:32]


_CONTEXT_KEEP = ("timezone", "locale")


def normalise(
    calls: list[Any], store_id: str, received_at: float
) -> tuple[list[CanonicalEvent], list[ApiError]]:
    """Validate every call; return canonical events, or the full list of errors (all or nothing)."""
    events: list[CanonicalEvent] = []
    errors: list[ApiError] = []
    for i, raw in enumerate(calls):
        if not isinstance(raw, dict):
            errors.append(ApiError(index=i, field="(call)", message="each call must be a JSON object"))
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
        context = {k: call.context[k] for k in _CONTEXT_KEEP if isinstance(call.context.get(k), str)}
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
                timestamp=call.timestamp,
                received_at=received_at,
                context=context,
            )
        )
    return (events, []) if not errors else ([], errors)
