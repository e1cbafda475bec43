"""SMS through Amazon SNS (delivered by AWS End User Messaging SMS): numbers, segments, sending.

Phone numbers are personal data: they never appear in logs or exception messages. ``send_sms``
raises the channel-neutral errors of ``shared.email`` so the journey step treats every channel's
failures alike; ``OptedOut`` tells the caller to withdraw the customer's SMS consent.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from phonenumbers import timezone as phone_timezone

from shared.email import PermanentSendError, SendError, TransientSendError

logger = logging.getLogger(__name__)

# --- numbers --------------------------------------------------------------------------------------


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """``raw`` as E.164 (``+48601234567``); ValueError if it is not a valid number.

    ``default_region`` (ISO 3166 alpha-2, e.g. "PL") lets a national number without a country code
    through; without it only international numbers parse.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("phone number is empty")
    try:
        parsed = phonenumbers.parse(raw, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as exc:
        # The library's message never quotes the input, so it is safe to pass on.
        hint = "" if default_region else "; give a country code or a default region"
        reason = str(exc).split(") ", 1)[-1].rstrip(".")  # drop the library's "(1) " error number
        raise ValueError(f"phone number cannot be parsed: {reason}{hint}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("phone number is not a valid number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_region(e164: str) -> str | None:
    """The ISO country code of an E.164 number (None if unknown or unparseable)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or None
    except phonenumbers.NumberParseException:
        return None


def timezone_for_phone(e164: str) -> str | None:
    """The IANA zone when the number pins down exactly one, else None (the caller uses the store's).

    Mobile numbers in multi-zone countries (US mobiles are per area code, but RU, AU, BR... are
    not) give several zones; guessing one would send marketing SMS at night.
    """
    try:
        zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
    real = [z for z in zones if z and z != "Etc/Unknown"]
    return real[0] if len(real) == 1 else None


# --- segments -------------------------------------------------------------------------------------

# GSM 03.38 default alphabet. ESC (0x1B) is left out: it only introduces extension characters.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: ESC + one septet each, so they cost two.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_PART = 160, 153  # a concatenated part loses 7 septets to its UDH
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsSegments:
    """How a body is billed. ``characters`` is in the encoding's units: GSM-7 septets (extension
    characters count two) or UTF-16 code units for UCS-2 (an emoji counts two)."""

    encoding: Literal["GSM-7", "UCS-2"]
    characters: int
    segments: int


def _pack(units: list[int], single: int, part: int) -> int:
    """Segments needed for characters of the given widths.

    A character is never split across parts (an escape sequence or a surrogate pair stays whole,
    as handsets and SMSCs do), so a part may hold fewer than ``part`` units.
    """
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    count, used = 1, 0
    for width in units:
        if used + width > part:
            count, used = count + 1, 0
        used += width
    return count


def segments(body: str) -> SmsSegments:
    """The encoding SNS will use for ``body`` and how many SMS parts it becomes."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in body):
        septets = [2 if c in _GSM_EXTENSION else 1 for c in body]
        return SmsSegments("GSM-7", sum(septets), _pack(septets, GSM_SINGLE, GSM_PART))
    # One character outside GSM-7 turns the whole message into UCS-2 (UTF-16 on the wire).
    code_units = [2 if ord(c) > 0xFFFF else 1 for c in body]
    return SmsSegments("UCS-2", sum(code_units), _pack(code_units, UCS2_SINGLE, UCS2_PART))


# --- sending --------------------------------------------------------------------------------------


class OptedOut(PermanentSendError):
    """The number replied STOP (or equivalent); the caller withdraws the customer's SMS consent."""

    def __init__(self, message: str = "recipient has opted out of SMS", code: str = "OptedOut") -> None:
        super().__init__(message, code)


# SNS error codes (Publish, CheckIfPhoneNumberIsOptedOut). Others: 5xx transient, else permanent.
SNS_TRANSIENT_CODES = frozenset(
    {
        "Throttled",  # ThrottledException (429): account SMS rate / spend-per-second
        "Throttling",
        "ThrottlingException",
        "KMSThrottling",
        "RequestLimitExceeded",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)
SNS_PERMANENT_CODES = frozenset(
    {
        "InvalidParameter",  # incl. a number SNS will not accept, or the sandbox's unverified number
        "ParameterValueInvalid",
        "ValidationException",
        "OptedOut",
        "NotFound",
        "AuthorizationError",
        "InvalidSecurity",
        "KMSDisabled",
        "KMSInvalidState",
        "KMSNotFound",
        "KMSOptInRequired",
        "KMSAccessDenied",
    }
)

_DIGITS = re.compile(r"\+?\d[\d\s().-]{5,}\d")
_SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,11}$")


def _redact(message: str) -> str:
    # SNS quotes the number in some InvalidParameter messages.
    return _DIGITS.sub("<phone>", message)


def classify_sns(exc: BaseException) -> SendError:
    """A botocore failure from SNS as a Permanent or Transient SendError, without the number.

    shared.email.classify knows SES codes; SNS's throttling code ("Throttled", HTTP 429) would
    come out permanent there.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"SNS {code}: {_redact(str(error.get('Message', '')))}"
        if code == "OptedOut":
            return OptedOut(message)
        if code in SNS_TRANSIENT_CODES or (code not in SNS_PERMANENT_CODES and status >= 500):
            return TransientSendError(message, code)
        return PermanentSendError(message, code)
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return TransientSendError(f"SNS unreachable: {type(exc).__name__}", type(exc).__name__)
    return PermanentSendError(f"SNS call failed: {type(exc).__name__}", type(exc).__name__)


def valid_sender_id(sender_id: str) -> bool:
    return bool(_SENDER_ID.match(sender_id))


def send_sms(
    sns_client: Any,
    *,
    to: str,
    body: str,
    transactional: bool,
    max_segments: int,
    sender_id: str | None = None,
) -> str:
    """Publish one SMS to an E.164 number; returns the SNS MessageId.

    Checks the segment budget and the SNS opt-out list first (an opted-out number raises
    ``OptedOut``). Raises PermanentSendError or TransientSendError; the caller owns retries.
    ValueError for a malformed ``sender_id`` (configuration, not the message).
    """
    kind = "Transactional" if transactional else "Promotional"
    if sender_id is not None and not valid_sender_id(sender_id):
        raise ValueError("SMS sender ID must be 1-11 letters or digits with at least one letter")
    parts = segments(body)
    if parts.segments == 0:
        raise PermanentSendError("SMS body is empty", "EmptyMessage")
    if parts.segments > max_segments:
        raise PermanentSendError(
            f"SMS body is {parts.segments} {parts.encoding} segments ({parts.characters} units); "
            f"the limit is {max_segments}",
            "TooManySegments",
        )
    attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": kind}}
    if sender_id:
        attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
    log = {"sms_type": kind, "encoding": parts.encoding, "segments": parts.segments}
    try:
        # SNS would drop a message to an opted-out number silently; asking first lets the caller
        # record the withdrawal instead of paying for and retrying sends that go nowhere.
        if sns_client.check_if_phone_number_is_opted_out(phoneNumber=to)["isOptedOut"]:
            raise OptedOut()
        response = sns_client.publish(PhoneNumber=to, Message=body, MessageAttributes=attributes)
    except OptedOut:
        logger.info("sms not sent: recipient opted out", extra=log)
        raise
    except (ClientError, BotoCoreError) as exc:
        error = classify_sns(exc)
        logger.warning(
            "sms send failed",
            extra={**log, "code": error.code, "permanent": isinstance(error, PermanentSendError)},
        )
        raise error from None  # the original may quote the number
    message_id = str(response["MessageId"])
    logger.info("sms sent", extra={**log, "message_id": message_id})
    return message_id
