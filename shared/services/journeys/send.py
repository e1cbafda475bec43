"""One message of a journey step on one channel: render the template, check what the law asks of it,
hand it to the provider.

shared/services/journeys/deliver.py decides which channel and whether it may go at all; this module
only turns the step into an email, an SMS, an app push or a browser notification and sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.channels.email import PermanentSendError, TransientSendError, build_mime, send_raw
from shared.adapters.channels.push import Device, PushMessage, send_push
from shared.adapters.channels.sms import send_sms
from shared.adapters.channels.webpush import outcome, send_webpush
from shared.domain.carts import Cart
from shared.domain.contacts import normalise_platform
from shared.domain.journeys import EMAIL_CONFIRMATION, Step, Variant
from shared.domain.offers import GivenOffer
from shared.domain.profiles import Profile
from shared.domain.stores import Store
from shared.services.consent.preferences import preferences_url
from shared.services.consent.unsubscribe import confirm_url, unsubscribe_url
from shared.services.journeys.context import Deps, Run, StepInput
from shared.services.journeys.effects import best_effort, forget_browsers, unregister
from shared.services.journeys.template_fallback import render_or_fallback
from shared.services.journeys.variables import template_variables
from shared.templates.model import EmailTemplate, TemplateError
from shared.templates.render import (
    RenderedEmail,
    render_email,
    render_push,
    render_sms,
    render_webpush,
    shows_address,
)


@dataclass(frozen=True)
class Message:
    """Everything one send of a step draws on, whichever channel carries it."""

    state: StepInput
    run: Run
    step: Step
    variant: Variant | None
    index: int
    cart: Cart | None
    profile: Profile
    store: Store
    deps: Deps
    now: float
    offer: GivenOffer | None
    products: list[dict[str, Any]]
    # what the customer saw as the subject (an email's subject line, a push's title), for their
    # history and their access export; filled in by the channel that sent it
    shown: dict[str, str] = field(default_factory=dict)
    # what the step's record should also say about the send, e.g. that the default template went out
    notes: list[str] = field(default_factory=list)
    # called just before the provider is (the claim's lease: shared/services/journeys/claim.py)
    handoff: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class _Rendering:
    """What every channel's template is rendered with."""

    template: str
    variables: dict[str, Any]
    locale: str | None
    unsubscribe_url: str
    marketing: bool


def send_on(channel: str, m: Message) -> str:
    """Render the step's template for one channel and hand it to the provider; returns its id."""
    journey, deps, profile, store_id = m.run.journey, m.deps, m.profile, m.state.store_id
    template_name = (m.variant.template if m.variant and m.variant.template else None) or m.step.template
    signing_key = deps.signing_keys.ring()
    unsub = unsubscribe_url(
        deps.unsubscribe_base_url, signing_key, store_id, profile.customer_id, channel, m.now
    )
    variables = template_variables(
        m.state, journey, m.step, m.index, m.cart, profile, m.store, channel, unsub, m.offer, m.products
    )
    # the same signed token as the unsubscribe link, on the page where every channel can be chosen
    variables["preferences_url"] = preferences_url(
        deps.unsubscribe_base_url, signing_key, store_id, profile.customer_id, channel, m.now
    )
    if journey.id == EMAIL_CONFIRMATION.id:
        variables["confirm_url"] = confirm_url(
            deps.unsubscribe_base_url, signing_key, store_id, profile.customer_id, m.now
        )
    # the customer's locale folder (pl/, pt-BR/...), else the store's default (the folder root)
    locale = profile.traits.get("locale") or getattr(m.store, "locale", None)
    rendering = _Rendering(
        template_name, variables, locale, unsub, marketing=journey.step_kind(m.step) == "marketing"
    )
    m.notes.clear()  # only the channel that sends has its say
    return _SENDERS[channel](m, rendering)


def _send_sms(m: Message, r: _Rendering) -> str:
    assert m.profile.phone is not None
    body, template = render_or_fallback(
        "sms",
        lambda owner: m.deps.templates.sms(owner, r.template, locale=r.locale),
        lambda t: (render_sms(t, r.variables), t),
        store_id=m.state.store_id,
        notes=m.notes,
    )
    m.handoff()
    return send_sms(
        m.deps.sns,
        to=m.profile.phone,
        body=body,
        transactional=not r.marketing,
        max_segments=template.max_segments,
        sender_id=m.store.sms_sender_id,
    )


