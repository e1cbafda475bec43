"""Personal data on the customer's terms: whose items are whose, what erasure leaves, what an
export holds, and how long data is kept. Pure: the adapters read and delete, this decides.

A data subject is one person in one store: their known customer id (`u:<userId>`), the anonymous
visitor ids merged into them (`a:<anonymousId>`), and the email addresses and phone numbers their
profiles hold. Every item of the single table that holds their data is recognised by `owns`:
- under one of their customer partitions (profile, journey history, re-entry records, back-in-stock
  subscriptions, segment memberships, cap ledger);
- an alias of one of their anonymous ids, a cart of theirs (by user or anonymous id), an order or
  a processed-event marker naming one of their customer ids;
- a journey instance run for them (its state, send records and log: the instance is their cart,
  order or customer id) and an offer code given in one of those runs;
- a forward record of one of their orders to a fulfilment partner (`FWD#<partner>#<action>` in the
  order's partition): erasure scrubs it to what the fulfilment figures need (`scrub_forward`).

Erasure leaves one tombstone per identifier (keys.erased_pk: a SHA-256, never the identifier) with
the erasure's time: an event received before it (still in flight, or replayed from the bus
archive) is dropped instead of re-creating the profile; an event received after it is a new
relationship the customer started again, and is folded as usual.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.platform import keys

DAY_S = 86400
# A table export (the monthly report's input) is a full copy of the customer data: the analytics
# bucket's lifecycle rule deletes it this many days after it was written (infra/description.py).
EXPORT_RETENTION_DAYS = 30


class DataRetention(BaseModel):
    """How long a store keeps personal data (GDPR Art. 5(1)(e): no longer than needed).

    Defaults, and why:
    - `inactive_profile_days` 730: a customer with no event for two years is not coming back through
      a retention journey (win-back gives up long before), and two years covers yearly buyers
      (gifts, seasonal goods) with a full cycle to spare. The profile and everything under it goes.
    - `cart_days` 90: an abandoned cart's journeys end within days; 90 covers the report's
      attribution and a quarter's look-back.
    - `message_history_days` 400: a year-over-year report needs 12 months plus the attribution
      window; the same as the SES engagement items.
    - `event_marker_days` 35: the processed-event markers that make a replay a no-op must outlive
      the bus archive's replay window (30 days, infra/description.py ARCHIVE_RETENTION_DAYS).
    """

    model_config = ConfigDict(extra="forbid")

    inactive_profile_days: int = Field(default=730, ge=30, le=3650)
    cart_days: int = Field(default=90, ge=7, le=3650)
    message_history_days: int = Field(default=400, ge=30, le=3650)
    event_marker_days: int = Field(default=35, ge=31, le=400)  # must exceed the 30-day archive

    def profile_expires_at(self, last_seen_at: float | None, now: float) -> int:
        return int((last_seen_at or now) + self.inactive_profile_days * DAY_S)

    def cart_expires_at(self, last_activity_at: float) -> int:
        return int(last_activity_at + self.cart_days * DAY_S)

    def forward_expires_at(self, order_at: float) -> int:
        """A forward record goes with the message history, not the order: it is a log of what was
        sent where about the person (their address), which the fulfilment report reads year over
        year; the order itself, kept for the revenue figures, never needed the address."""
        return int(order_at + self.message_history_days * DAY_S)


@dataclass
class Subject:
    """One person in one store, as far as the table knows them."""

    store_id: str
    customer_ids: set[str] = field(default_factory=set)  # u:<id> and a:<id>
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    instances: set[str] = field(default_factory=set)  # journey instances run for them

    @property
    def user_ids(self) -> set[str]:
        return {c[2:] for c in self.customer_ids if c.startswith("u:")}

    @property
    def anonymous_ids(self) -> set[str]:
        return {c[2:] for c in self.customer_ids if c.startswith("a:")}

    def identifiers(self) -> list[tuple[str, str]]:
        """(kind, value) of every identifier erasure leaves a tombstone for."""
        out = [("user", u) for u in sorted(self.user_ids)]
        out += [("anon", a) for a in sorted(self.anonymous_ids)]
        out += [("email", e) for e in sorted(self.emails)]
        out += [("phone", p) for p in sorted(self.phones)]
        return out

    def learn(self, profile: dict[str, Any]) -> None:
        """What a profile item of theirs adds: its id, merged visitors, addresses, open cart. A
        visitor's merged_into is not followed here: a shared device's visitor id shows up on
        several people's profiles, but was merged into one of them only."""
        self.customer_ids.add(str(profile["customer_id"]))
        if profile.get("user_id"):
            self.customer_ids.add(keys.user_customer_id(str(profile["user_id"])))
        for anon in profile.get("anonymous_ids") or []:
            self.customer_ids.add(keys.anon_customer_id(str(anon)))
        if profile.get("email"):
            self.emails.add(keys.normalise_identifier("email", str(profile["email"])))
        if profile.get("phone"):
            self.phones.add(keys.normalise_identifier("phone", str(profile["phone"])))
        if profile.get("open_cart_id"):
            self.instances.add(str(profile["open_cart_id"]))

    def note_instances(self, item: dict[str, Any]) -> None:
        """Journey instances an item of theirs names: a cart, an order, a history line."""
        for name in ("cart_id", "order_id", "instance"):
            if item.get(name):
                self.instances.add(_instance_base(str(item[name])))


