"""The preferences page: which channels and which kinds of marketing message a customer wants.

Reached with the same signed link token as one-click unsubscribe (shared/platform/signing.py); the token's
channel is the message's channel, but the page covers every channel. Saving publishes ONE
`Consent Updated` event on the bus, like unsubscribing does, so consent keeps one history with its
proof (when, where, what wording).

Consent rules:
- an unticked channel the customer had (or may have) is withdrawn: withdrawing is always safe, so
  when the profile cannot be read every unticked channel is recorded as unsubscribed;
- a ticked channel is recorded as subscribed only when the customer ticked it themselves, i.e. it
  was not already ticked when the page was shown: a box pre-ticked from the profile never turns a
  withdrawal made meanwhile (another link, a STOP reply) back into consent;
- categories narrow what marketing is sent and are always saved as shown; they never grant consent
  for a channel by themselves.
"""

from __future__ import annotations

import html
import uuid
from typing import Any
from urllib.parse import quote

from shared.adapters.bus import publish
from shared.domain.events import CONSENT_UPDATED, customer_event
from shared.platform import clock, signing
from shared.services.consent import guard
from shared.services.consent.unsubscribe import (
    LINK_LIFETIME_S,
    TOKEN_PARAM,
    UnsubscribePage,
    form,
    page,
    refused,
)

PREFERENCES_PATH = "/v1/preferences"
CONSENT_SOURCE = "preferences-page"

CHANNELS: dict[str, str] = {
    "email": "Email",
    "sms": "Text messages (SMS)",
    "push": "Push notifications",
    "webpush": "Browser notifications",
}
CATEGORIES: dict[str, str] = {
    "reminders": "Cart and browsing reminders",
    "offers": "Offers and sales",
    "news": "News and new products",
}
# Shown on the page above the button and recorded with every change as the consent wording.
CONSENT_TEXT = (
    "Tick the ways this store may send you marketing messages and the topics you want to hear about. "
    "Untick a box to stop. You can change this at any time on this page or with the link in any message. "
    "Messages about your orders are sent whatever you choose here."
)

FORM_MARKER = ("form", "preferences")  # a POST without it was not made from this page
PURPOSE = "preferences"  # the page a form token is bound to


def preferences_url(
    base_url: str, key: bytes | signing.KeyRing, store_id: str, customer_id: str, channel: str, now: float
) -> str:
    token = signing.sign(key, store_id, customer_id, channel, now + LINK_LIFETIME_S)
    return f"{base_url.rstrip('/')}{PREFERENCES_PATH}?{TOKEN_PARAM}={quote(token)}"


def _status(entry: Any) -> str | None:
    """A profile consent entry's status (a Consent model, or a bare status string)."""
    if entry is None:
        return None
    return str(getattr(entry, "status", entry))


def subscribed_channels(profile: Any) -> set[str]:
    consent = getattr(profile, "consent", None) or {}
    return {ch for ch in CHANNELS if _status(consent.get(ch)) == "subscribed"}


def wanted_categories(profile: Any) -> set[str]:
    """Categories are wanted unless the customer said otherwise."""
    chosen = getattr(profile, "categories", None) or {}
    return {c for c in CATEGORIES if _status(chosen.get(c)) != "unsubscribed"}


def changes(
    ticked: set[str], shown_ticked: set[str], subscribed_now: set[str] | None, ticked_categories: set[str]
) -> dict[str, Any]:
    """The Consent Updated properties for one submitted form (see the module's consent rules).

    `subscribed_now` is None when the profile could not be read at submit time.
    """
    consent: dict[str, str] = {}
    for channel in CHANNELS:
        held = channel in shown_ticked or (subscribed_now is None or channel in subscribed_now)
        if channel in ticked:
            if channel not in shown_ticked and not (subscribed_now and channel in subscribed_now):
                consent[channel] = "subscribed"  # an explicit tick is explicit consent
        elif held:
            consent[channel] = "unsubscribed"
    return {
        "consent": consent,
        "categories": {c: "subscribed" if c in ticked_categories else "unsubscribed" for c in CATEGORIES},
        "consent_source": CONSENT_SOURCE,
        "consent_text": CONSENT_TEXT,
    }


