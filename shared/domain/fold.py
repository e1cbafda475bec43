"""The pure rules that fold a storefront event into a customer's profile.

Replays change nothing and late events never roll state back: every field remembers when its
value was received (Profile.updated), and a value received earlier never replaces a newer one.
Which rule an event gets is shared/domain/event_routing.py's choice.
"""

from __future__ import annotations

from typing import Any

from shared.domain import limits
from shared.domain.events import DOUBLE_OPT_IN_SOURCE, PRODUCT_VIEWED, CanonicalEvent
from shared.domain.profiles import (
    MAX_CONSENT_HISTORY,
    Consent,
    ConsentChange,
    Device,
    Profile,
    ViewedProduct,
    as_decimal,
    device_key,
)
from shared.domain.webpush import MAX_BROWSERS, MAX_REMOVED

# Traits kept as first-class profile fields; every other identify trait lands in `traits`.
_IDENTITY_TRAITS = ("email", "phone")
CONFIRM_LINK_LIFETIME_S = 7 * 24 * 3600  # a double opt-in link's life; after it a new request counts
_CONSENT_META = (
    "consent",
    "consent_source",
    "consent_text",
    "consent_at",
    "categories",
    "device_token",
    "device_platform",
)
MAX_EVENT_NAMES = 64  # last_event_at keeps this many event names (the oldest go first)
# recently viewed products kept per profile: templates show 3 (services/journeys/variables.py); the
# rest keep a product seen again from coming back as new. Each entry is ~300 bytes of the profile item
# every event rewrites, so the list stays short.
MAX_VIEWED = 5
MAX_REMOVED_DEVICES = 10  # removal times kept (the late-registration guard), oldest dropped first


# A view of the product already at the front of the recently viewed list, with the same details,
# this soon after it changes nothing anybody reads (a reload, a tracker firing twice): the fold
# leaves the profile as it is, so nothing is written. Journeys started by such a view accept the
# profile's earlier view as theirs (services/journeys/step.py).
REPEAT_VIEW_S = 60.0
_VIEW_DETAILS = ("product_id", "sku", "name", "currency", "image_url", "url")


def is_repeat_view(profile: Profile, event: CanonicalEvent) -> bool:
    """True for a Product Viewed that changes nothing held (see REPEAT_VIEW_S)."""
    if event.type != "track" or event.event != PRODUCT_VIEWED or not profile.viewed:
        return False
    front, p, at = profile.viewed[0], event.properties or {}, event.received_at
    if str(p.get("sku") or p.get("product_id")) != front.key or not 0 <= at - front.at < REPEAT_VIEW_S:
        return False
    if event.anonymous_id and event.anonymous_id not in profile.anonymous_ids:
        return False
    if event.user_id and profile.user_id != event.user_id:
        return False
    if any(p.get(f) != getattr(front, f) for f in _VIEW_DETAILS) or as_decimal(p.get("price")) != front.price:
        return False
    return profile.last_event_at.get(PRODUCT_VIEWED, float("-inf")) >= front.at


def touch(profile: Profile, event: CanonicalEvent) -> None:
    if is_repeat_view(profile, event):
        return
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


def _trait_size(name: str, value: Any) -> int:
    return limits.json_size(name) + limits.json_size(value) + 2  # `"name":value,` in compact JSON


class TraitBudget:
    """The profile's custom traits within MAX_PROFILE_TRAITS names and MAX_PROFILE_TRAITS_BYTES:
    a trait that would pass either is not kept (its name is reported), the rest of the event and
    of the profile are, so a profile never grows towards DynamoDB's 400 KB item limit."""

    def __init__(self, profile: Profile) -> None:
        self.traits = profile.traits
        self.size = 2 + sum(_trait_size(k, v) for k, v in self.traits.items())
        self.refused: list[str] = []

    def admits(self, name: str, value: Any) -> bool:
        held = self.traits.get(name)
        size = self.size + _trait_size(name, value) - (_trait_size(name, held) if name in self.traits else 0)
        count = len(self.traits) + (name not in self.traits)
        if size > limits.MAX_PROFILE_TRAITS_BYTES or count > limits.MAX_PROFILE_TRAITS:
            self.refused.append(name)
            return False
        self.size = size
        return True

    def removed(self, name: str) -> None:
        if name in self.traits:
            self.size -= _trait_size(name, self.traits[name])


