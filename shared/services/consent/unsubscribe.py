"""One-click unsubscribe (RFC 8058) and the small confirmation page behind every email's link.

The link carries an HMAC-signed token bound to store, customer and channel. Unsubscribing publishes
a `Consent Updated` event on the bus, so consent changes travel the same road as a store's own
calls and the profile keeps one history of consent (when, where, what wording).
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from shared.adapters.bus import publish
from shared.domain.events import (
    CHANNELS,
    CONSENT_UPDATED,
    DOUBLE_OPT_IN_SOURCE,
    CanonicalEvent,
    customer_event,
)
from shared.platform import clock, signing
from shared.services.consent import guard

TOKEN_PARAM = "t"
LINK_LIFETIME_S = 400 * 24 * 3600  # old emails keep working well past CAN-SPAM's 30 days
# The preferences page (shared/services/consent/preferences.py) takes the same token; relative to /v1/unsubscribe, so
# the link works behind any stage or domain.
PREFERENCES_RELATIVE = "preferences"


@dataclass
class UnsubscribePage:
    status: int
    html: str
    headers: dict[str, str] = field(default_factory=lambda: dict(guard.PAGE_HEADERS))
    refused: str | None = None  # why a POST changed nothing (guard.refusal), for the logs


def unsubscribe_url(
    base_url: str, key: bytes | signing.KeyRing, store_id: str, customer_id: str, channel: str, now: float
) -> str:
    token = signing.sign(key, store_id, customer_id, channel, now + LINK_LIFETIME_S)
    return f"{base_url.rstrip('/')}/v1/unsubscribe?{TOKEN_PARAM}={quote(token)}"


def page(status: int, title: str, body: str) -> UnsubscribePage:
    doc = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{guard.STYLESHEET}</style>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return UnsubscribePage(status, doc)


def refused(reason: str, link_token: str) -> UnsubscribePage:
    """A POST this page does not obey (guard.refusal): nothing changed, and the way to do it right."""
    again = html.escape(f"?{TOKEN_PARAM}={quote(link_token)}")
    if reason == "page expired":
        answer = page(
            403,
            "This page has expired",
            f'<p>Nothing was changed. <a href="{again}">Open the page again</a> and press the button.</p>',
        )
    else:
        answer = page(
            403,
            "Nothing was changed",
            "<p>This request did not come from this page. To change what you receive, "
            f'<a href="{again}">open the page</a> and use its button.</p>',
        )
    answer.refused = reason
    return answer


def form(link_token: str, purpose: str, ring: signing.KeyRing, fields: str, button: str) -> str:
    """A page's form: posts back to the same URL with the page's form token."""
    action = f"?{TOKEN_PARAM}={quote(link_token)}"
    return (
        f'<form method=post action="{html.escape(action)}">'
        + guard.form_token_input(ring, purpose, link_token)
        + fields
        + f"<button type=submit>{html.escape(button)}</button></form>"
    )


def preferences_link(token: str, text: str) -> str:
    href = f"{PREFERENCES_RELATIVE}?{TOKEN_PARAM}={quote(token)}"
    return f'<p><a href="{html.escape(href)}">{html.escape(text)}</a></p>'


def consent_event(claims: Any, source: str, now: float) -> CanonicalEvent:
    # a repeated click is harmless: the state is the same
    return customer_event(
        claims.store_id,
        claims.customer_id,
        CONSENT_UPDATED,
        {
            "consent": {claims.channel: "unsubscribed"},
            "consent_source": source,
            "consent_text": "Unsubscribed through the link in a message",
        },
        now,
        f"unsubscribe-{uuid.uuid4()}",
    )


PURPOSE = "unsubscribe"  # the page a form token is bound to
CONFIRM_FIELD = "<input type=hidden name=confirm value=yes>"


class Unsubscriber:
    def __init__(self, key_provider: Any, events_client: Any, bus_name: str) -> None:
        self.key_provider = key_provider
        self.events = events_client
        self.bus_name = bus_name

    def _claims(self, params: dict[str, str]) -> Any:
        token = params.get(TOKEN_PARAM, "")
        claims = signing.verify(self.key_provider.ring(), token, clock.now_ts())
        if claims.channel not in CHANNELS:  # e.g. a double opt-in token: not an unsubscribe link
            raise signing.InvalidToken("wrong purpose")
        return claims

    def page(self, params: dict[str, str]) -> UnsubscribePage:
        try:
            claims = self._claims(params)
        except signing.InvalidToken:
            return _invalid()
        link = params[TOKEN_PARAM]
        return page(
            200,
            "Unsubscribe?",
            f"<p>Stop receiving marketing {html.escape(claims.channel)} messages from this store?</p>"
            + form(link, PURPOSE, self.key_provider.ring(), CONFIRM_FIELD, "Unsubscribe")
            + preferences_link(link, "Or choose what you receive, and where"),
        )

    def confirm(self, params: dict[str, str], post: guard.PagePost) -> UnsubscribePage:
        try:
            claims = self._claims(params)
        except signing.InvalidToken:
            return _invalid()
        one_click = guard.is_one_click(post)
        if not one_click:
            reason = guard.refusal(post, self.key_provider.ring(), PURPOSE, params[TOKEN_PARAM])
            if reason is not None:
                return refused(reason, params[TOKEN_PARAM])
            if post.form.get("confirm") != ["yes"]:
                return page(400, "Nothing was changed", "<p>Use the button on the unsubscribe page.</p>")
        now = clock.now_ts()
        publish(
            self.events,
            self.bus_name,
            [consent_event(claims, "one-click" if one_click else "unsubscribe-page", now)],
        )
        return page(
            200,
            "You are unsubscribed",
            f"<p>You will no longer receive marketing {html.escape(claims.channel)} messages from this store. "
            "Order confirmations and other messages about your orders still reach you.</p>"
            + preferences_link(params[TOKEN_PARAM], "Manage all your message preferences"),
        )


def _invalid() -> UnsubscribePage:
    return page(
        403,
        "This link is not valid",
        "<p>The unsubscribe link is incomplete, altered or expired. Use the link in a recent message, "
        "or reply to it and ask to be removed.</p>",
    )


CONFIRM_PURPOSE = "confirm:email"  # the token's channel field: this link only confirms email consent


def confirm_url(
    base_url: str, key: bytes | signing.KeyRing, store_id: str, customer_id: str, now: float
) -> str:
    token = signing.sign(key, store_id, customer_id, CONFIRM_PURPOSE, now + 7 * 24 * 3600)
    return f"{base_url.rstrip('/')}/v1/confirm?{TOKEN_PARAM}={quote(token)}"


class Confirmer:
    """Double opt-in: the link in the confirmation email. GET only shows a button (mail scanners
    prefetch links); the POST publishes the confirmed consent."""

    def __init__(self, key_provider: Any, events_client: Any, bus_name: str) -> None:
        self.key_provider = key_provider
        self.events = events_client
        self.bus_name = bus_name

    def _claims(self, params: dict[str, str]) -> Any:
        claims = signing.verify(self.key_provider.ring(), params.get(TOKEN_PARAM, ""), clock.now_ts())
        if claims.channel != CONFIRM_PURPOSE:
            raise signing.InvalidToken("wrong purpose")
        return claims

    def page(self, params: dict[str, str]) -> UnsubscribePage:
        try:
            self._claims(params)
        except signing.InvalidToken:
            return _invalid()
        return page(
            200,
            "Confirm your subscription",
            "<p>Confirm that you want offers and reminders from this store by email.</p>"
            + form(
                params[TOKEN_PARAM], "confirm", self.key_provider.ring(), CONFIRM_FIELD, "Yes, subscribe me"
            ),
        )

    def confirm(self, params: dict[str, str], post: guard.PagePost) -> UnsubscribePage:
        try:
            claims = self._claims(params)
        except signing.InvalidToken:
            return _invalid()
        reason = guard.refusal(post, self.key_provider.ring(), "confirm", params[TOKEN_PARAM])
        if reason is not None:
            return refused(reason, params[TOKEN_PARAM])
        if post.form.get("confirm") != ["yes"]:
            return page(400, "Nothing was changed", "<p>Use the button on the confirmation page.</p>")
        event = customer_event(
            claims.store_id,
            claims.customer_id,
            CONSENT_UPDATED,
            {
                "consent": {"email": "subscribed"},
                "consent_source": DOUBLE_OPT_IN_SOURCE,
                "consent_text": "Confirmed with the link sent to the address",
            },
            clock.now_ts(),
            f"confirm-{uuid.uuid4()}",
        )
        publish(self.events, self.bus_name, [event])
        return page(200, "Thank you", "<p>Your subscription is confirmed.</p>")
