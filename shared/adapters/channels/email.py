"""Building and sending marketing email through Amazon SES v2.

``build_mime`` produces the raw message ourselves (rather than SES "Simple" content) because SES's
simple form cannot carry RFC 8058 one-click unsubscribe headers, which Gmail and Yahoo require of
bulk senders. ``send_raw`` sends it and sorts failures into permanent and transient, so the caller
decides about retrying. Recipient addresses never appear in logs or exception messages.
"""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from shared.platform import clock

logger = logging.getLogger(__name__)

# Headers build_mime sets itself; callers may not replace them through ``headers``.
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
)
_VERBATIM = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII except ':'
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_MAX_HEADER_LINE = 998  # RFC 5322 hard limit, CRLF excluded


class _Policy(EmailPolicy):
    """policy.SMTP, except that List-Unsubscribe is never RFC 2047-encoded.

    The stock folder turns any word longer than 78 characters into ``=?utf-8?q?...?=``, and a
    signed unsubscribe URL always is one; mailbox providers then cannot read the header. We fold
    these headers only between the URIs instead (lines up to 998 characters are legal).
    """

    def _verbatim(self, name: str, value: Any) -> str:
        parts = [p.strip() for p in str(value).split(",")]
        return f"{name}: " + f",{self.linesep} ".join(parts) + self.linesep

    def fold(self, name: str, value: Any) -> str:
        if name.lower() in _VERBATIM:
            return self._verbatim(name, value)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in _VERBATIM:
            return self._verbatim(name, value).encode("ascii")
        return super().fold_binary(name, value)


_POLICY = _Policy(linesep="\r\n")  # same settings as email.policy.SMTP


def _check_value(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"header {name} must be a string")
    # A line break would let the value start a new header (header injection); other controls
    # have no business in a header either.
    if _CONTROL.search(value):
        raise ValueError(f"header {name} contains a line break or control character")


def _check_uri(kind: str, uri: str, schemes: tuple[str, ...]) -> None:
    _check_value("List-Unsubscribe", uri)
    if not uri.isascii() or any(c in uri for c in '<>, \t"'):
        raise ValueError(f"{kind} unsubscribe URI must be ASCII without spaces, commas or angle brackets")
    if urlsplit(uri).scheme.lower() not in schemes:
        raise ValueError(f"{kind} unsubscribe URI must use {' or '.join(schemes)}")


def _domain(address: str) -> str:
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2]
    if not domain:
        raise ValueError("sender has no domain")
    return domain


def build_mime(
    *,
    sender: str,
    to: str,
    subject: str,
    html: str,
    text: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None,
    headers: dict[str, str],
) -> bytes:
    """A multipart/alternative message (text, then HTML) with one-click unsubscribe headers.

    ``unsubscribe_url`` must be https (RFC 8058); plain http is accepted only for the local
    emulator's localhost. Raises ValueError on line breaks in any header value, a header name
    that is not RFC 5322, or an attempt to replace a header set here.
    """
    for name, value in (("From", sender), ("To", to), ("Subject", subject)):
        _check_value(name, value)
    host = (urlsplit(unsubscribe_url).hostname or "").lower()
    local = host in ("localhost", "127.0.0.1", "::1")
    _check_uri("https", unsubscribe_url, ("https", "http") if local else ("https",))
    unsubscribe = f"<{unsubscribe_url}>"
    if unsubscribe_mailto:
        _check_uri("mailto", unsubscribe_mailto, ("mailto",))
        unsubscribe += f", <{unsubscribe_mailto}>"
    if len("List-Unsubscribe: ") + len(unsubscribe) > _MAX_HEADER_LINE:
        raise ValueError("List-Unsubscribe is too long for one header line")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _RESERVED:
            raise ValueError(f"header {name} is set by build_mime")
        _check_value(name, value)

    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject  # the policy RFC 2047-encodes non-ASCII
    msg["Date"] = format_datetime(clock.now())
    # An explicit domain: make_msgid would otherwise ask DNS for this host's FQDN.
    msg["Message-ID"] = make_msgid(domain=_domain(sender))
    msg["List-Unsubscribe"] = unsubscribe
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in headers.items():
        msg[name] = value
    # Quoted-printable keeps lines under 78 characters and the message 7-bit clean whatever the HTML.
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()


