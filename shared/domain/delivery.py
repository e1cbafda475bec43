"""The delivery policy every send passes through: consent, suppression, channel fallback, quiet hours
in the customer's own time zone, and frequency caps across journeys.

Pure functions over plain data; the journey runner supplies the state and does the I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from shared.domain.profiles import Profile

Channel = Literal["email", "sms", "push", "webpush"]
Kind = Literal["marketing", "transactional"]
DAY = 24 * 3600
WEEK = 7 * DAY


class QuietHours(BaseModel):
    """Local hours in which a channel stays silent; start > end wraps midnight (21:00-08:00)."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    def contains(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Cap(BaseModel):
    per_day: int = Field(default=1, ge=0)  # rolling 24 h
    per_week: int = Field(default=3, ge=0)  # rolling 7 days


class DeliveryPolicy(BaseModel):
    """Per store; every field has the safe default (TCPA hours for SMS, app push and web push)."""

    quiet_hours: dict[str, QuietHours | None] = Field(
        default_factory=lambda: {
            "sms": QuietHours(),
            "push": QuietHours(),
            "webpush": QuietHours(),  # a browser notification wakes a phone like an app's does
            "email": None,
        }
    )
    cap: Cap = Field(default_factory=Cap)  # marketing messages across all channels and journeys

    @field_validator("quiet_hours")
    @classmethod
    def _webpush_like_push(cls, v: dict[str, QuietHours | None]) -> dict[str, QuietHours | None]:
        # a store's policy written before web push existed keeps its app push hours for browsers too
        if "webpush" not in v and "push" in v:
            return {**v, "webpush": v["push"]}
        return v

    channel_caps: dict[str, Cap] = Field(default_factory=dict)  # optional tighter caps per channel


# ---------------------------------------------------------------------------------------------
# Where and when


def customer_timezone(profile: Profile, store_timezone: str) -> ZoneInfo:
    """Traits first, then the phone number's country, then the store's default."""
    from shared.domain.contacts import timezone_for_phone

    candidates = [profile.traits.get("timezone")]
    if profile.phone:
        try:
            candidates.append(timezone_for_phone(profile.phone))
        except ValueError:
            pass
    candidates.append(store_timezone)
    for name in candidates:
        if name:
            try:
                return ZoneInfo(str(name))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(now: float, tz: ZoneInfo, quiet: QuietHours | None) -> float | None:
    """None if a message may go now; else the epoch second the quiet hours end (DST-aware)."""
    if quiet is None:
        return None
    local = datetime.fromtimestamp(now, tz=UTC).astimezone(tz)
    if not quiet.contains(local.time()):
        return None
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)  # evening: quiet until tomorrow morning
    # Wall-clock construction in the zone: 08:00 stays 08:00 local across a DST change.
    end = datetime.combine(day, quiet.end, tzinfo=tz)
    return end.timestamp()


# ---------------------------------------------------------------------------------------------
# Who may be reached on which channel


@dataclass(frozen=True)
class Eligibility:
    channel: str
    ok: bool
    reason: str


def eligibility(
    profile: Profile,
    channel: str,
    kind: Kind,
    category: str | None,
    suppressed: str | None,  # "hard" | "marketing" | None, for this channel's address
) -> Eligibility:
    address = {
        "email": profile.email,
        "sms": profile.phone,
        "push": bool(profile.devices),
        "webpush": bool(profile.webpush),
    }.get(channel)
    if not address:
        what = {
            "email": "email address",
            "sms": "phone number",
            "push": "registered device",
            "webpush": "browser push subscription",
        }[channel]
        return Eligibility(channel, False, f"no {what}")
    if suppressed == "hard":
        return Eligibility(channel, False, f"{channel} address suppressed (bounced)")
    if kind == "transactional":
        return Eligibility(channel, True, "transactional")
    if suppressed == "marketing":
        return Eligibility(channel, False, f"{channel} address suppressed (complaint)")
    consent = profile.consent.get(channel)
    if consent is None:
        return Eligibility(channel, False, f"no {channel} consent")
    if consent.status == "pending":
        return Eligibility(channel, False, f"{channel} consent awaiting confirmation")
    if consent.status != "subscribed":
        return Eligibility(channel, False, f"{channel} consent withdrawn")
    if category:
        choice = profile.categories.get(category)
        if choice is not None and choice.status != "subscribed":
            return Eligibility(channel, False, f"opted out of {category}")
    return Eligibility(channel, True, "consented")


# ---------------------------------------------------------------------------------------------
# Frequency caps


class CapEntry(BaseModel):
    at: float
    channel: str
    send_id: str


def cap_state(entries: list[CapEntry], now: float) -> list[CapEntry]:
    """The entries that still count (the last 7 days), oldest first."""
    return sorted((e for e in entries if e.at > now - WEEK), key=lambda e: e.at)


def cap_allows(entries: list[CapEntry], channel: str, policy: DeliveryPolicy, now: float) -> float | None:
    """None if one more marketing message on `channel` fits every cap; else when it will fit
    (math.inf if a cap is 0: never)."""
    live = cap_state(entries, now)
    rules: list[tuple[Cap, list[CapEntry]]] = [(policy.cap, live)]
    if channel in policy.channel_caps:
        rules.append((policy.channel_caps[channel], [e for e in live if e.channel == channel]))
    fits_at = None
    for cap, counted in rules:
        for window, limit in ((DAY, cap.per_day), (WEEK, cap.per_week)):
            inside = [e for e in counted if e.at > now - window]
            if len(inside) >= limit:
                # the window frees a place when the oldest message that fills it ages out
                if limit == 0:
                    return math.inf  # the store turned this off: never, so skip rather than wait
                when = inside[len(inside) - limit].at + window
                fits_at = max(fits_at or when, when)
    return fits_at