def _instance_base(instance: str) -> str:
    """A run's record instance without its generation/trigger suffix (record_instance)."""
    return instance.split("~", 1)[0]


_JOURNEY_PK = re.compile(r"^STORE#(?P<store>[^#]+)#JOURNEY#(?P<journey>[^#]+)#(?P<instance>.+)$")


def journey_instance(pk: str) -> tuple[str, str] | None:
    """(journey, instance) of a journey instance item's partition key."""
    m = _JOURNEY_PK.match(pk)
    return (m.group("journey"), m.group("instance")) if m else None


def owns(item: dict[str, Any], s: Subject) -> str | None:
    """Which kind of the subject's data this item is (None: not theirs). Decided on the item's keys
    and the ids it names, never on free text."""
    pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
    prefix = f"STORE#{s.store_id}#"
    if not pk.startswith(prefix):
        return None
    rest = pk[len(prefix) :]
    for cid in s.customer_ids:
        if pk == keys.customer_pk(s.store_id, cid):
            return _customer_kind(sk)
    if rest.startswith("ALIAS#anon#"):
        if rest.removeprefix("ALIAS#anon#") in s.anonymous_ids or item.get("customer_id") in s.customer_ids:
            return "aliases"
        return None
    if rest.startswith("CART#"):
        # a visitor's cart is theirs; a cart a shared device's visitor id shows up on, of someone
        # else signed in, is not
        user = item.get("user_id")
        if user in s.user_ids or (not user and item.get("anonymous_id") in s.anonymous_ids):
            return "carts"
        return None
    if rest.startswith("ORDER#") and is_forward(item):
        return "forwards" if item.get("customer_id") in s.customer_ids else None
    if rest.startswith("ORDER#"):
        return "orders" if item.get("customer_id") in s.customer_ids else None
    if rest.startswith("EVT#"):
        return "events" if item.get("customer_id") in s.customer_ids else None
    if rest.startswith("JOURNEY#"):
        found = journey_instance(pk)
        if found and (_instance_base(found[1]) in s.instances or _names_customer(found[1], s)):
            return "journey_records"
        return "journey_records" if item.get("customer_id") in s.customer_ids else None
    if rest.startswith("POOL#"):
        recipient = sk.removeprefix("TO#") if sk.startswith("TO#") else str(item.get("recipient") or "")
        if recipient and _recipient_is(recipient, s):
            return "offers" if sk.startswith("TO#") else "offer_codes"
        return None
    if item.get("email") and keys.normalise_identifier("email", str(item["email"])) in s.emails:
        return "other"
    if item.get("phone") and keys.normalise_identifier("phone", str(item["phone"])) in s.phones:
        return "other"
    return None


def _customer_kind(sk: str) -> str:
    head = sk.split("#", 1)[0]
    return {
        "PROFILE": "profiles",
        "HIST": "history",
        "ENTRY": "journey_entries",
        "BIS": "back_in_stock",
        "SEG": "segments",
        "CAP": "cap_ledger",
        "CONSENT": "consent",
    }.get(head, "other")


def _names_customer(instance: str, s: Subject) -> bool:
    # per-customer journeys run under the customer id, fanned-out ones under "<customer>|<sku>"
    return any(
        instance == c or instance.startswith(f"{c}|") or instance.startswith(f"{c}~") for c in s.customer_ids
    )


def _recipient_is(recipient: str, s: Subject) -> bool:
    """An offer's recipient is "<journey>|<instance>|<step>" (deliver._draw)."""
    parts = recipient.split("|")
    instance = _instance_base(parts[1]) if len(parts) >= 3 else recipient
    return instance in s.instances or _names_customer(instance, s)


