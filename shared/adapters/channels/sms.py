"""SMS through Amazon SNS (delivered by AWS End User Messaging SMS): sending and classifying failures.

Phone numbers are personal data: they never appear in logs or exception messages. ``send_sms``
raises the channel-neutral errors of ``shared.adapters.channels.email`` so the journey step treats every channel's
failures alike; ``OptedOut`` tells the caller to withdraw the customer's SMS consent.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from shared.adapters.channels.email import PermanentSendError, SendError, TransientSendError
from shared.domain.contacts import segments, valid_sender_id

logger = logging.getLogger(__name__)

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
