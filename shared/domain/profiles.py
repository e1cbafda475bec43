"""Customer profile and cart state, and the pure rules that fold storefront events into them.

Everything here is deterministic and free of AWS, so the rules that protect customers (replays
change nothing, late events never roll state back) are tested directly. Timestamps are Boomerang's
receive time (epoch seconds): client clocks drift, so ordering uses the server's clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator

from shared.domain import events as ev
from shared.domain.events import DOUBLE_OPT_IN_SOURCE, CanonicalEvent
from shared.platform import indexes

# Traits kept as first-class profile fields; every other identify trait lands in `traits`.
_IDENTITY_TRAITS = ("email", "phone")
CONFIRM_LINK_LIFETIME_S = 7 * 24 * 3600  # a double opt-in link's life; after it a new request counts
_CONSENT_META = ("consent", "consent_source", "consent_text", "categories", "device_token", "device_platform")
MAX_EVENT_NAMES = 64  # last_event_at keeps this many event names (the oldest go first)
MAX_VIEWED = 20  # recently viewed products kept per profile
DAY_S = 86400


# ---------------------------------------------------------------------------------------------
# Store policies the fold applies (part of a store's settings, see shared/domain/stores.py)

_TIER_NAME = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"


class LoyaltyPolicy(BaseModel):
    """Points for orders, and tiers by points."""

    enabled: bool = True
    # points per 1 unit of the order's currency, rounded down per order
    points_per_unit: Decimal = Field(default=Decimal(1), ge=0, le=Decimal(1000))
    # tier name -> minimum points; exactly one tier starts at 0
    tiers: dict[str, int] = Field(default_factory=lambda: {"bronze": 0, "silver": 500, "gold": 2000})

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: dict[str, int]) -> dict[str, int]:
        if not v or len(v) > 20:
            raise ValueError("between 1 and 20 tiers")
        for name, threshold in v.items():
            if len(name) > 32 or not re.fullmatch(_TIER_NAME, name):
                raise ValueError(f"tier name {name!r} must be lower-case letters, digits, '-' or '_'")
            if threshold < 0:
                raise ValueError(f"tier {name!r}: the minimum points must be 0 or more")
        if sorted(v.values()).count(0) != 1:
            raise ValueError("exactly one tier must start at 0 points")
        if len(set(v.values())) != len(v):
            raise ValueError("two tiers cannot start at the same number of points")
        return v


class RetentionPolicy(BaseModel):
    """When a customer counts as at risk (the win-back journey's trigger)."""

    at_risk_min_days: int = Field(default=90, ge=1, le=3650)
    # at risk after this many of the customer's own average intervals between orders (if longer)
    interval_factor: float = Field(default=1.0, gt=0, le=100)
    # churned after this long without an order (lifecycle stage; see shared/domain/segments.py)
    churn_after_days: int = Field(default=365, ge=1, le=3650)


class Consent(BaseModel):
    status: str  # subscribed | unsubscribed | pending (email double opt-in awaiting the click)
    at: float
    source: str | None = None
    text: str | None = None
    message_id: str | None = None  # the call that carried it: proof of when and how (GDPR Art. 7)


class Device(BaseModel):
    token: str
    platform: str  # APNS | APNS_SANDBOX | GCM
    at: float  # when it was registered (receive time)


def device_key(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()[:24]


class Orders(BaseModel):
    count: int = 0
    revenue: Decimal = Decimal(0)
    currency: str | None = None
    first_order_at: float | None = None
    last_order_at: float | None = None
    cancelled_count: int = 0
    refunded: Decimal = Decimal(0)


class Rfm(BaseModel):
    """Recency, frequency and monetary scores (1..5) against the store's quintile edges, and the
    named group R and F put the customer in (shared/domain/segments.py)."""

    r: int
    f: int
    m: int
    group: str
    scored_at: float
    edges_at: float  # when the store's edges used were computed


class Loyalty(BaseModel):
    points: int = 0
    tier: str | None = None  # None until the first order is folded
    tier_reached_at: float | None = None  # when the current tier was reached (up or down)


class ViewedProduct(BaseModel):
    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    image_url: str | None = None
    url: str | None = None
    at: float  # receive time of the newest view

    @property
    def key(self) -> str:
        return str(self.sku or self.product_id)


class Profile(BaseModel):
    store_id: str
    customer_id: str
    user_id: str | None = None
    anonymous_ids: list[str] = Field(default_factory=list)
    email: str | None = None
    phone: str | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    updated: dict[str, float] = Field(default_factory=dict)  # field -> receive time of its value
    consent: dict[str, Consent] = Field(default_factory=dict)
    categories: dict[str, Consent] = Field(default_factory=dict)  # per message category (offers, ...)
    devices: dict[str, Device] = Field(default_factory=dict)  # push tokens by device_key
    removed_devices: dict[str, float] = Field(default_factory=dict)  # device_key -> when (late events)
    open_cart_id: str | None = None
    orders: Orders = Field(default_factory=Orders)
    # canonical track event name -> receive time of its latest occurrence (journey exits, activity)
    last_event_at: dict[str, float] = Field(default_factory=dict)
    viewed: list[ViewedProduct] = Field(default_factory=list)  # newest first, at most MAX_VIEWED
    loyalty: Loyalty = Field(default_factory=Loyalty)
    # retention: the customer's own average days between orders (2+ orders), and the UTC day
    # ("YYYY-MM-DD") they become at risk if they do not order again
    expected_interval_days: float | None = None
    at_risk_on: str | None = None
    first_seen_at: float | None = None
    last_seen_at: float | None = None
    merged_into: str | None = None
    # segments (shared/domain/segments.py): scores, stage and memberships as of segments_at; the daily run
    # re-checks the profile on the UTC day of segments_due (time alone changes something then)
    rfm: Rfm | None = None
    lifecycle: str | None = None
    segments: list[str] = Field(default_factory=list)
    segments_at: float | None = None
    segments_due: float | None = None
    version: int = 0

    @property
    def birthday_month_day(self) -> str | None:
        """The month-day ("MM-DD") of the birthday trait, or None."""
        value = self.traits.get("birthday")
        return ev.birthday_month_day(value) if isinstance(value, str) else None

    def can_email(self) -> tuple[bool, str]:
        """Marketing email needs an address and a standing 'subscribed' consent."""
        if not self.email:
            return False, "no email address"
        consent = self.consent.get("email")
        if consent is None:
            return False, "no email consent"
        if consent.status == "pending":
            return False, "email consent awaiting confirmation"
        if consent.status != "subscribed":
            return False, "email consent withdrawn"
        return True, "ok"


class CartLine(BaseModel):
    product_id: str | None = None
    sku: str | None = None
    name: str | None = None
    price: Decimal | None = None
    quantity: int = 0
    currency: str | None = None
    image_url: str | None = None
    url: str | None = None
    updated_at: float = 0
    removed_at: float | None = None


class Cart(BaseModel):
    store_id: str
    cart_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    lines: dict[str, CartLine] = Field(default_factory=dict)
    currency: str | None = None
    snapshot_at: float | None = None
    status: str = "open"  # open | converted
    converted_at: float | None = None
    order_id: str | None = None
    created_at: float | None = None
    last_activity_at: float = 0
    version: int = 0

    @property
    def items(self) -> list[CartLine]:
        return [line for line in self.lines.values() if line.quantity > 0 and line.removed_at is None]

    @property
    def value(self) -> Decimal:
        return sum(((line.price or Decimal(0)) * line.quantity for line in self.items), Decimal(0))


class Order(BaseModel):
    store_id: str
    order_id: str
    customer_id: str
    total: Decimal = Decimal(0)
    currency: str | None = None
    status: str = "completed"  # completed | cancelled
    refunded: Decimal = Decimal(0)
    at: float
    points: int = 0  # loyalty points credited for this order
    points_reversed: int = 0  # of those, taken back by refunds and cancellation
    message_ids: list[str] = Field(default_factory=list)
    version: int = 0


def _line_key(p: dict[str, Any]) -> str:
    return str(p.get("sku") or p.get("product_id"))


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _line_from(p: dict[str, Any], at: float, quantity: int) -> CartLine:
    return CartLine(
        product_id=p.get("product_id"),
        sku=p.get("sku"),
        name=p.get("name"),
        price=_dec(p.get("price")),
        quantity=quantity,
        currency=p.get("currency"),
        image_url=p.get("image_url"),
        url=p.get("url"),
        updated_at=at,
    )


# ---------------------------------------------------------------------------------------------
# Profile rules


def touch(profile: Profile, event: CanonicalEvent) -> None:
    at = event.received_at
    profile.first_seen_at = at if profile.first_seen_at is None else min(profile.first_seen_at, at)
    profile.last_seen_at = at if profile.last_seen_at is None else max(profile.last_seen_at, at)
    if event.user_id and not profile.user_id:
        profile.user_id = event.user_id
    if event.anonymous_id and event.anonymous_id not in profile.anonymous_ids:
        profile.anonymous_ids = [*profile.anonymous_ids, event.anonymous_id][-20:]
    if event.type == "track" and event.event:
        note_event(profile, event.event, at)


def note_event(profile: Profile, name: str, at: float) -> None:
    """Remember when `name` last happened (a late event never moves it back)."""
    seen = profile.last_event_at
    seen[name] = max(at, seen.get(name, at))
    if len(seen) > MAX_EVENT_NAMES:
        profile.last_event_at = dict(sorted(seen.items(), key=lambda kv: kv[1])[-MAX_EVENT_NAMES:])


def _newer(profile: Profile, field: str, at: float) -> bool:
    """True if a value received at `at` may replace the one held (a late event never rolls back)."""
    if at < profile.updated.get(field, float("-inf")):
        return False
    profile.updated[field] = at
    return True


def apply_traits(profile: Profile, traits: dict[str, Any], at: float) -> None:
    for name, value in traits.items():
        if name in _CONSENT_META:
            continue
        if name in _IDENTITY_TRAITS:
            if _newer(profile, name, at):
                setattr(profile, name, value)
        elif _newer(profile, f"traits.{name}", at):
            if value is None:  # cleared (ev.CLEARABLE_TRAITS); the time stays so a late value cannot return
                profile.traits.pop(name, None)
            else:
                profile.traits[name] = value


def apply_consent(
    profile: Profile, fields: dict[str, Any], at: float, message_id: str, double_opt_in_email: bool = False
) -> None:
    confirmed = fields.get("consent_source") == DOUBLE_OPT_IN_SOURCE
    for held_by, choices in (
        (profile.consent, fields.get("consent")),
        (profile.categories, fields.get("categories")),
    ):
        for name, status in (choices or {}).items():
            held = held_by.get(name)
            if held is not None and held.at > at:
                continue  # a newer choice already stands
            if held_by is profile.consent and name == "email" and status == "subscribed":
                if confirmed and (held is None or held.status != "pending"):
                    continue  # a confirmation link only confirms a pending request
                if double_opt_in_email and not confirmed:
                    if held is not None and held.status == "subscribed":
                        continue  # already confirmed: keep the original proof
                    if (
                        held is not None
                        and held.status == "pending"
                        and at - held.at < CONFIRM_LINK_LIFETIME_S
                    ):
                        continue  # the same request again (every login): one confirmation email, not many
                    status = "pending"  # until the customer confirms from the address itself
            held_by[name] = Consent(
                status=status,
                at=at,
                source=fields.get("consent_source"),
                text=fields.get("consent_text"),
                message_id=message_id,
            )


def register_device(profile: Profile, token: str, platform: str, at: float) -> None:
    k = device_key(token)
    if profile.removed_devices.get(k, float("-inf")) >= at:
        return  # unregistered (or rejected by the provider) after this registration
    held = profile.devices.get(k)
    if held is None or held.at <= at:
        profile.devices[k] = Device(token=token, platform=platform, at=at)
    if len(profile.devices) > 10:  # keep the newest devices only
        newest = sorted(profile.devices.items(), key=lambda kv: kv[1].at)[-10:]
        profile.devices = dict(newest)


def unregister_device(profile: Profile, token: str, at: float) -> None:
    k = device_key(token)
    held = profile.devices.get(k)
    if held is not None and held.at <= at:
        del profile.devices[k]
    profile.removed_devices[k] = max(at, profile.removed_devices.get(k, at))


def apply_context(profile: Profile, context: dict[str, Any], at: float) -> None:
    # Segment puts the device's time zone and locale in context; traits sent explicitly win.
    for name in ("timezone", "locale"):
        if name in context and f"traits.{name}" not in profile.updated:
            profile.traits[name] = context[name]


def record_order(profile: Profile, order: Order) -> None:
    o = profile.orders
    o.count += 1
    o.revenue += order.total
    o.currency = o.currency or order.currency
    o.first_order_at = order.at if o.first_order_at is None else min(o.first_order_at, order.at)
    o.last_order_at = order.at if o.last_order_at is None else max(o.last_order_at, order.at)


def cancel_order(profile: Profile, order: Order) -> None:
    profile.orders.count = max(0, profile.orders.count - 1)
    profile.orders.revenue -= order.total
    profile.orders.cancelled_count += 1


def refund_order(profile: Profile, amount: Decimal) -> None:
    profile.orders.refunded += amount


# ---------------------------------------------------------------------------------------------
# Recently viewed products


def _newest_views(views: list[ViewedProduct]) -> list[ViewedProduct]:
    """One entry per product (its newest view), newest first, at most MAX_VIEWED.

    Ties keep list order, so callers put the view being folded first.
    """
    best: dict[str, ViewedProduct] = {}
    for v in views:
        held = best.get(v.key)
        if held is None or v.at > held.at:
            best[v.key] = v
    return sorted(best.values(), key=lambda v: -v.at)[:MAX_VIEWED]


def view_product(profile: Profile, p: dict[str, Any], at: float) -> None:
    """Product Viewed: the product moves to the front with the newest details (a late view never
    reorders newer ones)."""
    if not (p.get("sku") or p.get("product_id")):
        return
    view = ViewedProduct(
        product_id=p.get("product_id"),
        sku=p.get("sku"),
        name=p.get("name"),
        price=_dec(p.get("price")),
        currency=p.get("currency"),
        image_url=p.get("image_url"),
        url=p.get("url"),
        at=at,
    )
    held = next((v for v in profile.viewed if v.key == view.key), None)
    if held is not None and held.at > at:
        return  # a newer view of this product is already in place
    profile.viewed = _newest_views([view, *(v for v in profile.viewed if v.key != view.key)])


# ---------------------------------------------------------------------------------------------
# Loyalty


@dataclass(frozen=True)
class TierReached:
    """An order lifted the customer into a higher tier: announced as a Loyalty Tier Reached event."""

    tier: str
    previous_tier: str | None
    points: int
    order_id: str
    at: float


def points_for(total: Decimal, policy: LoyaltyPolicy) -> int:
    if not policy.enabled or total <= 0:
        return 0
    return int((total * policy.points_per_unit).to_integral_value(rounding=ROUND_FLOOR))


def tier_for(points: int, policy: LoyaltyPolicy) -> str | None:
    """The highest tier whose minimum is at most `points`."""
    reached = [(minimum, name) for name, minimum in policy.tiers.items() if minimum <= points]
    return max(reached)[1] if reached else None


def _rank(tier: str | None, policy: LoyaltyPolicy) -> int:
    return policy.tiers.get(tier, -1) if tier else -1


def refresh_tier(profile: Profile, policy: LoyaltyPolicy, at: float) -> None:
    """Settle the tier on the current points (it can go down after a refund)."""
    tier = tier_for(profile.loyalty.points, policy)
    if tier != profile.loyalty.tier:
        profile.loyalty.tier, profile.loyalty.tier_reached_at = tier, at


def credit_points(profile: Profile, order: Order, policy: LoyaltyPolicy) -> TierReached | None:
    """Credit a newly counted order's points (once per order_id: the caller counts it once).

    Returns the tier reached if the order raised it. Entering the base tier (the one at 0 points)
    with a first order is not a raise.
    """
    order.points = points_for(order.total, policy)
    if not policy.enabled:
        return None
    loyalty = profile.loyalty
    previous = loyalty.tier or tier_for(loyalty.points, policy)
    loyalty.points += order.points
    refresh_tier(profile, policy, order.at)
    if loyalty.tier is not None and _rank(loyalty.tier, policy) > _rank(previous, policy):
        return TierReached(loyalty.tier, previous, loyalty.points, order.order_id, order.at)
    return None


def reverse_points(profile: Profile, order: Order, policy: LoyaltyPolicy, at: float) -> int:
    """Take back an order's points after a refund (in proportion to the amount refunded so far,
    rounded down) or a cancellation (all that is left). Returns the points taken back."""
    if order.status == "cancelled":
        due = order.points
    elif order.total > 0:
        due = math.floor(Decimal(order.points) * min(order.refunded, order.total) / order.total)
    else:
        due = 0
    taken = max(0, min(due, order.points) - order.points_reversed)
    if taken:
        order.points_reversed += taken
        profile.loyalty.points = max(0, profile.loyalty.points - taken)
        refresh_tier(profile, policy, at)
    return taken


def tier_reached_event(store_id: str, customer_id: str, reached: TierReached) -> CanonicalEvent:
    """The Loyalty Tier Reached track event; the same order always gives the same messageId."""
    return ev.customer_event(
        store_id,
        customer_id,
        ev.LOYALTY_TIER_REACHED,
        {
            "tier": reached.tier,
            "previous_tier": reached.previous_tier,
            "points": reached.points,
            "order_id": reached.order_id,
        },
        reached.at,
        f"tier-{customer_id}-{reached.tier}-{reached.order_id}",
    )


# ---------------------------------------------------------------------------------------------
# Retention and the lifecycle indexes


def _utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def update_retention(profile: Profile, policy: RetentionPolicy) -> None:
    """Expected interval between orders and the day the customer becomes at risk.

    threshold = max(at_risk_min_days, interval_factor * expected interval); at risk on the UTC day
    of last order + threshold. No order (or every order cancelled): not at risk.
    """
    o = profile.orders
    if o.count >= 2 and o.first_order_at is not None and o.last_order_at is not None:
        profile.expected_interval_days = (o.last_order_at - o.first_order_at) / (o.count - 1) / DAY_S
    else:
        profile.expected_interval_days = None
    if o.count < 1 or o.last_order_at is None:
        profile.at_risk_on = None
        return
    threshold = float(policy.at_risk_min_days)
    if profile.expected_interval_days is not None:
        threshold = max(threshold, policy.interval_factor * profile.expected_interval_days)
    profile.at_risk_on = _utc_day(o.last_order_at + threshold * DAY_S)


def index_attributes(profile: Profile) -> dict[str, Any]:
    """The sparse-index attributes the profile item carries (shared/platform/indexes.py). A profile merged
    into another carries none: it must not be found by any scheduled run."""
    if profile.merged_into is not None:
        return {}
    store, out = profile.store_id, dict[str, Any]()
    if profile.birthday_month_day:
        out[indexes.BY_BIRTHDAY.partition] = indexes.birthday_key(store, profile.birthday_month_day)
    if profile.orders.first_order_at is not None and profile.orders.count > 0:
        first = datetime.fromtimestamp(profile.orders.first_order_at, tz=UTC).strftime("%m-%d")
        out[indexes.BY_ANNIVERSARY.partition] = indexes.anniversary_key(store, first)
    if profile.at_risk_on:
        out[indexes.AT_RISK.partition] = indexes.at_risk_key(store, profile.at_risk_on)
    o = profile.orders
    if o.count > 0 and o.last_order_at is not None:
        # the daily RFM run reads every buyer's values from the index, never the profiles
        out[indexes.BUYERS.partition] = indexes.buyers_key(store, indexes.buyer_shard(profile.customer_id))
        out[indexes.RFM_LAST_ORDER] = o.last_order_at
        out[indexes.RFM_FREQUENCY] = o.count
        out[indexes.RFM_MONETARY] = o.revenue - o.refunded
        if profile.rfm is not None:
            out[indexes.RFM_SCORE] = f"{profile.rfm.r}{profile.rfm.f}{profile.rfm.m}"
    if profile.segments_due is not None:
        out[indexes.SEGMENTS_DUE.partition] = indexes.segments_due_key(store, _utc_day(profile.segments_due))
    return out


def merge_profiles(target: Profile, source: Profile) -> None:
    """Fold an anonymous visitor's profile into the known customer's; newer values win per field."""
    for name in _IDENTITY_TRAITS:
        value = getattr(source, name)
        if value is not None and source.updated.get(name, 0) >= target.updated.get(name, float("-inf")):
            setattr(target, name, value)
            target.updated[name] = source.updated.get(name, 0)
    for name, value in source.traits.items():
        at = source.updated.get(f"traits.{name}", 0)
        if at >= target.updated.get(f"traits.{name}", float("-inf")):
            target.traits[name] = value
            target.updated[f"traits.{name}"] = at
    for field, at in source.updated.items():
        name = field.removeprefix("traits.")
        if field.startswith("traits.") and name not in source.traits:
            # cleared on the visitor's profile (a null birthday) after the customer's value was set
            if at >= target.updated.get(field, float("-inf")):
                target.traits.pop(name, None)
                target.updated[field] = at
    for channel, consent in source.consent.items():
        held = target.consent.get(channel)
        if held is None or consent.at > held.at:
            target.consent[channel] = consent
    for name, choice in source.categories.items():
        held = target.categories.get(name)
        if held is None or choice.at > held.at:
            target.categories[name] = choice
    for k, device in source.devices.items():
        if device.at > target.removed_devices.get(k, float("-inf")):
            target.devices.setdefault(k, device)
    for anon in source.anonymous_ids:
        if anon not in target.anonymous_ids:
            target.anonymous_ids.append(anon)
    if source.open_cart_id and not target.open_cart_id:
        target.open_cart_id = source.open_cart_id
    if source.first_seen_at is not None:
        target.first_seen_at = min(target.first_seen_at or source.first_seen_at, source.first_seen_at)
    if source.last_seen_at is not None:
        target.last_seen_at = max(target.last_seen_at or source.last_seen_at, source.last_seen_at)
    for name, at in source.last_event_at.items():
        note_event(target, name, at)
    target.viewed = _newest_views([*target.viewed, *source.viewed])
    # Points follow the orders that earned them; the caller settles the tier (refresh_tier).
    target.loyalty.points += source.loyalty.points
    # Orders are counted on the order items; anonymous orders move with the merge.
    so, to = source.orders, target.orders
    if so.count or so.cancelled_count:
        to.count += so.count
        to.revenue += so.revenue
        to.cancelled_count += so.cancelled_count
        to.refunded += so.refunded
        to.currency = to.currency or so.currency
        for attr, pick in (("first_order_at", min), ("last_order_at", max)):
            values = [v for v in (getattr(to, attr), getattr(so, attr)) if v is not None]
            setattr(to, attr, pick(values) if values else None)
    source.merged_into = target.customer_id


# ---------------------------------------------------------------------------------------------
# Cart rules


def new_cart(event: CanonicalEvent, cart_id: str) -> Cart:
    return Cart(store_id=event.store_id, cart_id=cart_id, created_at=event.received_at)


def apply_cart_event(cart: Cart, event: CanonicalEvent) -> None:
    at = event.received_at
    p = event.properties
    if event.user_id:
        cart.user_id = event.user_id
    if event.anonymous_id and not cart.anonymous_id:
        cart.anonymous_id = event.anonymous_id
    if cart.status == "converted" and cart.converted_at is not None and at <= cart.converted_at:
        return  # activity from before the purchase cannot reopen the cart
    if cart.status == "converted":
        cart.status, cart.converted_at, cart.order_id = "open", None, None  # shopping again
    cart.created_at = at if cart.created_at is None else min(cart.created_at, at)
    cart.last_activity_at = max(cart.last_activity_at, at)
    cart.currency = p.get("currency") or cart.currency

    if event.event == ev.PRODUCT_ADDED:
        key = _line_key(p)
        line = cart.lines.get(key)
        if line is not None and line.removed_at is not None and at <= line.removed_at:
            return  # the removal came later in real time
        if line is None or line.removed_at is not None:
            cart.lines[key] = _line_from(p, at, int(p.get("quantity", 1)))
        else:
            fresh = _line_from(p, at, line.quantity + int(p.get("quantity", 1)))
            # details (price, name) follow the newest event; quantity accumulates
            cart.lines[key] = (
                fresh if at >= line.updated_at else line.model_copy(update={"quantity": fresh.quantity})
            )
    elif event.event == ev.PRODUCT_REMOVED:
        key = _line_key(p)
        line = cart.lines.get(key)
        if line is None:
            cart.lines[key] = _line_from(p, at, 0).model_copy(update={"removed_at": at})
        elif at >= line.updated_at:
            remaining = line.quantity - int(p.get("quantity", line.quantity))
            if remaining > 0:
                cart.lines[key] = line.model_copy(update={"quantity": remaining, "updated_at": at})
            else:
                cart.lines[key] = line.model_copy(update={"quantity": 0, "removed_at": at, "updated_at": at})
    elif event.event in (ev.CART_VIEWED, ev.CHECKOUT_STARTED) and p.get("products") is not None:
        if cart.snapshot_at is not None and at < cart.snapshot_at:
            return
        cart.snapshot_at = at
        snapshot = {
            _line_key(prod): _line_from(prod, at, int(prod.get("quantity", 1))) for prod in p["products"]
        }
        # lines changed after this snapshot (late-processed events) keep their newer state
        for k, line in cart.lines.items():
            if line.updated_at > at:
                snapshot[k] = line
        cart.lines = snapshot


def convert_cart(cart: Cart, order_id: str, at: float) -> None:
    if cart.last_activity_at > at:
        return  # the customer added things after this order: that is a new, open cart
    cart.status, cart.converted_at, cart.order_id = "converted", at, order_id


def order_from(event: CanonicalEvent, customer_id: str) -> Order:
    p = event.properties
    total = p.get("total", p.get("revenue"))
    if total is None:
        total = sum(
            Decimal(str(x.get("price") or 0)) * int(x.get("quantity", 1)) for x in p.get("products") or []
        )
    return Order(
        store_id=event.store_id,
        order_id=str(p["order_id"]),
        customer_id=customer_id,
        total=Decimal(str(total)),
        currency=p.get("currency"),
        at=event.received_at,
        message_ids=[event.message_id],
    )


def is_cart_event(event: CanonicalEvent) -> bool:
    return event.type == "track" and event.event in (
        ev.PRODUCT_ADDED,
        ev.PRODUCT_REMOVED,
        ev.CART_VIEWED,
        ev.CHECKOUT_STARTED,
    )


def is_order_event(event: CanonicalEvent) -> bool:
    return event.type == "track" and event.event in (
        ev.ORDER_COMPLETED,
        ev.ORDER_CANCELLED,
        ev.ORDER_REFUNDED,
    )
