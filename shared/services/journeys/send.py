"""One message of a journey step on one channel: render the template, check what the law asks of it,
hand it to the provider.

shared/services/journeys/deliver.py decides which channel and whether it may go at all; this module
only turns the step into an email, an SMS or a push notification and sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.channels.email import PermanentSendError, TransientSendError, build_mime, send_raw
from shared.adapters.channels.push import Device, PushMessage, send_push
from shared.adapters.channels.sms import send_sms
from shared.domain.carts import Cart
from shared.domain.contacts import normalise_platform
from shared.domain.journeys import EMAIL_CONFIRMATION, Step, Variant
from shared.domain.offers import GivenOffer
from shared.domain.profiles import Profile
from shared.domain.stores import Store
from shared.services.consent.preferences import preferences_url
from shared.services.consent.unsubscribe import confirm_url, unsubscribe_url
from shared.services.journeys.context import Deps, Run, StepInput
from shared.services.journeys.effects import best_effort, unregister
from shared.services.journeys.variables import template_variables
from shared.templates.model import TemplateError
from shared.templates.render import render_email, render_push, render_sms, shows_address


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
    return _SENDERS[channel](m, rendering)


def _send_sms(m: Message, r: _Rendering) -> str:
    assert m.profile.phone is not None
    template = m.deps.templates.sms(m.state.store_id, r.template, locale=r.locale)
    body = render_sms(template, r.variables)
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
    rendered = render_push(m.deps.templates.push(m.state.store_id, r.template, locale=r.locale), r.variables)
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


def _send_email(m: Message, r: _Rendering) -> str:
    store, journey = m.store, m.run.journey
    if r.marketing and store.address is None:
        # CAN-SPAM: commercial email must carry the sender's valid physical postal address
        raise TemplateError(
            "marketing email needs the store's postal address (Store.address), which is not set",
            template=r.template,
        )
    rendered = render_email(
        m.deps.templates.email(m.state.store_id, r.template, locale=r.locale), r.variables
    )
    if r.marketing and r.unsubscribe_url not in rendered.html:
        # Gmail/Yahoo bulk-sender rules: a visible unsubscribe link in every marketing email
        raise TemplateError("marketing email has no visible unsubscribe link", template=r.template)
    if r.marketing and store.address and not shows_address(rendered.html, store.address.formatted_lines()):
        raise TemplateError("marketing email does not show the store's postal address", template=r.template)
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
}
