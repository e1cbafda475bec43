"""Forwarding orders to fulfilment partners: split, send, retry for 24 hours, record every answer.

Why a λ and not EventBridge API destinations: every partner's body is signed (HMAC-SHA256 over a
timestamp and the body), some want their own JSON shape (a Jinja2 template), and each attempt and the
partner's answer must be recorded on the order; API destinations can compute no HMAC, render no
template and report no answer. So the partners queue (fed by the bus rule on order events) drives
this service, which makes each attempt itself and schedules the next one as a delayed message on the
same queue (README "Fulfilment partners").

Messages on the queue:
- an order event (Order Completed / Cancelled / Refunded): split the order, open one forward per
  partner (a replayed event finds them open and sends nothing again), make attempt 1;
- an attempt task ``{"task": "partner-attempt", ...}``: attempt n of one forward, claimed exactly once;
- a shipping update (Order Shipped / Delivered, published by the inbound route): recorded on the
  forward, for `boomerang orders show` and the report's fulfilment speed.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.adapters.fulfilment_store import OPEN, FulfilmentStore
from shared.adapters.partner_catalog import PartnerCatalog
from shared.adapters.partner_http import (
    Answer,
    OAuthTokens,
    PartnerSecretMissing,
    PartnerSecrets,
    auth_headers,
)
from shared.domain.events import (
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_DELIVERED,
    ORDER_REFUNDED,
    ORDER_SHIPPED,
)
from shared.domain.partners import (
    IDEMPOTENCY_HEADER,
    ORDER_FORMAT_VERSION,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Action,
    Partner,
    body_bytes,
    classify,
    idempotency_key,
    order_document,
    rate_window,
    retry_delay,
    signature,
    split_order,
)
from shared.platform import clock

log = logging.getLogger("boomerang")
TASK = "partner-attempt"
MAX_SQS_DELAY = 900  # SQS DelaySeconds ceiling; a longer wait is a chain of delayed messages
# a claimed attempt whose λ died before recording may be taken again after this (real seconds)
STALE_CLAIM_REAL_SECONDS = 120
RATE_ITEM_TTL_S = 3600  # a rate window's counter is deleted by the table's TTL after this


@dataclass
class ForwardDeps:
    catalog: PartnerCatalog
    store: FulfilmentStore
    secrets: PartnerSecrets
    post: Callable[[str, dict[str, str], bytes, float], Answer]
    send_task: Callable[[dict[str, Any], int], None]  # (task, delay in real seconds)
    dead_letter: Callable[[dict[str, Any]], None]  # a forward given up or refused: for operators
    render: Callable[[str, dict[str, Any]], str] | None = None  # a partner's Jinja2 body template
    tokens: OAuthTokens | None = None
    wall_clock: Callable[[], float] | None = None  # signatures carry real time; default time.time


def handle_message(body: dict[str, Any], deps: ForwardDeps) -> list[dict[str, Any]]:
    """One queue message -> what happened (one entry per forward touched), for logs and tests."""
    if body.get("task") == TASK:
        return [attempt(body, deps)]
    detail = body.get("detail") or {}
    event = detail.get("event")
    store = detail.get("store_id")
    props = detail.get("properties") or {}
    order_id = props.get("order_id")
    if not store or not order_id:
        return []
    order_id = str(order_id)
    if event == ORDER_COMPLETED:
        return forward_order(store, order_id, detail, deps)
    if event in (ORDER_CANCELLED, ORDER_REFUNDED):
        return cancel_order(store, order_id, deps)
    if event in (ORDER_SHIPPED, ORDER_DELIVERED) and props.get("partner_id"):
        status = "shipped" if event == ORDER_SHIPPED else "delivered"
        deps.store.record_shipment(
            store,
            order_id,
            str(props["partner_id"]),
            status,
            float(props.get("at_ts") or detail.get("received_at") or clock.now_ts()),
            {k: props.get(k) for k in ("carrier", "tracking_number", "tracking_url", "shipment_id")},
        )
        return [{"order_id": order_id, "partner_id": props["partner_id"], "outcome": status}]
    return []


def _customer(detail: dict[str, Any]) -> str:
    return f"u:{detail['user_id']}" if detail.get("user_id") else f"a:{detail.get('anonymous_id')}"


def forward_order(
    store: str, order_id: str, detail: dict[str, Any], deps: ForwardDeps
) -> list[dict[str, Any]]:
    props = detail.get("properties") or {}
    partners = {p.id: p for p in deps.catalog.partners(store)}
    parts = split_order(list(props.get("products") or []), list(partners.values()))
    now = clock.now_ts()
    out = []
    for part in parts:
        document = order_document(
            action="create",
            store_id=store,
            order_id=order_id,
            partner_id=part.partner_id,
            items=part.items,
            properties=props,
            placed_at=clock.iso(float(detail.get("received_at") or now)),
        )
        opened = deps.store.open(
            {
                "store_id": store,
                "order_id": order_id,
                "partner_id": part.partner_id,
                "action": "create",
                "customer_id": _customer(detail),
                "order_at": float(detail.get("received_at") or now),
                "first_at": now,
                "items": len(part.items),
                "document": json.dumps(document, default=str),
            }
        )
        if not opened:
            log.info(
                "order already forwarded",
                extra={"store": store, "order": order_id, "partner": part.partner_id},
            )
        # attempt 1 even for a replay: its claim succeeds only if no λ has made it yet
        out.append(attempt(_task(store, order_id, part.partner_id, "create", 1), deps))
    return out


def cancel_order(store: str, order_id: str, deps: ForwardDeps) -> list[dict[str, Any]]:
    """Cancel what each partner was sent: a create still retrying is stopped (nothing reached the
    partner), an accepted one gets a cancel request, through the same attempts and retries."""
    out = []
    records = {(r["partner_id"], r["action"]): r for r in deps.store.for_order(store, order_id)}
    for (partner_id, action), record in sorted(records.items()):
        if action != "create":
            continue
        if record["status"] in OPEN and deps.store.close(
            store,
            order_id,
            partner_id,
            "create",
            "cancelled",
            "order cancelled before the partner accepted it",
        ):
            out.append({"order_id": order_id, "partner_id": partner_id, "outcome": "stopped"})
            continue
        fresh = deps.store.get(store, order_id, partner_id, "create") or record
        if fresh["status"] != "accepted":
            continue  # refused or given up: the partner has nothing to cancel
        # an erased customer's record has no document left: the partner cancels by the order's ids
        sent = json.loads(fresh["document"]) if fresh.get("document") else _bare_document(fresh)
        document = {**sent, "action": "cancel"}
        document["idempotency_key"] = idempotency_key(store, order_id, partner_id, "cancel")
        deps.store.open(
            {
                "store_id": store,
                "order_id": order_id,
                "partner_id": partner_id,
                "action": "cancel",
                "customer_id": fresh.get("customer_id"),
                "order_at": fresh.get("order_at"),
                "first_at": clock.now_ts(),
                "items": fresh.get("items"),
                "document": json.dumps(document, default=str),
            }
        )
        out.append(attempt(_task(store, order_id, partner_id, "cancel", 1), deps))
    return out


def _bare_document(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": ORDER_FORMAT_VERSION,
        "store_id": record.get("store_id"),
        "order_id": record.get("order_id"),
        "partner_id": record.get("partner_id"),
        **({"partner_reference": record["partner_reference"]} if record.get("partner_reference") else {}),
    }


def _task(
    store: str, order_id: str, partner_id: str, action: Action, n: int, not_before: float = 0
) -> dict[str, Any]:
    return {
        "task": TASK,
        "store_id": store,
        "order_id": order_id,
        "partner_id": partner_id,
        "action": action,
        "attempt": n,
        "not_before": not_before,
    }


def attempt(task: dict[str, Any], deps: ForwardDeps) -> dict[str, Any]:
    """Attempt n of one forward, at most once; the answer recorded; the next attempt scheduled."""
    store, order_id, partner_id = task["store_id"], task["order_id"], task["partner_id"]
    action: Action = task["action"]
    n = int(task["attempt"])
    now = clock.now_ts()
    result = {"order_id": order_id, "partner_id": partner_id, "action": action, "attempt": n}
    wait = float(task.get("not_before") or 0) - now
    if wait > 0:  # a wait longer than SQS's 15-minute delay: one more hop
        deps.send_task(task, _real_delay(wait))
        return {**result, "outcome": "waiting"}
    partner = deps.catalog.get(store, partner_id)
    if partner is not None and partner.rate_limit_per_second:
        # the partner's limit is on real requests: real (wall-clock) seconds, also on the emulator
        real_now = (deps.wall_clock or time.time)()
        window, allowed, rest = rate_window(partner.rate_limit_per_second, real_now)
        if not deps.store.take_rate_slot(store, partner_id, window, allowed, int(real_now) + RATE_ITEM_TTL_S):
            # over the limit: the same attempt again in the next window (nothing claimed or sent)
            deps.send_task(task, max(1, math.ceil(rest)))
            return {**result, "outcome": "throttled"}
    stale = now - STALE_CLAIM_REAL_SECONDS / clock.real_seconds(1)
    if not deps.store.claim_attempt(store, order_id, partner_id, action, n, now, stale):
        return {**result, "outcome": "skipped"}  # made already (a duplicate task or replayed event)
    record = deps.store.get(store, order_id, partner_id, action) or {}
    if not record.get("document"):
        # the customer was erased between the claim and now: nothing of theirs is left to send
        return {**result, "outcome": "erased"}
    if partner is None:
        deps.store.record_attempt(
            store, order_id, partner_id, action,
            {"n": n, "at": clock.iso(now), "outcome": "rejected", "error": "partner file removed or disabled"},
            "failed",
        )  # fmt: skip
        deps.dead_letter({**task, "reason": "partner removed or disabled"})
        return {**result, "outcome": "failed"}
    answer, error = _send(partner, store, record, deps)
    outcome = "retry" if error else classify(answer.status)
    entry = {
        "n": n,
        "at": clock.iso(now),
        "status_code": answer.status,
        "outcome": outcome,
        "answer": answer.body,
        "ms": answer.ms,
        **({"error": error or answer.error} if (error or answer.error) else {}),
    }
    if outcome == "accepted":
        deps.store.record_attempt(
            store, order_id, partner_id, action, entry, "accepted",
            {"accepted_at": now, **_reference(answer.body)},
        )  # fmt: skip
        return {**result, "outcome": "accepted"}
    if outcome == "rejected":
        deps.store.record_attempt(store, order_id, partner_id, action, entry, "rejected")
        deps.dead_letter({**task, "reason": f"partner refused with HTTP {answer.status}"})
        return {**result, "outcome": "rejected"}
    delay = retry_delay(n, float(record.get("first_at") or now), now, answer.retry_after)
    if delay is None:
        deps.store.record_attempt(
            store, order_id, partner_id, action, entry, "failed", {"reason": "gave up after 24 h"}
        )
        deps.dead_letter({**task, "reason": "no success within 24 hours"})
        log.error("partner forward failed for 24 hours", extra={"store": store, "partner": partner_id})
        return {**result, "outcome": "failed"}
    deps.store.record_attempt(
        store, order_id, partner_id, action, entry, "retrying", {"next_attempt_at": now + delay}
    )
    deps.send_task(_task(store, order_id, partner_id, action, n + 1, now + delay), _real_delay(delay))
    return {**result, "outcome": "retry", "delay": delay}


def _real_delay(boomerang_seconds: float) -> int:
    return max(0, min(MAX_SQS_DELAY, round(clock.real_seconds(boomerang_seconds))))


def _send(
    partner: Partner, store: str, record: dict[str, Any], deps: ForwardDeps
) -> tuple[Answer, str | None]:
    """One request; (answer, why it could not be sent) for setup problems worth retrying."""
    document = json.loads(record["document"])
    nothing = Answer(None, "", None, 0)
    try:
        secret = deps.secrets.get(store, partner.id, partner.secret_keys())
    except PartnerSecretMissing as exc:
        return nothing, str(exc)  # the store may still set it: retried on the schedule
    if partner.payload == "template":
        if deps.render is None:
            return nothing, "no template renderer"
        try:
            body = deps.render(
                partner.template or "", {"order": document, "partner": {"id": partner.id}}
            ).encode()
            json.loads(body)
        except Exception as exc:  # a broken template or non-JSON output: the store must fix it
            return nothing, f"template: {exc}"[:300]
    else:
        body = body_bytes(document)
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: document["idempotency_key"]}
    if partner.sign:
        import time

        ts = int((deps.wall_clock or time.time)())
        headers[TIMESTAMP_HEADER] = str(ts)
        headers[SIGNATURE_HEADER] = signature(secret["signing_secret"], ts, body)
    auth = auth_headers(partner.auth, secret, deps.tokens or OAuthTokens(), partner.timeout_seconds)
    if auth is None:
        return nothing, "OAuth token endpoint gave no token"
    answer = deps.post(
        partner.endpoint.url(document["action"], document["order_id"]),
        {**headers, **auth},
        body,
        partner.timeout_seconds,
    )
    return answer, None


def _reference(body: str) -> dict[str, Any]:
    """The partner's own id for the order, when its answer is JSON carrying one."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if isinstance(data, dict):
        for k in ("id", "reference", "order_reference", "fulfillment_order_id"):
            if isinstance(data.get(k), str | int):
                return {"partner_reference": str(data[k])[:200]}
    return {}
