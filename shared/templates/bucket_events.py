"""The template validator's edges: what S3 tells it and how it tells marketers.

S3 reports a change to the bucket as an EventBridge event ("Object Created" / "Object Deleted");
`parse_s3_event` reads one into an :class:`S3Change`. A rejected upload is announced on the
reports SNS topic through `sns_notifier`; the checks themselves take any ``notify(subject, message)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class S3Change:
    bucket: str
    key: str
    version_id: str | None
    reason: str  # e.g. PutObject, CopyObject, DeleteObject


def parse_s3_event(body: str | dict[str, Any]) -> S3Change:
    """An S3 event as EventBridge delivers it (detail-type "Object Created" / "Object Deleted")."""
    event = json.loads(body) if isinstance(body, str) else body
    if event.get("source") != "aws.s3" or not isinstance(event.get("detail"), dict):
        raise ValueError(f"not an S3 event: source={event.get('source')!r}")
    detail = event["detail"]
    try:
        return S3Change(
            bucket=detail["bucket"]["name"],
            key=detail["object"]["key"],
            version_id=detail["object"].get("version-id"),
            reason=str(detail.get("reason", "")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"S3 event without bucket/object: {exc}") from exc


def sns_notifier(sns: Any, topic_arn: str) -> Callable[[str, str], None]:
    """Publish a report to the topic marketers subscribe to (SNS subjects: ASCII, at most 100)."""

    def notify(subject: str, message: str) -> None:
        safe = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:100]
        sns.publish(TopicArn=topic_arn, Subject=safe, Message=message)

    return notify
