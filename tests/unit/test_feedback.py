"""SES feedback (EventBridge shape) -> suppression decisions, without AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from infra.local.ses_simulator import feedback_entries
from shared.services.consent import feedback
from shared.services.consent.feedback import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINT,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
    apply,
    parse,
    plan,
)

NOW = 1_790_000_000.0
TAGS = {"ses:configuration-set": ["boomerang"], "journey": ["cart-abandonment"], "store": ["shop-1"]}


def envelope(detail_type: str, detail: dict[str, Any], tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """An EventBridge event as SES publishes it to the default bus (and a rule copies into SQS)."""
    return {
        "version": "0",
        "id": "6f1b5a0e-0000-4000-8000-000000000001",
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "123456789012",
        "time": "2026-09-21T10:00:05Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ses:us-east-1:123456789012:configuration-set/boomerang"],
        "detail": {
            **detail,
            "mail": {
                "timestamp": "2026-09-21T10:00:00.000Z",
                "source": "hello@shop.example.com",
                "sendingAccountId": "123456789012",
                "messageId": "0100019a-ses-message-id-000000",
                "destination": ["Jane.Doe@Example.com"],
                "headersTruncated": False,
                "tags": TAGS if tags is None else tags,
            },
        },
    }


def bounce(bounce_type: str, sub_type: str = "General") -> dict[str, Any]:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {"emailAddress": "Jane.Doe@Example.com", "action": "failed", "status": "5.1.1"}
            ],
            "timestamp": "2026-09-21T10:00:04.000Z",
            "feedbackId": "0100019a-feedback-000000",
        },
    }


COMPLAINT = {
    "eventType": "Complaint",
    "complaint": {
        "complainedRecipients": [{"emailAddress": "jane.doe@example.com"}],
        "complaintFeedbackType": "abuse",
        "timestamp": "2026-09-21T11:00:00.000Z",
        "feedbackId": "0100019a-feedback-000001",
    },
}


def test_permanent_bounce_suppresses_the_recipient_for_everything() -> None:
    result = plan(parse(json.dumps(envelope(EMAIL_BOUNCED, bounce("Permanent", "NoEmail")))), NOW)

    assert result.outcome == "permanent_bounce"
    assert result.store_id == "shop-1"
    assert result.message_id == "0100019a-ses-message-id-000000"
    assert result.source == "ses:0100019a-ses-message-id-000000"
    assert result.at == pytest.approx(1789984804.0)  # the bounce's own timestamp
    assert [(s.channel, s.address, s.kind) for s in result.suppress] == [
        ("email", "Jane.Doe@Example.com", "hard")
    ]
    assert result.suppress[0].reason == "Permanent bounce (NoEmail)"


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_soft_or_undetermined_bounce_changes_nothing(bounce_type: str) -> None:
    result = plan(parse(envelope(EMAIL_BOUNCED, bounce(bounce_type, "MailboxFull"))), NOW)

    assert result.outcome == f"{bounce_type.lower()}_bounce"
    assert result.suppress == []


def test_complaint_stops_marketing_only() -> None:
    result = plan(parse(envelope(EMAIL_COMPLAINT, COMPLAINT)), NOW)

    assert result.outcome == "complaint"
    assert [(s.channel, s.address, s.kind, s.reason) for s in result.suppress] == [
        ("email", "jane.doe@example.com", "marketing", "Complaint (abuse)")
    ]


def test_complaint_without_recipients_falls_back_to_the_single_destination() -> None:
    redacted = {"eventType": "Complaint", "complaint": {"complainedRecipients": []}}
    result = plan(parse(envelope(EMAIL_COMPLAINT, redacted)), NOW)

    assert [(s.address, s.kind) for s in result.suppress] == [("Jane.Doe@Example.com", "marketing")]
    assert result.at == pytest.approx(1789984805.0)  # no complaint timestamp: the event's time


def test_delivery_open_and_click_are_engagement_never_suppression() -> None:
    tags = {**TAGS, "step": ["email-1"]}
    cases = [
        (EMAIL_DELIVERED, {"eventType": "Delivery", "delivery": {"recipients": ["Jane.Doe@Example.com"]}}),
        (EMAIL_OPENED, {"eventType": "Open", "open": {"timestamp": "2026-09-21T11:00:00.000Z"}}),
        (EMAIL_CLICKED, {"eventType": "Click", "click": {"link": "https://shop.example.com/x"}}),
    ]
    results = [plan(parse(envelope(kind, detail, tags)), NOW) for kind, detail in cases]

    assert [(r.outcome, r.engagement, r.suppress) for r in results] == [
        ("delivery", "delivered_at", []),
        ("open", "opened_at", []),
        ("click", "clicked_at", []),
    ]
    assert {(r.store_id, r.journey, r.step, r.message_id) for r in results} == {
        ("shop-1", "cart-abandonment", "email-1", "0100019a-ses-message-id-000000")
    }


def test_bounces_are_not_engagement() -> None:
    assert plan(parse(envelope(EMAIL_BOUNCED, bounce("Permanent"))), NOW).engagement is None


@pytest.mark.parametrize(
    "tags",
    [
        {},  # sent without Boomerang's tags (e.g. by hand through the configuration set)
        {"journey": ["cart-abandonment"]},
        {"store": [""]},
        {"store": ["Not A Store!"]},
    ],
    ids=["no-tags", "no-store-tag", "empty", "not-a-store-id"],
)
def test_missing_or_malformed_store_tag_is_skipped_not_failed(tags: dict[str, Any]) -> None:
    result = plan(parse(envelope(EMAIL_BOUNCED, bounce("Permanent"), tags=tags)), NOW)

    assert result.store_id is None
    suppressions = FakeSuppressions()
    applied = apply(result, suppressions, FakeStores({"shop-1"}))
    assert applied.skipped == "no store tag"
    assert suppressions.calls == []


def test_unknown_store_is_skipped() -> None:
    result = plan(parse(envelope(EMAIL_BOUNCED, bounce("Permanent"), tags={"store": ["gone-shop"]})), NOW)
    suppressions = FakeSuppressions()

    applied = apply(result, suppressions, FakeStores({"shop-1"}))

    assert (applied.skipped, applied.store_id, suppressions.calls) == ("unknown store", "gone-shop", [])


def test_tags_as_bare_strings_are_accepted() -> None:
    result = plan(parse(envelope(EMAIL_BOUNCED, bounce("Permanent"), tags={"store": "shop-1"})), NOW)
    assert result.store_id == "shop-1"


def test_apply_counts_new_and_repeated_suppressions() -> None:
    result = plan(parse(envelope(EMAIL_BOUNCED, bounce("Permanent"))), NOW)
    suppressions = FakeSuppressions()
    stores = FakeStores({"shop-1"})

    first = apply(result, suppressions, stores)
    again = apply(result, suppressions, stores)

    assert (first.suppressed, first.already) == (1, 0)
    assert (again.suppressed, again.already) == (0, 1)
    store_id, channel, address, kwargs = suppressions.calls[0]
    assert (store_id, channel, address) == ("shop-1", "email", "Jane.Doe@Example.com")
    assert kwargs["kind"] == "hard" and kwargs["source"] == "ses:0100019a-ses-message-id-000000"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"source": "aws.ses", "detail-type": EMAIL_BOUNCED}),  # no detail
        json.dumps({**envelope(EMAIL_BOUNCED, bounce("Permanent")), "source": "boomerang.ingest"}),
        json.dumps(envelope(EMAIL_BOUNCED, {"eventType": "Bounce", "bounce": {"bouncedRecipients": []}})),
    ],
    ids=["not-json", "no-detail", "other-source", "bounce-without-type"],
)
def test_what_is_not_an_ses_event_is_rejected(body: str) -> None:
    with pytest.raises((ValidationError, ValueError)):
        parse(body)


def test_the_simulator_speaks_the_same_shape() -> None:
    tags = {"journey": "cart-abandonment", "step": "email-1", "store": "shop-1"}
    entries = feedback_entries(
        message_id="m-1",
        destinations=["bounce@simulator.amazonses.com", "complaint@simulator.amazonses.com"],
        tags=tags,
        now=NOW,
    )
    assert [(e["EventBusName"], e["Source"], e["DetailType"]) for e in entries] == [
        ("default", "aws.ses", EMAIL_BOUNCED),
        ("default", "aws.ses", EMAIL_COMPLAINT),
    ]
    # What a rule would deliver: the entry as an EventBridge event
    plans = [
        plan(
            parse({"source": e["Source"], "detail-type": e["DetailType"], "detail": json.loads(e["Detail"])}),
            NOW,
        )
        for e in entries
    ]
    assert [(p.outcome, p.store_id, [s.kind for s in p.suppress]) for p in plans] == [
        ("permanent_bounce", "shop-1", ["hard"]),
        ("complaint", "shop-1", ["marketing"]),
    ]
    assert plans[0].suppress[0].address == "bounce@simulator.amazonses.com"
    assert feedback_entries(message_id="m-2", destinations=["jane@example.com"], tags=tags, now=NOW) == []


def test_the_rule_routes_exactly_feedback_and_engagement() -> None:
    assert feedback.FEEDBACK_DETAIL_TYPES == (
        "Email Bounced",
        "Email Complaint Received",
        "Email Delivered",
        "Email Opened",
        "Email Clicked",
    )


class FakeSuppressions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self._seen: set[tuple[str, str, str]] = set()

    def suppress(self, store_id: str, channel: str, address: str, **kwargs: Any) -> bool:
        self.calls.append((store_id, channel, address, kwargs))
        key = (store_id, channel, address.lower())
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


class FakeStores:
    def __init__(self, known: set[str]) -> None:
        self.known = known

    def get(self, store_id: str) -> object | None:
        return object() if store_id in self.known else None
