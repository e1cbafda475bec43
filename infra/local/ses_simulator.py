"""SES mailbox-simulator feedback for the local emulator.

moto accepts every send and never reports back. Real SES answers mail to its mailbox simulator
(https://docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html#send-email-simulator)
with feedback: bounce@simulator.amazonses.com bounces permanently, complaint@simulator.amazonses.com
complains. These are the EventBridge PutEvents entries SES would publish for them through the
configuration set's EventBridge destination: on the default bus, source "aws.ses", with the SES
event record as detail (same shape shared/services/consent/feedback.py parses; see the sources cited there).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.description import DEFAULT_BUS
from shared.services.consent.feedback import EMAIL_BOUNCED, EMAIL_COMPLAINT, SES_SOURCE

BOUNCE_ADDRESS = "bounce@simulator.amazonses.com"
COMPLAINT_ADDRESS = "complaint@simulator.amazonses.com"
_ACCOUNT = "123456789012"  # the emulator's account (infra/local/emulator.py)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _mail(message_id: str, destinations: list[str], tags: dict[str, str], now: float) -> dict[str, Any]:
    return {
        "timestamp": _iso(now),
        "source": "sender@example.com",
        "sendingAccountId": _ACCOUNT,
        "messageId": message_id,
        "destination": list(destinations),
        "headersTruncated": False,
        # SES publishes every tag as a list of values, next to its own ses:* tags.
        "tags": {"ses:operation": ["SendEmail"], **{k: [v] for k, v in tags.items()}},
    }


def _bounce(address: str, now: float) -> dict[str, Any]:
    return {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": address,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": _iso(now + 1),
        "feedbackId": f"{uuid.uuid4().hex}-000000",
        "reportingMTA": "dns; simulator.amazonses.com",
    }


def _complaint(address: str, now: float) -> dict[str, Any]:
    return {
        "complainedRecipients": [{"emailAddress": address}],
        "complaintFeedbackType": "abuse",
        "userAgent": "Amazon SES Mailbox Simulator",
        "timestamp": _iso(now + 1),
        "feedbackId": f"{uuid.uuid4().hex}-000000",
        "arrivalDate": _iso(now),
    }


def feedback_entries(
    *, message_id: str, destinations: list[str], tags: dict[str, str], now: float
) -> list[dict[str, Any]]:
    """PutEvents entries for the simulator recipients among `destinations` ([] for anyone else)."""
    entries: list[dict[str, Any]] = []
    for address in destinations:
        normalised = address.strip().lower()
        if normalised == BOUNCE_ADDRESS:
            detail_type, detail = (
                EMAIL_BOUNCED,
                {"eventType": "Bounce", "bounce": _bounce(address, now)},
            )
        elif normalised == COMPLAINT_ADDRESS:
            detail_type, detail = (
                EMAIL_COMPLAINT,
                {"eventType": "Complaint", "complaint": _complaint(address, now)},
            )
        else:
            continue
        detail["mail"] = _mail(message_id, destinations, tags, now)
        entries.append(
            {
                "EventBusName": DEFAULT_BUS,
                "Source": SES_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "Time": datetime.fromtimestamp(now + 1, UTC),
            }
        )
    return entries