# -- forward records to fulfilment partners (shared/adapters/fulfilment_store.py) -----------------

FORWARD_SK_PREFIX = "FWD#"  # fulfilment_store.fwd_sk: the domain names it, the adapter writes it
RATE_SK_PREFIX = "RATE#"  # a partner's rate-limit window counter (fulfilment_store.take_rate_slot)
# What an erased customer's forward record keeps: an allow-list, so a field added later (which may
# hold an address) is dropped unless someone decides it may stay. These are the fulfilment report's
# inputs (shared/adapters/report_data.py _forward), the forwarder's bookkeeping (attempt claims,
# retries) and the partner's own order reference (to pass the erasure on to it, GDPR Art. 19).
FORWARD_KEEPS = frozenset(
    {
        "pk",
        "sk",
        "store_id",
        "order_id",
        "partner_id",
        "action",
        "status",
        "reason",
        "attempt",
        "items",
        "order_at",
        "first_at",
        "claimed_at",
        "accepted_at",
        "shipped_at",
        "delivered_at",
        "next_attempt_at",
        "carrier",
        "partner_reference",
        "erased_at",
    }
)
# an attempt keeps its outcome, never the partner's answer body (it may echo the address)
ATTEMPT_KEEPS = ("n", "at", "status_code", "outcome", "ms")
FORWARD_OPEN = ("pending", "retrying")  # fulfilment_store.OPEN
ERASED_REASON = "customer erased before the partner accepted the order"


def is_forward(item: dict[str, Any]) -> bool:
    return str(item.get("sk", "")).startswith(FORWARD_SK_PREFIX)


def scrub_forward(item: dict[str, Any], pseudonym: str, at: float) -> dict[str, Any]:
    """A forward record without the person: no order document (address, name, email, phone), no
    answer bodies or errors, no tracking number or link; the customer id replaced by the pseudonym
    their orders got. A forward still open is closed (nothing is left to send the partner), as a
    cancel before acceptance closes it. Idempotent: scrubbing a scrubbed record changes nothing."""
    out = {k: v for k, v in item.items() if k in FORWARD_KEEPS}
    out["customer_id"] = pseudonym
    out["attempts"] = [
        {k: a[k] for k in ATTEMPT_KEEPS if k in a} for a in item.get("attempts") or [] if isinstance(a, dict)
    ]
    out.setdefault("erased_at", at)
    if out.get("status") in FORWARD_OPEN:
        out["status"], out["reason"] = "cancelled", ERASED_REASON
    return out


def forward_expired(item: dict[str, Any], policy: DataRetention, now: float) -> bool:
    """A forward record past the store's message-history limit, counted from the order."""
    since = item.get("order_at") or item.get("first_at")
    return is_forward(item) and since is not None and policy.forward_expires_at(float(since)) <= now


def rate_counter_expired(item: dict[str, Any], now: float) -> bool:
    """A partner's rate window whose TTL has passed (TTL deletes lag by days; no personal data)."""
    sk, exp = str(item.get("sk", "")), item.get("expires_at")
    return sk.startswith(RATE_SK_PREFIX) and exp is not None and float(exp) <= now


def export_forward(item: dict[str, Any]) -> dict[str, Any]:
    """A forward record as the person reads it: to whom, when, what happened, the order sent."""
    try:
        document = json.loads(item["document"]) if item.get("document") else None
    except ValueError:
        document = item.get("document")
    times = ("order_at", "accepted_at", "shipped_at", "delivered_at")
    return {
        "order_id": item.get("order_id"),
        "partner_id": item.get("partner_id"),
        "action": item.get("action"),
        "status": item.get("status"),
        **{t: item.get(t) for t in times},
        "carrier": item.get("carrier"),
        "tracking_number": item.get("tracking_number"),
        "tracking_url": item.get("tracking_url"),
        "document": document,
        "attempts": [
            {k: a.get(k) for k in (*ATTEMPT_KEEPS, "answer", "error") if k in a}
            for a in item.get("attempts") or []
            if isinstance(a, dict)
        ],
    }


def dropped_by_erasure(received_at: float, erased_at: list[float]) -> bool:
    """An event received before any erasure of its identifiers belongs to the erased customer."""
    return any(received_at <= at for at in erased_at)


