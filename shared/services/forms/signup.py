"""The signup form's public endpoints: its configuration, and a submission.

Order of checks on a submission, cheapest and most decisive first, so abuse costs little and a
refused request stores nothing: the publishable key (one cached read) -> the store's form is on ->
the Origin is on the store's allow-list (403, and no CORS headers, so a foreign page cannot even
read the answer) -> the body's size (8 KB) -> the rate limits per IP and per store (429; held in
the table across λ instances, shared/adapters/rate_limits.py) -> the honeypot -> every field.
Only then are the event API's calls built (shared/domain/forms.py) and checked by the same models
(`shared.services.ingest.validate`) and published on the bus, exactly as `POST /v1/batch` does.

A filled honeypot gets the same 200 as a real signup and nothing is stored: a bot told "refused"
learns which field gave it away; one told "thanks" moves on. It still counts against the limits.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.domain.forms import (
    MAX_SUBMISSION_BYTES,
    FormConfig,
    SubmissionInvalid,
    check_submission,
    honeypot_filled,
    signup_calls,
)
from shared.services.ingest import ApiProblem, parse_json, read_body, validate

if TYPE_CHECKING:
    from shared.adapters.rate_limits import Limit, RateLimiter
    from shared.domain.events import CanonicalEvent
    from shared.domain.stores import Store

CONFIG_MAX_AGE_S = 300  # the pop-up's settings: a change reaches pages within 5 minutes
PREFLIGHT_MAX_AGE_S = 86400


@dataclass
class FormAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str = "ok"  # for the log and metrics: ok, honeypot, refused_origin, limited, invalid, ...


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _problem(
    status: int, error: str, message: str, headers: dict[str, str], outcome: str, **extra: Any
) -> FormAnswer:
    return FormAnswer(
        status, {"success": False, "error": error, "message": message, **extra}, headers, outcome
    )


def _origin(headers: dict[str, str] | None) -> str | None:
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    value = (lower.get("origin") or "").strip().lower().rstrip("/")
    return value or None


@dataclass
class FormService:
    store_for_key: Callable[[str], str | None]
    store: Callable[[str], Store | None]
    limiter: RateLimiter
    publish: Callable[[list[CanonicalEvent]], Any]

    def _form(self, form_key: str) -> tuple[str, FormConfig] | FormAnswer:
        store_id = self.store_for_key(form_key)
        store = self.store(store_id) if store_id else None
        if store is None or store.form is None or not store.form.enabled:
            return _problem(
                404,
                "not_found",
                "no signup form with this key (rotated, or the form is off)",
                {},
                "unknown_key",
            )
        return store_id or "", store.form

    def _allowed(self, form: FormConfig, headers: dict[str, str] | None) -> str | FormAnswer:
        origin = _origin(headers)
        if origin is None or origin not in form.allowed_origins:
            return _problem(
                403,
                "forbidden_origin",
                "this page's origin may not use this form; the store lists its sites in form.allowed_origins",
                {"Vary": "Origin"},
                "refused_origin",
            )
        return origin

    def config(self, form_key: str, headers: dict[str, str] | None) -> FormAnswer:
        found = self._form(form_key)
        if isinstance(found, FormAnswer):
            return found
        _, form = found
        origin = self._allowed(form, headers)
        if isinstance(origin, FormAnswer):
            return origin
        return FormAnswer(
            200, form.public(), {**_cors(origin), "Cache-Control": f"public, max-age={CONFIG_MAX_AGE_S}"}
        )

    def preflight(self, form_key: str, headers: dict[str, str] | None) -> FormAnswer:
        found = self._form(form_key)
        if isinstance(found, FormAnswer):
            return found
        origin = self._allowed(found[1], headers)
        if isinstance(origin, FormAnswer):
            return origin
        return FormAnswer(
            204,
            {},
            {
                **_cors(origin),
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            },
        )

    def unavailable(self, headers: dict[str, str] | None) -> FormAnswer:
        """The bus refused the events: nothing was stored; the same submission may be sent again."""
        origin = _origin(headers)
        cors = _cors(origin) if origin else {}
        return _problem(
            503,
            "unavailable",
            "your signup could not be saved right now; try again",
            {**cors, "Retry-After": "5"},
            "unavailable",
        )

    def submit(
        self,
        form_key: str,
        headers: dict[str, str] | None,
        raw: str | None,
        is_base64: bool,
        source_ip: str,
        received_at: float,
    ) -> FormAnswer:
        found = self._form(form_key)
        if isinstance(found, FormAnswer):
            return found
        store_id, form = found
        origin = self._allowed(form, headers)
        if isinstance(origin, FormAnswer):
            return origin
        cors = _cors(origin)
        try:
            payload = parse_json(read_body(raw, is_base64, headers, limit=MAX_SUBMISSION_BYTES))
        except ApiProblem as exc:
            return _problem(exc.status, exc.error, exc.message, cors, "bad_body")
        over = self.limiter.take(_limits(store_id, form, source_ip))
        if over is not None:
            # the limits run on wall-clock time (rate_limits.py), so does the wait they ask for
            retry = max(1, math.ceil(over.window_s - self.limiter.now() % over.window_s))
            return _problem(
                429,
                "too_many_requests",
                "too many signups from here right now; try again later",
                {**cors, "Retry-After": str(min(retry, over.window_s))},
                "limited",
            )
        store = self.store(store_id)
        double_opt_in = bool(store and store.double_opt_in_email)
        if honeypot_filled(payload):  # the answer a person would get: nothing tells the bot apart
            asked = isinstance(payload.get("consent"), dict) and payload["consent"].get("email") is True
            return FormAnswer(200, _done(double_opt_in and asked), cors, "honeypot")
        today = datetime.fromtimestamp(received_at, UTC).date()
        try:
            submission = check_submission(form, payload, origin, today)
        except SubmissionInvalid as exc:
            return _problem(
                400,
                "validation_failed",
                f"{len(exc.problems)} problem(s); nothing was stored",
                cors,
                "invalid",
                errors=[p.model_dump() for p in exc.problems],
            )
        try:
            events = validate(signup_calls(form, submission), store_id, received_at)
        except ApiProblem as exc:  # the event API's own models agree with the form's; kept as a net
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
            return _problem(400, exc.error, exc.message, cors, "invalid", errors=errors)
        self.publish(events)  # PublishFailed: the handler answers 503 (a resend is folded once)
        return FormAnswer(200, _done(double_opt_in and bool(submission.consent.get("email"))), cors)


def _done(pending: bool) -> dict[str, Any]:
    return {"success": True, "status": "pending_confirmation" if pending else "subscribed"}


def _limits(store_id: str, form: FormConfig, source_ip: str) -> list[Limit]:
    from shared.adapters.rate_limits import Limit

    # hashed with the store: the table never holds an IP address, and one store's counts say
    # nothing about a visitor's activity on another store
    ip = hashlib.sha256(f"{store_id}|{source_ip}".encode()).hexdigest()[:32]
    return [
        Limit(f"form-ip#{store_id}#{ip}", form.limits.per_ip_per_hour, 3600),
        Limit(f"form-store#{store_id}", form.limits.per_store_per_minute, 60),
    ]
