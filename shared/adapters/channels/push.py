"""Mobile push through the Pinpoint send API (AWS End User Messaging Push).

Only ``SendMessages`` with direct device addresses: Pinpoint endpoints, segments and journeys end
on 2026-10-30, the send API does not. Device tokens identify a person's phone, so logs carry only
a shortened form. Whole-call failures raise the channel-neutral errors of ``shared.adapters.channels.email``;
per-device outcomes come back in a ``PushResult`` so the caller can drop dead tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from shared.adapters.channels.email import PermanentSendError, classify
from shared.domain.contacts import Platform, normalise_platform

logger = logging.getLogger(__name__)

MAX_ADDRESSES = 100  # Pinpoint's limit of addresses per SendMessages request

_DELIVERED = frozenset({"SUCCESSFUL", "DUPLICATE"})  # DUPLICATE: the same address twice, sent once
_REJECTED = frozenset({"PERMANENT_FAILURE", "OPT_OUT"})
# APNs answers 400 BadDeviceToken / 410 Unregistered, FCM 404 UNREGISTERED for dead tokens.
_DEAD_TOKEN_STATUS = frozenset({400, 404, 410})


@dataclass(frozen=True)
class Device:
    token: str
    platform: Platform

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("device token is empty")
        object.__setattr__(self, "platform", normalise_platform(self.platform))


@dataclass(frozen=True)
class PushMessage:
    title: str
    body: str
    deep_link: str | None = None
    image_url: str | None = None
    data: dict[str, str] = field(default_factory=dict)


@dataclass
class PushResult:
    delivered: dict[str, str] = field(default_factory=dict)  # token -> Pinpoint MessageId
    rejected: list[str] = field(default_factory=list)  # dead or opted-out tokens: remove them
    transient: list[str] = field(default_factory=list)  # worth another try later
    # FCM may hand back a canonical token for a delivered message; the caller stores the new one.
    updated: dict[str, str] = field(default_factory=dict)  # old token -> new token


def short_token(token: str) -> str:
    """Enough of a token to tell devices apart in logs, not enough to address one."""
    return f"{token[:6]}…{token[-4:]}" if len(token) > 12 else "…"


def _configuration(message: PushMessage, transactional: bool) -> dict[str, Any]:
    action = "DEEP_LINK" if message.deep_link else "OPEN_APP"
    common: dict[str, Any] = {"Action": action, "Title": message.title, "Body": message.body}
    if message.deep_link:
        common["Url"] = message.deep_link
    if message.data:
        common["Data"] = dict(message.data)
    apns: dict[str, Any] = {
        **common,
        # Apple's scale: 10 = now (alerts), 5 = when convenient for the battery (marketing).
        "Priority": "10" if transactional else "5",
        "SilentPush": False,
    }
    gcm: dict[str, Any] = {**common, "Priority": "high" if transactional else "normal", "SilentPush": False}
    if message.image_url:
        apns["MediaUrl"] = message.image_url
        gcm["ImageUrl"] = message.image_url
    return {"APNSMessage": apns, "GCMMessage": gcm}


def _sort(result: dict[str, Any], tokens: list[str]) -> PushResult:
    out = PushResult()
    for token in tokens:
        item = result.get(token)
        if item is None:  # not in the answer: we cannot know it went out, so try again
            out.transient.append(token)
            continue
        status = str(item.get("DeliveryStatus", ""))
        code = int(item.get("StatusCode", 0) or 0)
        if status in _DELIVERED:
            out.delivered[token] = str(item.get("MessageId", ""))
            if item.get("UpdatedToken"):
                out.updated[token] = str(item["UpdatedToken"])
        elif status in _REJECTED or code in _DEAD_TOKEN_STATUS:
            out.rejected.append(token)
        else:  # THROTTLED, TEMPORARY_FAILURE, UNKNOWN_FAILURE, or a status added after this code
            out.transient.append(token)
        if status not in _DELIVERED:
            logger.info(
                "push not delivered",
                extra={"token": short_token(token), "status": status, "status_code": code},
            )
    return out


def send_push(
    pinpoint_client: Any,
    *,
    app_id: str,
    devices: list[Device],
    message: PushMessage,
    transactional: bool,
) -> PushResult:
    """Send one notification to each device in a single SendMessages call.

    Raises TransientSendError or PermanentSendError when the whole call fails (nothing was sent);
    ValueError for more than 100 devices (Pinpoint's per-request limit; the caller splits).
    """
    if not devices:
        return PushResult()
    addresses = {d.token: {"ChannelType": d.platform} for d in devices}
    if len(addresses) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} devices per push, got {len(addresses)}")
    request = {"Addresses": addresses, "MessageConfiguration": _configuration(message, transactional)}
    try:
        response = pinpoint_client.send_messages(ApplicationId=app_id, MessageRequest=request)
    except (ClientError, BotoCoreError) as exc:
        # classify's decision fits Pinpoint (TooManyRequestsException and 5xx transient, 4xx not);
        # only its wording is SES's.
        error = classify(exc)
        if isinstance(exc, ClientError):
            detail = str(exc.response.get("Error", {}).get("Message", ""))
            for token in addresses:  # in case the service quotes an address back
                detail = detail.replace(token, short_token(token))
            text = f"Pinpoint {error.code}: {detail}"
        else:
            text = f"Pinpoint call failed: {type(exc).__name__}"
        logger.warning(
            "push send failed", extra={"code": error.code, "permanent": isinstance(error, PermanentSendError)}
        )
        raise type(error)(text, error.code) from None
    result = cast(dict[str, Any], response.get("MessageResponse", {}).get("Result", {}))
    out = _sort(result, list(addresses))
    logger.info(
        "push sent",
        extra={
            "delivered": len(out.delivered),
            "rejected": len(out.rejected),
            "transient": len(out.transient),
        },
    )
    return out
