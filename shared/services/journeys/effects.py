"""What a journey step does to the profile after a provider's answer, beside the send itself.

A carrier's STOP, a push token the provider rejected and a browser subscription a push service
says is gone are facts about the customer: they go
through the same exactly-once fold as any event. None of it may undo or repeat the send.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from shared.domain.events import customer_event
from shared.domain.profiles import Profile
from shared.platform.log_safe import error_summary
from shared.services.journeys.context import Deps


def best_effort(fn: Callable[..., object], *args: Any) -> None:
    """Bookkeeping after a send (STOP, dead tokens, the cap's timestamp) must never undo or repeat the send:
    if it fails, it is logged and happens again the next time the provider says the same."""
    try:
        fn(*args)
    except Exception as exc:
        logging.getLogger("boomerang").warning("profile clean-up failed", extra=error_summary(exc))


def after_permanent(channel: str, exc: Exception, profile: Profile, deps: Deps, now: float) -> None:
    """A carrier STOP withdraws SMS consent through the same exactly-once fold as any event."""
    if channel == "sms" and getattr(exc, "code", None) == "OptedOut":
        _fold(
            deps,
            profile,
            "Consent Updated",
            now,
            f"sms-optout-{profile.customer_id}-{int(now) // 3600}",
            {
                "consent": {"sms": "unsubscribed"},
                "consent_source": "carrier-opt-out",
                "consent_text": "Replied STOP (number on the SMS opt-out list)",
            },
        )


def unregister(profile: Profile, tokens: list[str], deps: Deps, now: float) -> None:
    """Devices whose tokens the push provider rejected leave the profile (one event per registration)."""
    by_token = {d.token: d for d in profile.devices.values()}
    for token in tokens:
        device = by_token.get(token)
        if device is not None:
            mid = "push-rejected-" + hashlib.sha256(f"{token}|{device.at}".encode()).hexdigest()[:24]
            _fold(
                deps, profile, "Device Unregistered", now, mid, {"token": token, "platform": device.platform}
            )


def forget_browsers(profile: Profile, gone: dict[str, str], deps: Deps, now: float) -> None:
    """Browser subscriptions the push service answered 404/410 for leave the profile, with the reason."""
    from shared.domain.events import WEB_PUSH_UNSUBSCRIBED
    from shared.domain.webpush import subscription_key

    for endpoint, reason in gone.items():
        held = profile.webpush.get(subscription_key(endpoint))
        if held is not None:
            mid = "webpush-gone-" + hashlib.sha256(f"{endpoint}|{held.at}".encode()).hexdigest()[:24]
            _fold(
                deps, profile, WEB_PUSH_UNSUBSCRIBED, now, mid, {"endpoint": endpoint, "reason": reason[:200]}
            )


def _fold(
    deps: Deps, profile: Profile, event: str, now: float, message_id: str, props: dict[str, Any]
) -> None:
    deps.profiles.apply(customer_event(profile.store_id, profile.customer_id, event, props, now, message_id))
