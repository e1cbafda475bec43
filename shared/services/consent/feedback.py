"""SES delivery feedback (bounces, complaints) as seen on EventBridge, and what Boomerang does about it.

Shape (SES event publishing to an EventBridge destination; the configuration set can only publish
to the account's default bus):
- EventBridge envelope: ``source`` "aws.ses", ``detail-type`` one of "Email Bounced",
  "Email Complaint Received", "Email Delivered", "Email Rejected", "Email Sent", ... (see
  https://docs.aws.amazon.com/ses/latest/dg/monitoring-eventbridge.html and the EventBridge event
  reference https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-ses.html);
- ``detail`` is the SES event record itself, as documented for SNS/Firehose destinations
  (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html):
  ``eventType`` ("Bounce", "Complaint", "Delivery", ...), ``mail`` {``messageId``,
  ``destination``: [...], ``tags``: {name: [values]}}, ``bounce`` {``bounceType`` "Permanent" |
  "Transient" | "Undetermined", ``bounceSubType``, ``bouncedRecipients``: [{``emailAddress``}],
  ``timestamp``, ``feedbackId``}, ``complaint`` {``complainedRecipients``: [{``emailAddress``}],
  ``complaintFeedbackType``, ``timestamp``, ``feedbackId``}.

Boomerang tags every email with journey/step/store (shared/adapters/channels/email.py send_raw), and SES copies the
tags of a configuration-set send into ``mail.tags``: the store comes from there.

Decisions (pure, tested without AWS):
- Permanent bounce -> "hard" email suppression for each bounced recipient;
- complaint -> "marketing" email suppression for each complaining recipient;
- delivery, open, click -> the message's engagement item (``STORE#s#MSG#<SES message id>`` /
  ``ENGAGE``: journey, step, variant, first ``delivered_at`` / ``opened_at`` / ``clicked_at``), written
  idempotently so a repeated event (or a second open) changes nothing; the report counts them per
  (journey, step, variant) from the tags every journey email carries;
- transient/undetermined bounce, anything else -> nothing (a log line and a metric).
Addresses are never logged; they only reach the suppression list, which hashes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.platform import keys
from shared.platform.aws import key

SES_SOURCE = "aws.ses"
EMAIL_BOUNCED = "Email Bounced"
EMAIL_COMPLAINT = "Email Complaint Received"
EMAIL_DELIVERED = "Email Delivered"
EMAIL_REJECTED = "Email Rejected"
EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Clicked"
# What the feedback rule routes to the feedback queue.
FEEDBACK_DETAIL_TYPES: tuple[str, ...] = (
    EMAIL_BOUNCED,
    EMAIL_COMPLAINT,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
    EMAIL_CLICKED,
)
# SES eventType -> the engagement item's attribute (the first time it happened)
ENGAGEMENT_FIELDS = {"Delivery": "delivered_at", "Open": "opened_at", "Click": "clicked_at"}
ENGAGEMENT_TTL_S = 400 * 24 * 3600  # as long as journey history

STORE_TAG = "store"
JOURNEY_TAG = "journey"
STEP_TAG = "step"
VARIANT_TAG = "variant"
_STORE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # shared.stores.STORE_ID_PATTERN


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Recipient(_Model):
    email_address: str = Field(alias="emailAddress", min_length=3)


class Bounce(_Model):
    bounce_type: str = Field(alias="bounceType")
    bounce_sub_type: str = Field(default="", alias="bounceSubType")
    bounced_recipients: list[Recipient] = Field(default_factory=list, alias="bouncedRecipients")
    timestamp: str | None = None
    feedback_id: str | None = Field(default=None, alias="feedbackId")


class Complaint(_Model):
    complained_recipients: list[Recipient] = Field(default_factory=list, alias="complainedRecipients")
    complaint_feedback_type: str | None = Field(default=None, alias="complaintFeedbackType")
    timestamp: str | None = None
    feedback_id: str | None = Field(default=None, alias="feedbackId")


class Mail(_Model):
    message_id: str = Field(alias="messageId", min_length=1)
    destination: list[str] = Field(default_factory=list)
    timestamp: str | None = None
    tags: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_lists(cls, v: Any) -> Any:
        # SES publishes each tag as a list of values; accept a bare string too.
        if isinstance(v, dict):
            return {k: [val] if isinstance(val, str) else val for k, val in v.items()}
        return v


class SesEvent(_Model):
    event_type: str = Field(alias="eventType", min_length=1)
    mail: Mail
    bounce: Bounce | None = None
    complaint: Complaint | None = None


class FeedbackEnvelope(_Model):
    """The EventBridge event, as an EventBridge rule writes it into the SQS message body."""

    source: str
    detail_type: str = Field(alias="detail-type")
    time: str | None = None
    detail: SesEvent


@dataclass(frozen=True)
class Suppress:
    channel: str
    address: str
    kind: str  # "hard" | "marketing"
    reason: str


@dataclass
class FeedbackPlan:
    outcome: str  # permanent_bounce | complaint | transient_bounce | undetermined_bounce | delivery | ...
    message_id: str
    store_id: str | None
    at: float
    source: str
    suppress: list[Suppress] = field(default_factory=list)
    engagement: str | None = None  # delivered_at | opened_at | clicked_at
    journey: str | None = None
    step: str | None = None
    variant: str | None = None


def parse(body: str | dict[str, Any]) -> FeedbackEnvelope:
    """The SQS body of an SES event; raises pydantic.ValidationError (or ValueError) if it is not one."""
    if isinstance(body, str):
        envelope = FeedbackEnvelope.model_validate_json(body)
    else:
        envelope = FeedbackEnvelope.model_validate(body)
    if envelope.source != SES_SOURCE:
        raise ValueError(f"not an SES event: source {envelope.source!r}")
    return envelope


def store_of(mail: Mail) -> str | None:
    values = mail.tags.get(STORE_TAG) or []
    value = values[0] if values else ""
    return value if _STORE_ID.match(value) else None


def _tag(mail: Mail, name: str) -> str | None:
    values = mail.tags.get(name) or []
    return values[0][:100] if values and values[0] else None


def _ts(*candidates: str | None, default: float) -> float:
    for value in candidates:
        if value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return default


def _addresses(recipients: list[str]) -> list[str]:
    out: list[str] = []
    for raw in recipients:
        address = parseaddr(raw)[1] or raw
        if "@" in address and address.lower() not in (a.lower() for a in out):
            out.append(address)
    return out


def plan(envelope: FeedbackEnvelope, now: float) -> FeedbackPlan:
    """What one SES event means for the suppression list."""
    event = envelope.detail
    mail = event.mail
    result = FeedbackPlan(
        outcome=event.event_type.lower(),
        message_id=mail.message_id,
        store_id=store_of(mail),
        at=_ts(envelope.time, mail.timestamp, default=now),
        source=f"ses:{mail.message_id}",
        journey=_tag(mail, JOURNEY_TAG),
        step=_tag(mail, STEP_TAG),
        variant=_tag(mail, VARIANT_TAG),
    )
    if event.event_type in ENGAGEMENT_FIELDS:
        result.engagement = ENGAGEMENT_FIELDS[event.event_type]
        return result
    if event.event_type == "Bounce" and event.bounce is not None:
        bounce = event.bounce
        result.at = _ts(bounce.timestamp, envelope.time, default=now)
        if bounce.bounce_type != "Permanent":
            result.outcome = f"{bounce.bounce_type.lower() or 'unknown'}_bounce"
            return result
        result.outcome = "permanent_bounce"
        reason = f"Permanent bounce ({bounce.bounce_sub_type or 'General'})"
        result.suppress = [
            Suppress("email", a, "hard", reason)
            for a in _addresses([r.email_address for r in bounce.bounced_recipients])
        ]
    elif event.event_type == "Complaint" and event.complaint is not None:
        complaint = event.complaint
        result.at = _ts(complaint.timestamp, envelope.time, default=now)
        result.outcome = "complaint"
        reason = f"Complaint ({complaint.complaint_feedback_type or 'unspecified'})"
        # Some mailbox providers redact the complainant; Boomerang sends each message to one person.
        recipients = _addresses([r.email_address for r in complaint.complained_recipients])
        recipients = recipients or _addresses(mail.destination)
        result.suppress = [Suppress("email", a, "marketing", reason) for a in recipients]
    return result


@dataclass
class Applied:
    outcome: str
    store_id: str | None
    suppressed: int = 0  # entries the list gained (or upgraded to hard)
    already: int = 0  # entries that were already there (replays, repeated reports)
    skipped: str | None = None  # why nothing was applied, e.g. "no store tag"
    engagement: str | None = None  # "recorded" | "already recorded"


def record_engagement(feedback: FeedbackPlan, ddb: Any, table: str) -> str | None:
    """The message's engagement item: the first time of each of delivered/opened/clicked. A repeat
    (SES retries, a second open) leaves it as it was. Only journey emails (store and journey tags)."""
    if feedback.engagement is None:
        return None
    if feedback.store_id is None or feedback.journey is None:
        return "untagged"
    values = {
        ":at": {"N": repr(feedback.at)},
        ":j": {"S": feedback.journey},
        ":s": {"S": feedback.step or "?"},
        ":x": {"N": str(int(feedback.at) + ENGAGEMENT_TTL_S)},
    }
    update = "SET #f = :at, journey = :j, step = :s, expires_at = if_not_exists(expires_at, :x)"
    if feedback.variant:
        update += ", variant = :v"
        values[":v"] = {"S": feedback.variant}
    try:
        ddb.update_item(
            TableName=table,
            Key=key(keys.message_pk(feedback.store_id, feedback.message_id), keys.MESSAGE_ENGAGEMENT_SK),
            UpdateExpression=update,
            ConditionExpression="attribute_not_exists(#f)",
            ExpressionAttributeNames={"#f": feedback.engagement},
            ExpressionAttributeValues=values,
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return "already recorded"
    return "recorded"


def apply(feedback: FeedbackPlan, suppressions: Any, stores: Any) -> Applied:
    """Write a plan's suppressions. `suppressions` is a SuppressionList, `stores` a StoreDirectory."""
    applied = Applied(outcome=feedback.outcome, store_id=feedback.store_id)
    if not feedback.suppress:
        return applied
    if feedback.store_id is None:
        applied.skipped = "no store tag"
        return applied
    if stores.get(feedback.store_id) is None:
        applied.skipped = "unknown store"
        return applied
    for item in feedback.suppress:
        changed = suppressions.suppress(
            feedback.store_id,
            item.channel,
            item.address,
            kind=item.kind,
            reason=item.reason,
            source=feedback.source,
            at=feedback.at,
        )
        if changed:
            applied.suppressed += 1
        else:
            applied.already += 1
    return applied