def _send_push(m: Message, r: _Rendering) -> str:
    """To every registered device; the provider's id of the first that took it."""
    rendered = render_or_fallback(
        "push",
        lambda owner: m.deps.templates.push(owner, r.template, locale=r.locale),
        lambda t: render_push(t, r.variables),
        store_id=m.state.store_id,
        notes=m.notes,
    )
    devices = [
        Device(token=d.token, platform=normalise_platform(d.platform)) for d in m.profile.devices.values()
    ]
    shown = [
        *r.variables.get("cart", {}).get("items", []),
        *r.variables.get("viewed", []),
        r.variables.get("product") or {},
    ]
    m.shown["subject"] = rendered.title
    m.handoff()
    result = send_push(
        m.deps.pinpoint,
        app_id=m.deps.push_app_id,
        devices=devices,
        message=PushMessage(
            title=rendered.title,
            body=rendered.body,
            deep_link=rendered.link,
            # a rich notification shows the first product's picture (the newest cart item)
            image_url=next((i["image_url"] for i in shown if i.get("image_url")), None),
            data={"journey": m.run.journey.id, "step": m.step.id},
        ),
        transactional=not r.marketing,
    )
    if result.rejected:
        best_effort(unregister, m.profile, result.rejected, m.deps, m.now)
    if result.delivered:
        return next(iter(result.delivered.values()))
    if result.transient:
        raise TransientSendError("push provider busy", code="TEMPORARY_FAILURE")
    raise PermanentSendError("every registered device was rejected", code="NoValidDevice")


# Web push: a marketing message is stale after a day; what a customer is owed may wait for the browser longer
WEBPUSH_TTL_MARKETING_S = 24 * 3600
WEBPUSH_TTL_TRANSACTIONAL_S = 4 * 24 * 3600


def _send_webpush(m: Message, r: _Rendering) -> str:
    """To every browser the customer allowed; the push service's id of the first that took it."""
    from shared.domain.webpush import live, notification_payload

    subscriptions = live(m.profile.webpush, m.now)
    if not subscriptions:
        raise PermanentSendError("every browser subscription has expired", code="NoSubscription")
    if m.deps.vapid is None or m.deps.webpush_session is None:
        raise PermanentSendError("web push is not set up (no VAPID secret configured)", code="NotConfigured")
    shown = render_or_fallback(
        "webpush",
        lambda owner: m.deps.templates.webpush(owner, r.template, locale=r.locale),
        lambda t: render_webpush(t, r.variables),
        store_id=m.state.store_id,
        notes=m.notes,
    )
    try:
        payload = notification_payload(
            shown.title,
            shown.body,
            shown.link,
            shown.icon,
            shown.image,
            {"journey": m.run.journey.id, "step": m.step.id},
        )
    except ValueError as exc:
        raise TemplateError(str(exc), template=r.template) from None
    m.shown["subject"] = shown.title
    m.handoff()
    result = send_webpush(
        m.deps.webpush_session,
        subscriptions=subscriptions,
        payload=payload,
        vapid=m.deps.vapid.for_store(m.state.store_id),
        subject=f"mailto:{m.store.sender_email}",
        ttl=WEBPUSH_TTL_MARKETING_S if r.marketing else WEBPUSH_TTL_TRANSACTIONAL_S,
        urgency="normal" if r.marketing else "high",
    )
    if result.gone:
        best_effort(forget_browsers, m.profile, result.gone, m.deps, m.now)
    return outcome(result)


def _send_email(m: Message, r: _Rendering) -> str:
    store, journey = m.store, m.run.journey
    if r.marketing and store.address is None:
        # CAN-SPAM: commercial email must carry the sender's valid physical postal address
        raise TemplateError(
            "marketing email needs the store's postal address (Store.address), which is not set",
            template=r.template,
        )

    def checked(template: EmailTemplate) -> RenderedEmail:
        rendered = render_email(template, r.variables)
        if r.marketing and r.unsubscribe_url not in rendered.html:
            # Gmail/Yahoo bulk-sender rules: a visible unsubscribe link in every marketing email
            raise TemplateError("marketing email has no visible unsubscribe link", template=r.template)
        if (
            r.marketing
            and store.address
            and not shows_address(rendered.html, store.address.formatted_lines())
        ):
            raise TemplateError(
                "marketing email does not show the store's postal address", template=r.template
            )
        return rendered

    rendered = render_or_fallback(
        "email",
        lambda owner: m.deps.templates.email(owner, r.template, locale=r.locale),
        checked,
        store_id=m.state.store_id,
        notes=m.notes,
    )
    assert m.profile.email is not None
    m.shown["subject"] = rendered.subject
    raw = build_mime(
        sender=store.sender,
        to=m.profile.email,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        unsubscribe_url=r.unsubscribe_url,
        unsubscribe_mailto=store.unsubscribe_mailto,
        headers={"X-Boomerang-Journey": journey.id, "X-Boomerang-Step": m.step.id},
    )
    m.handoff()
    return send_raw(
        m.deps.ses,
        sender=store.sender,
        to=m.profile.email,
        raw=raw,
        configuration_set=m.deps.configuration_set,
        # SES copies these into its delivery/open/click events: the report's per step and variant counts
        tags={
            "journey": journey.id,
            "step": m.step.id,
            "store": m.state.store_id,
            **({"variant": m.variant.id} if m.variant else {}),
        },
    )


# a step's channels are one of these (shared.domain.journeys.Channel), checked when the journey loads
_SENDERS: dict[str, Callable[[Message, _Rendering], str]] = {
    "email": _send_email,
    "sms": _send_sms,
    "push": _send_push,
    "webpush": _send_webpush,
}