def apply_traits(profile: Profile, traits: dict[str, Any], at: float) -> list[str]:
    """Fold identify traits; returns the names not kept because the profile's trait budget is full."""
    budget = TraitBudget(profile)
    for name, value in traits.items():
        if name in _CONSENT_META:
            continue
        if name in _IDENTITY_TRAITS:
            if _newer(profile, name, at):
                setattr(profile, name, value)
            continue
        if value is not None and at >= profile.updated.get(f"traits.{name}", float("-inf")):
            if not budget.admits(name, value):
                continue  # its time is not recorded either: a later, smaller value may still come in
        if _newer(profile, f"traits.{name}", at):
            # cleared (api_properties.CLEARABLE_TRAITS): the time stays, so a late value cannot return
            if value is None:
                budget.removed(name)
                profile.traits.pop(name, None)
            else:
                profile.traits[name] = value
    return budget.refused


def consent_time(consent_at: Any, received_at: float) -> float:
    """A platform's own time of the choice orders it against choices made here (an unsubscribe link
    clicked after it wins over a stale "subscribed" resent with every customer update); never later
    than receipt, so a client clock ahead cannot make a choice outrank ones made after it."""
    if not isinstance(consent_at, str):
        return received_at
    from datetime import datetime

    try:
        made = datetime.fromisoformat(consent_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return received_at
    return min(made, received_at)


def apply_consent(
    profile: Profile, fields: dict[str, Any], at: float, message_id: str, double_opt_in_email: bool = False
) -> None:
    confirmed = fields.get("consent_source") == DOUBLE_OPT_IN_SOURCE
    at = consent_time(fields.get("consent_at"), at)
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
                url=fields.get("consent_url"),
            )
            channel = held_by is profile.consent
            note_consent_change(
                profile,
                ConsentChange(
                    channel=name if channel else None,
                    category=None if channel else name,
                    **held_by[name].model_dump(),
                ),
            )


def note_consent_change(profile: Profile, change: ConsentChange) -> None:
    """Keep a consent change as proof; a replayed one (same call, same choice) is kept once."""
    if any(c == change for c in profile.consent_history):
        return
    history = sorted([*profile.consent_history, change], key=lambda c: c.at)
    profile.consent_history = history[-MAX_CONSENT_HISTORY:]


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
    _keep_newest(profile.removed_devices, MAX_REMOVED_DEVICES)


def _keep_newest(times: dict[str, float], n: int) -> None:
    for stale in sorted(times, key=times.__getitem__)[:-n]:
        del times[stale]


def apply_context(profile: Profile, context: dict[str, Any], at: float) -> None:
    # Segment puts the device's time zone and locale in context; traits sent explicitly win.
    for name in ("timezone", "locale"):
        # (text at most 100 characters: a time zone or locale name, never a growing blob)
        value = context.get(name)
        if isinstance(value, str) and len(value) <= 100 and f"traits.{name}" not in profile.updated:
            profile.traits[name] = context[name]


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
        price=as_decimal(p.get("price")),
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


def merge_profiles(target: Profile, source: Profile) -> None:
    """Fold an anonymous visitor's profile into the known customer's; newer values win per field."""
    for name in _IDENTITY_TRAITS:
        value = getattr(source, name)
        if value is not None and source.updated.get(name, 0) >= target.updated.get(name, float("-inf")):
            setattr(target, name, value)
            target.updated[name] = source.updated.get(name, 0)
    budget = TraitBudget(target)
    for name, value in source.traits.items():
        at = source.updated.get(f"traits.{name}", 0)
        if at >= target.updated.get(f"traits.{name}", float("-inf")) and budget.admits(name, value):
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
    for k, sub in source.webpush.items():
        if sub.at > target.removed_webpush.get(k, float("-inf")):
            target.webpush.setdefault(k, sub)
    for k, at in source.removed_webpush.items():
        target.removed_webpush[k] = max(at, target.removed_webpush.get(k, at))
        browser = target.webpush.get(k)
        if browser is not None and browser.at <= at:
            del target.webpush[k]
    _keep_newest(target.removed_webpush, MAX_REMOVED)
    if len(target.webpush) > MAX_BROWSERS:
        target.webpush = dict(sorted(target.webpush.items(), key=lambda kv: kv[1].at)[-MAX_BROWSERS:])
    for change in source.consent_history:
        note_consent_change(target, change)
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
