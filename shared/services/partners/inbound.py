"""A partner's shipping update: `POST /v1/partners/<store>/<partner>/shipments`, signed.

The partner signs exactly as Boomerang signs what it sends (shared/domain/partners.py `signature`,
with the same secret): a request whose signature does not match, or whose timestamp is outside the
replay window, is refused and changes nothing. A genuine update becomes one canonical event,
`Order Shipped` or `Order Delivered`, for the order's customer: the profile records it, the
shipping-update journey notifies the customer, the forwarder records it on the order. Its messageId
is derived from (partner, shipment, status), so a partner sending the same update twice (or an
attacker replaying a captured one inside the window) notifies nobody twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from shared.adapters.fulfilment_store import FulfilmentStore
from shared.adapters.partner_catalog import PartnerCatalog
from shared.adapters.partner_http import PartnerSecretMissing, PartnerSecrets
from shared.domain import limits
from shared.domain.api_calls import ApiError
from shared.domain.events import ORDER_DELIVERED, ORDER_SHIPPED, CanonicalEvent
from shared.domain.partners import SIGNATURE_HEADER, TIMESTAMP_HEADER, Shipment, verify_signature
from shared.platform import clock
from shared.services.ingest import ApiProblem

MAX_BODY_BYTES = 64 * 1024
FORGED = f"sign the raw body as the README says: {TIMESTAMP_HEADER} (Unix seconds) and {SIGNATURE_HEADER}"


@dataclass
class InboundDeps:
    catalog: PartnerCatalog
    secrets: PartnerSecrets
    fulfilment: FulfilmentStore
    wall_clock: Callable[[], float] = time.time


def shipment_event(
    store_id: str, partner_id: str, headers: dict[str, str], body: bytes, deps: InboundDeps
) -> CanonicalEvent:
    """The canonical event a genuine update makes; ApiProblem (nothing changed) otherwise."""
    if len(body) > MAX_BODY_BYTES:
        raise ApiProblem(413, "too_large", f"a shipment update is at most {MAX_BODY_BYTES} bytes")
    partner = deps.catalog.get(store_id, partner_id)
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    # an unknown partner answers as a bad signature does: a prober learns nothing about partner ids
    if partner is None:
        raise ApiProblem(401, "unauthorized", FORGED)
    try:
        secret = deps.secrets.get(store_id, partner_id, ("signing_secret",))
    except PartnerSecretMissing as exc:
        raise ApiProblem(401, "unauthorized", FORGED) from exc
    problem = verify_signature(
        secret["signing_secret"],
        lower.get(TIMESTAMP_HEADER.lower()),
        lower.get(SIGNATURE_HEADER.lower()),
        body,
        deps.wall_clock(),
    )
    if problem:
        raise ApiProblem(401, "unauthorized", f"{problem}; {FORGED}")
    try:
        data = limits.loads(body)
        for field, message in limits.first_problems(data, limit=1):  # unstorable text or numbers
            raise ApiProblem(400, "invalid", f"{field}: {message}")
        shipment = Shipment.model_validate(data)
    except RecursionError as exc:  # nesting past the parser's stack
        raise ApiProblem(400, "malformed", "the body is nested too deeply") from exc
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            errors = [
                ApiError(index=0, field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"])
                for e in exc.errors()
            ]
            raise ApiProblem(
                400, "invalid", "the shipment update is invalid (fields: order_id, status, ...)", errors
            ) from exc
        raise ApiProblem(400, "malformed", "the body is not JSON") from exc
    record = deps.fulfilment.get(store_id, shipment.order_id, partner_id, "create")
    if record is None:
        raise ApiProblem(
            404, "unknown_order", f"order {shipment.order_id!r} was not forwarded to {partner_id}"
        )
    now = clock.now_ts()
    key = f"{partner_id}\n{shipment.shipment_key(partner_id)}\n{shipment.status}"
    customer = str(record.get("customer_id") or "")
    kind, _, ident = customer.partition(":")
    return CanonicalEvent(
        message_id="partner-" + hashlib.sha256(f"{store_id}\n{key}".encode()).hexdigest()[:40],
        store_id=store_id,
        type="track",
        event=ORDER_SHIPPED if shipment.status == "shipped" else ORDER_DELIVERED,
        user_id=ident if kind == "u" else None,
        anonymous_id=ident if kind == "a" else None,
        properties={
            "order_id": shipment.order_id,
            "partner_id": partner_id,
            "shipment_id": shipment.shipment_key(partner_id),
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "tracking_url": shipment.tracking_url,
            "items": shipment.items,
            "at": shipment.at,
        },
        timestamp=shipment.at,
        received_at=now,
    )
