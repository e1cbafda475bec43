"""Browser push (RFC 8030 delivery, RFC 8291 aes128gcm encryption, RFC 8292 VAPID) through pywebpush.

One encrypted POST per browser subscription to its push service (Mozilla autopush, FCM for Chrome,
Apple's web push service...), signed with the store's VAPID key (shared/platform/vapid.py). Each
answer is classified the way push services document them:

- 201 Created (200/202 from some): accepted; the ``Location`` header names the message.
- 404 Not Found / 410 Gone: the subscription expired or was withdrawn: remove it from the profile.
- 429 Too Many Requests: honour ``Retry-After`` (seconds or an HTTP date): try later, not now.
- 400 / 413 (malformed, payload too large) and other 4xx (401/403: our VAPID signature refused):
  permanent for this message.
- 5xx and a connection that never reached the service: transient, safe to try again.
- a read timeout after the request went out: maybe delivered; never retried (exactly once).

An endpoint addresses one browser, so logs carry only the push service's host and a short hash.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from shared.adapters.channels.email import PermanentSendError, TransientSendError
from shared.domain.webpush import BrowserSubscription
from shared.platform.vapid import VapidKeyPair

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_S = 60.0  # a 429 without Retry-After
MAX_RETRY_AFTER_S = 24 * 3600.0  # a bigger one is a misbehaving service: retry tomorrow at the latest
TIMEOUT_S = (5.0, 10.0)  # connect, read
_GONE = frozenset({404, 410})
_ACCEPTED = frozenset({200, 201, 202})
URGENCIES = ("very-low", "low", "normal", "high")  # RFC 8030 §5.3


class RetryLater(TransientSendError):
    """The push service asked to be left alone for ``retry_after`` seconds (429 Retry-After)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, "TooManyRequests")
        self.retry_after = retry_after


class MaybeSent(TransientSendError):
    """No answer after the request went out: the push service may have taken it; never resend."""


def endpoint_label(endpoint: str) -> str:
    """The push service's host and a short hash: tells subscriptions apart in logs, addresses none."""
    return f"{urlsplit(endpoint).hostname}#{hashlib.sha256(endpoint.encode()).hexdigest()[:8]}"


@dataclass
class WebPushResult:
    delivered: dict[str, str] = field(default_factory=dict)  # endpoint -> message id (Location)
    gone: dict[str, str] = field(default_factory=dict)  # endpoint -> why (e.g. "410 from push service")
    rejected: list[str] = field(default_factory=list)  # refused for this message (400, 413, 401...)
    transient: list[str] = field(default_factory=list)  # 5xx, unreachable: worth another try
    retry_after: float | None = None  # the longest Retry-After of the 429s, in seconds
    maybe_sent: list[str] = field(default_factory=list)  # timed out after sending


def retry_after_seconds(value: str | None, now: float) -> float:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 1.0), MAX_RETRY_AFTER_S)


def send_webpush(
    session: Any,
    *,
    subscriptions: list[BrowserSubscription],
    payload: bytes,
    vapid: VapidKeyPair,
    subject: str,
    ttl: int,
    urgency: str,
    timeout: tuple[float, float] = TIMEOUT_S,
) -> WebPushResult:
    """Encrypt ``payload`` to each subscription and POST it with a VAPID signature, TTL and Urgency.

    ``session``: a requests.Session (connection reuse; the emulator's stand-in certificate).
    ``subject``: the VAPID ``sub`` claim, a mailto: or https: contact for the push service.
    """
    import requests
    from py_vapid import Vapid02
    from pywebpush import WebPushException, webpush

    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {URGENCIES}")
    signer = Vapid02(private_key=vapid.private_key)
    out = WebPushResult()
    for sub in subscriptions:
        label = endpoint_label(sub.endpoint)
        try:
            response = webpush(
                sub.subscription_info(),
                data=payload,  # bytes are sent as they are
                vapid_private_key=signer,
                # a fresh dict: pywebpush fills in aud (the endpoint's origin) and exp (12 h) in place
                vapid_claims={"sub": subject},
                ttl=ttl,
                headers={"Urgency": urgency},
                requests_session=session,
                timeout=timeout,  # requests takes (connect, read)
            )
            status, headers = response.status_code, response.headers
        except WebPushException as exc:
            if exc.response is None:
                out.rejected.append(sub.endpoint)  # refused before sending (bad keys)
                logger.warning("web push not sent", extra={"endpoint": label, "error": str(exc)[:200]})
                continue
            status, headers = exc.response.status_code, exc.response.headers
        except requests.exceptions.ReadTimeout:
            out.maybe_sent.append(sub.endpoint)
            logger.warning("web push unanswered", extra={"endpoint": label})
            continue
        except requests.exceptions.RequestException as exc:  # connect error/timeout: nothing went out
            out.transient.append(sub.endpoint)
            logger.warning("web push unreachable", extra={"endpoint": label, "error": type(exc).__name__})
            continue
        if status in _ACCEPTED:
            out.delivered[sub.endpoint] = str(headers.get("Location") or f"webpush-{label}")
        elif status in _GONE:
            out.gone[sub.endpoint] = f"{status} from the push service: subscription expired or withdrawn"
        elif status == 429:
            wait = retry_after_seconds(headers.get("Retry-After"), time.time())
            out.retry_after = max(out.retry_after or 0.0, wait)
        elif status >= 500:
            out.transient.append(sub.endpoint)
        else:
            out.rejected.append(sub.endpoint)
        if status not in _ACCEPTED:
            logger.info("web push not delivered", extra={"endpoint": label, "status": status})
    logger.info(
        "web push sent",
        extra={
            "delivered": len(out.delivered),
            "gone": len(out.gone),
            "rejected": len(out.rejected),
            "transient": len(out.transient),
            "throttled": out.retry_after is not None,
        },
    )
    return out


def outcome(result: WebPushResult) -> str:
    """The provider id of the first delivery, or the error the journey step acts on."""
    if result.delivered:
        return next(iter(result.delivered.values()))
    if result.maybe_sent:
        raise MaybeSent("push service did not answer after the message was sent", "ReadTimeout")
    if result.retry_after is not None:
        raise RetryLater(
            f"push service throttled; retry after {result.retry_after:.0f} s", result.retry_after
        )
    if result.transient:
        raise TransientSendError("push service unavailable", "ServiceUnavailable")
    if result.gone and not result.rejected:
        raise PermanentSendError("every browser subscription has expired", "SubscriptionGone")
    raise PermanentSendError("every browser subscription refused the message", "Rejected")