def _checkbox(name: str, value: str, label: str, checked: bool) -> str:
    return (
        f'<label><input type=checkbox name={name} value="{html.escape(value)}"{" checked" if checked else ""}>'
        f"{html.escape(label)}</label>"
    )


def _form(token: str, ring: signing.KeyRing, channels: set[str], categories: set[str]) -> str:
    shown = "".join(f'<input type=hidden name=shown value="{ch}">' for ch in sorted(channels))
    fields = (
        f'<input type=hidden name={FORM_MARKER[0]} value="{FORM_MARKER[1]}">{shown}'
        "<fieldset><legend>Send me marketing messages by</legend>"
        + "".join(_checkbox("channel", ch, label, ch in channels) for ch, label in CHANNELS.items())
        + "</fieldset><fieldset><legend>About</legend>"
        + "".join(_checkbox("category", c, label, c in categories) for c, label in CATEGORIES.items())
        + "</fieldset>"
        f"<p>{html.escape(CONSENT_TEXT)}</p>"
    )
    return form(token, PURPOSE, ring, fields, "Save preferences")


class PreferenceCenter:
    def __init__(self, key_provider: Any, events_client: Any, bus_name: str, profiles: Any) -> None:
        self.key_provider = key_provider
        self.events = events_client
        self.bus_name = bus_name
        self.profiles = profiles  # a ProfileStore (load_profile), or None

    def _claims(self, params: dict[str, str]) -> signing.Claims:
        claims = signing.verify(self.key_provider.ring(), params.get(TOKEN_PARAM, ""), clock.now_ts())
        if claims.channel not in CHANNELS:  # a double opt-in link is not a preferences link
            raise signing.InvalidToken("wrong purpose")
        return claims

    def _profile(self, claims: signing.Claims) -> Any:
        if self.profiles is None:
            return None
        return self.profiles.load_profile(claims.store_id, claims.customer_id)

    def page(self, params: dict[str, str]) -> UnsubscribePage:
        try:
            claims = self._claims(params)
        except signing.InvalidToken:
            return invalid()
        profile = self._profile(claims)
        channels = subscribed_channels(profile) if profile is not None else set()
        categories = wanted_categories(profile)
        return page(
            200,
            "Your message preferences",
            _form(params[TOKEN_PARAM], self.key_provider.ring(), channels, categories),
        )

    def save(self, params: dict[str, str], post: guard.PagePost) -> UnsubscribePage:
        try:
            claims = self._claims(params)
        except signing.InvalidToken:
            return invalid()
        reason = guard.refusal(post, self.key_provider.ring(), PURPOSE, params[TOKEN_PARAM])
        if reason is not None:
            return refused(reason, params[TOKEN_PARAM])
        form = post.form
        if form.get(FORM_MARKER[0], [""])[0] != FORM_MARKER[1]:
            return page(
                400,
                "Nothing was changed",
                "<p>Your choices did not arrive. Open the link from the message again and save the form.</p>",
            )
        ticked = set(form.get("channel", [])) & set(CHANNELS)
        shown = set(form.get("shown", [])) & set(CHANNELS)
        ticked_categories = set(form.get("category", [])) & set(CATEGORIES)
        profile = self._profile(claims)
        subscribed_now = subscribed_channels(profile) if profile is not None else None
        properties = changes(ticked, shown, subscribed_now, ticked_categories)
        event = customer_event(
            claims.store_id,
            claims.customer_id,
            CONSENT_UPDATED,
            properties,
            clock.now_ts(),
            f"preferences-{uuid.uuid4()}",
        )
        publish(self.events, self.bus_name, [event])
        chosen = [CHANNELS[ch] for ch in CHANNELS if ch in ticked]
        summary = ", ".join(chosen) if chosen else "no marketing messages"
        action = f"?{TOKEN_PARAM}={quote(params[TOKEN_PARAM])}"
        return page(
            200,
            "Your preferences are saved",
            f"<p>Marketing messages: {html.escape(summary)}.</p>"
            "<p>Messages about your orders still reach you.</p>"
            f'<p><a href="{html.escape(action)}">Change your preferences again</a></p>',
        )


def invalid() -> UnsubscribePage:
    return page(
        403,
        "This link is not valid",
        "<p>The preferences link is incomplete, altered or expired. Use the link in a recent message.</p>",
    )