def event_identifiers(event: Any) -> list[tuple[str, str]]:
    """The identifiers a canonical event carries (the tombstones the fold looks up)."""
    out: list[tuple[str, str]] = []
    if event.user_id:
        out.append(("user", str(event.user_id)))
    if event.anonymous_id:
        out.append(("anon", str(event.anonymous_id)))
    traits = event.traits or {}
    if isinstance(traits.get("email"), str) and traits["email"]:
        out.append(("email", traits["email"]))
    if isinstance(traits.get("phone"), str) and traits["phone"]:
        out.append(("phone", traits["phone"]))
    return out


# -- the access / portability export ---------------------------------------------------------------

EXPORT_FORMAT = "boomerang-customer-export/1"
# every consent change lists all of these (null when not given), so a reader needs no schema
_CONSENT_FIELDS = ("channel", "category", "status", "at", "source", "text", "message_id")
_PROFILE_DROP = (
    "pk",
    "sk",
    "version",
    "last_message_id",
    "updated",
    "removed_devices",
    "bday",
    "anniv",
    "risk",
    "buyer",
    "segdue",
)


def export_document(
    store_id: str, subject_id: str, items: dict[str, list[dict[str, Any]]], generated_at: float
) -> dict[str, Any]:
    """Everything held about the person, grouped by what it is (GDPR Art. 15 and 20): a JSON
    document a person (or another service) can read. `items` are the subject's items by `owns` kind."""
    profiles = []
    consent_history: list[dict[str, Any]] = []
    for p in items.get("profiles", []):
        devices = [
            {"platform": d.get("platform"), "registered_at": d.get("at"), "token": d.get("token")}
            for d in (p.get("devices") or {}).values()
        ]
        consent_history += [
            {**dict.fromkeys(_CONSENT_FIELDS), **c, "customer_id": p.get("customer_id")}
            for c in p.get("consent_history") or []
        ]
        profile = {k: v for k, v in p.items() if k not in _PROFILE_DROP and k != "consent_history"}
        profile["devices"] = devices
        profiles.append(profile)
    # consent proof items (one per change); profiles written before they moved out hold a list
    consent_history += [
        {**dict.fromkeys(_CONSENT_FIELDS), **{k: c.get(k) for k in (*_CONSENT_FIELDS, "url", "customer_id")}}
        for c in sorted(items.get("consent", []), key=lambda c: str(c.get("sk", "")))
    ]
    history = items.get("history", [])
    messages = [
        {
            "channel": h.get("channel"),
            "at": h.get("at"),
            "subject": h.get("subject"),
            "journey": h.get("journey"),
            "step": h.get("step"),
            "kind": h.get("kind"),
            "offer_code": h.get("offer_code"),
        }
        for h in history
        if h.get("type") == "sent"
    ]

    def clean(kind: str, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in i.items() if k not in ("pk", "sk", "version", *drop)}
            for i in sorted(items.get(kind, []), key=lambda i: str(i.get("sk", "")) + str(i.get("pk", "")))
        ]

    return {
        "format": EXPORT_FORMAT,
        "store_id": store_id,
        "customer_id": subject_id,
        "generated_at": generated_at,
        "profiles": profiles,
        "consent_history": sorted(consent_history, key=lambda c: float(c.get("at") or 0)),
        "events": [
            {"message_id": e.get("pk", "").rsplit("#", 1)[-1], "received_at": e.get("received_at")}
            for e in sorted(items.get("events", []), key=lambda e: float(e.get("received_at") or 0))
        ],
        "carts": clean("carts"),
        "orders": clean("orders"),
        "messages_sent": sorted(messages, key=lambda m: float(m.get("at") or 0)),
        "journey_history": [
            {k: v for k, v in h.items() if k not in ("pk", "sk", "expires_at")} for h in history
        ],
        "segments": [
            {"segment": i.get("segment"), "since": i.get("since")} for i in items.get("segments", [])
        ],
        "offers": [
            {
                "code": i.get("code"),
                "given_at": i.get("given_at"),
                "pool": str(i.get("pk", "")).rsplit("#", 1)[-1],
            }
            for i in items.get("offers", [])
        ],
        "back_in_stock": clean("back_in_stock", ("bis",)),
        "fulfilment": [
            export_forward(f)
            for f in sorted(items.get("forwards", []), key=lambda f: (str(f.get("pk")), str(f.get("sk"))))
        ],
    }


def export_counts(document: dict[str, Any]) -> dict[str, int]:
    """How many of each kind an export holds (what the CLI and API print: never the data)."""
    return {k: len(v) for k, v in document.items() if isinstance(v, list)}