# --- sending --------------------------------------------------------------------------------------


class SendError(Exception):
    def __init__(self, message: str, code: str = "") -> None:
        self.code = code
        super().__init__(message)


class PermanentSendError(SendError):
    """Retrying this message will not help (rejected, unverified sender, account suspended...)."""


class TransientSendError(SendError):
    """Worth retrying later with backoff (throttling, quota, SES or network trouble)."""


class SendingParked(TransientSendError):
    """SES takes nothing from this account for a while: the daily quota is used up (SES answers
    ThrottlingException "Daily message quota exceeded"; the 24-hour window rolls, so room comes back
    as the oldest sends age out) or sending is paused (SendingPausedException, until an operator or
    SES resumes it). Minutes of Step Functions retries would only fail again: the step parks instead,
    and looks again after `park_s` (jittered by the caller so parked steps do not return together)."""

    park_s = 1800


# SESv2 SendEmail error codes. Anything else: 5xx transient, otherwise permanent.
PERMANENT_CODES = frozenset(
    {
        "MessageRejected",  # content or recipient refused (incl. sandbox: recipient not verified)
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "NotFoundException",  # e.g. the configuration set does not exist
        "BadRequestException",
        "ValidationException",
        "AccessDeniedException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",  # sending rate
        "LimitExceededException",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServiceError",
    }
)

_EMAIL = re.compile(r"[^\s<>\"',;:]+@[^\s<>\"',;:]+")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TAG_BAD = re.compile(r"[^A-Za-z0-9_-]")


def _redact(message: str) -> str:
    # SES quotes the failing identities in some messages; they may be the recipient.
    return _EMAIL.sub("<address>", message)


def _tag_value(value: str) -> str:
    # SES accepts only [A-Za-z0-9_-]{1,256} in tag values; ids like "shop.example" are common.
    return (_TAG_BAD.sub("_", value) or "_")[:256]


def classify(exc: BaseException) -> SendError:
    """Turn a botocore failure into a Permanent or Transient SendError (without addresses)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"SES {code}: {_redact(str(error.get('Message', '')))}"
        if code == "SendingPausedException" or "daily message quota" in message.lower():
            return SendingParked(message, code)
        if code in TRANSIENT_CODES or (code not in PERMANENT_CODES and status >= 500):
            return TransientSendError(message, code)
        return PermanentSendError(message, code)
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return TransientSendError(f"SES unreachable: {type(exc).__name__}", type(exc).__name__)
    return PermanentSendError(f"SES call failed: {type(exc).__name__}", type(exc).__name__)


def send_raw(
    sesv2_client: Any,
    *,
    sender: str,
    to: str,
    raw: bytes,
    configuration_set: str | None,
    tags: dict[str, str],
) -> str:
    """Send a raw MIME message with SES v2; returns the SES MessageId.

    Raises PermanentSendError or TransientSendError; the caller owns the retry policy.
    """
    for name in tags:
        if not _TAG.match(name):
            raise ValueError(f"invalid SES tag name {name!r}")
    request: dict[str, Any] = {
        "FromEmailAddress": sender,
        "Destination": {"ToAddresses": [to]},
        "Content": {"Raw": {"Data": raw}},
        "EmailTags": [{"Name": k, "Value": _tag_value(v)} for k, v in tags.items()],
    }
    if configuration_set:
        request["ConfigurationSetName"] = configuration_set
    try:
        response = sesv2_client.send_email(**request)
    except (ClientError, BotoCoreError) as exc:
        error = classify(exc)
        logger.warning(
            "email send failed",
            extra={"code": error.code, "permanent": isinstance(error, PermanentSendError), "tags": tags},
        )
        raise error from None  # the original may quote the recipient
    message_id = str(response["MessageId"])
    logger.info("email sent", extra={"message_id": message_id, "tags": tags, "bytes": len(raw)})
    return message_id
