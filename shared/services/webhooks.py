"""Store platforms' webhooks in: verify, map, validate, publish — nothing else, within Shopify's 5 s.

The signature is checked over the raw body before anything is parsed, so a forged webhook costs a
hash and changes nothing. Deduplication needs no write here: every call's messageId derives from
the platform's delivery id (X-Shopify-Webhook-Id, X-WC-Webhook-Delivery-ID), and the profile fold
already writes each messageId exactly once with the event's changes (its marker outlives the
platforms' retry windows: Shopify retries for 4 hours, the marker stays 35 days). A replayed
webhook is therefore published again and folded as a duplicate: nothing changes, and the ingest λ
keeps its read-only table access and one network call (PutEvents) per webhook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.domain import limits
from shared.domain.webhooks import PLATFORMS, Mapped, number, signature_ok
from shared.services.ingest import ApiProblem, parse_json, read_body

if TYPE_CHECKING:
    from shared.domain.events import CanonicalEvent

MAX_WEBHOOK_BYTES = 2 * 1024 * 1024  # an order with hundreds of lines; Lambda takes 6 MB
ARCHIVE_PAYLOAD_BYTES = 200 * 1024  # a bus entry holds 256 KB: larger payloads are archived without it


@dataclass(frozen=True)
class PlatformHeaders:
    signature: str
    topic: str
    delivery_id: str
    label: str


HEADERS = {
    "shopify": PlatformHeaders("x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-webhook-id", "Shopify"),
    "woocommerce": PlatformHeaders(
        "x-wc-webhook-signature", "x-wc-webhook-topic", "x-wc-webhook-delivery-id", "WooCommerce"
    ),
}


@dataclass
class WebhookResult:
    platform: str
    topic: str
    accepted: int = 0  # canonical events published
    rejected: int = 0  # mapped calls the event API's validation refused (archived with the reason)
    archived: bool = False
    known_topic: bool = True
    reason: str | None = None
    errors: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"success": True, "topic": self.topic, "accepted": self.accepted}
        if self.archived:
            out["archived"] = True
            out["reason"] = self.reason
        if self.rejected:
            out["rejected"] = self.rejected
        return out


def _mapper(platform: str) -> Callable[[str, Any, str], Mapped]:
    if platform == "shopify":
        from shared.domain.webhooks.shopify import map_webhook
    else:
        from shared.domain.webhooks.woocommerce import map_webhook
    return map_webhook


def _is_ping(platform: str, headers: dict[str, str], body: bytes) -> bool:
    # WooCommerce pings a new webhook's URL with a form body `webhook_id=N` and no topic
    return (
        platform == "woocommerce"
        and not headers.get("x-wc-webhook-topic")
        and body.startswith(b"webhook_id=")
    )


@dataclass
class WebhookReceiver:
    secret_for: Callable[[str, str], str | None]  # (store, platform) -> the shared secret, or None
    publish: Callable[[list[CanonicalEvent]], Any]
    archive: Callable[[dict[str, Any]], Any]  # one record to the bus archive (no rule reads it)

    def receive(
        self,
        platform: str,
        store_id: str,
        headers: dict[str, str] | None,
        raw: str | None,
        is_base64: bool,
        received_at: float,
    ) -> WebhookResult:
        from shared.domain.api_calls import normalise

        if platform not in PLATFORMS:
            raise ApiProblem(404, "not_found", f"webhooks are taken from {', '.join(PLATFORMS)}")
        names = HEADERS[platform]
        lower = {k.lower(): v for k, v in (headers or {}).items()}
        body = read_body(raw, is_base64, headers, limit=MAX_WEBHOOK_BYTES)
        secret = self.secret_for(store_id, platform)
        if not secret:
            raise ApiProblem(
                401,
                "unauthorized",
                f"no {names.label} webhook secret is set for store {store_id!r}: "
                f"boomerang stores set {store_id} --{platform}-secret ...",
            )
        if _is_ping(platform, lower, body):
            return WebhookResult(platform, "ping", reason="ping")
        if not signature_ok(secret, body, lower.get(names.signature)):
            raise ApiProblem(
                401,
                "invalid_signature",
                f"{names.signature} is missing or is not the HMAC-SHA256 of the body with this store's "
                f"{names.label} secret; nothing was stored",
            )
        topic = (lower.get(names.topic) or "").strip()
        delivery_id = (lower.get(names.delivery_id) or "").strip()
        missing = [h for h, v in ((names.topic, topic), (names.delivery_id, delivery_id)) if not v]
        if missing:
            raise ApiProblem(400, "invalid_webhook", f"missing header(s): {', '.join(missing)}")
        if len(delivery_id) > 150 or len(topic) > 100:
            raise ApiProblem(400, "invalid_webhook", f"{names.delivery_id} or {names.topic} is too long")
        payload = parse_json(body)
        # a lone surrogate or an unstorable number would crash the publish, not be mapped: refused whole
        problems = limits.first_problems(payload)
        if problems:
            raise ApiProblem(
                400,
                "invalid_webhook",
                "; ".join(f"{field}: {message}" for field, message in problems) + "; nothing was stored",
            )
        mapped = _mapper(platform)(topic, payload, delivery_id)
        result = WebhookResult(platform, topic, known_topic=mapped.known_topic, reason=mapped.reason)
        events: list[CanonicalEvent] = []
        for n, call in enumerate(number(mapped.calls, platform, delivery_id)):
            # one by one: a customer with an unusable phone must not lose their order with it
            valid, errors = normalise([call], store_id, received_at)
            events += valid
            result.errors += [
                f"call {n} ({call.get('event') or call['type']}): {e.field}: {e.message}" for e in errors
            ]
        result.rejected = len(mapped.calls) - len(events)
        if events:
            self.publish(events)
            result.accepted = len(events)
        if not events or result.rejected:
            result.archived = True
            result.reason = mapped.reason or "; ".join(result.errors) or "nothing to map"
            record: dict[str, Any] = {
                "store_id": store_id,
                "platform": platform,
                "topic": topic,
                "delivery_id": delivery_id,
                "received_at": received_at,
                "reason": result.reason,
            }
            if len(body) <= ARCHIVE_PAYLOAD_BYTES:  # kept for a replay once Boomerang reads the topic
                record["payload"] = payload
            self.archive(record)
        return result
