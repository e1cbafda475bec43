"""The feedback λ on moto: SES events (as the default bus's rule puts them on SQS) -> suppression list."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from functions.feedback.handler import handler
from shared.adapters.report_data import collect, scan_table
from shared.adapters.suppression import SuppressionList
from shared.platform.aws import client, from_item
from shared.services.consent.feedback import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINT,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
)
from tests.aws_fixtures import FixedClock, LambdaContext, World, sqs_batch

ADDRESS = "Jane.Doe@Example.com"


def ses_event(
    detail_type: str, event: dict[str, Any], *, store: str | None = "shop-1", message_id: str = "ses-msg-1"
) -> dict[str, Any]:
    tags = {"ses:configuration-set": ["boomerang"], "journey": ["cart-abandonment"], "step": ["email-1"]}
    if store is not None:
        tags["store"] = [store]
    return {
        "version": "0",
        "id": f"evt-{message_id}",
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "123456789012",
        "time": "2026-09-21T10:00:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            **event,
            "mail": {
                "timestamp": "2026-09-21T10:00:00.000Z",
                "messageId": message_id,
                "destination": [ADDRESS],
                "tags": tags,
            },
        },
    }


def permanent_bounce(address: str = ADDRESS, **kw: Any) -> dict[str, Any]:
    return ses_event(
        EMAIL_BOUNCED,
        {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}],
                "timestamp": "2026-09-21T10:00:04.000Z",
            },
        },
        **kw,
    )


def complaint(address: str = ADDRESS, **kw: Any) -> dict[str, Any]:
    return ses_event(
        EMAIL_COMPLAINT,
        {
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": address}],
                "complaintFeedbackType": "abuse",
                "timestamp": "2026-09-21T11:00:00.000Z",
            },
        },
        **kw,
    )


def transient_bounce() -> dict[str, Any]:
    return ses_event(
        EMAIL_BOUNCED,
        {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Transient",
                "bounceSubType": "MailboxFull",
                "bouncedRecipients": [{"emailAddress": ADDRESS}],
            },
        },
    )


def suppressions(world: World) -> SuppressionList:
    return SuppressionList(client("dynamodb"), world.table)


def all_items(world: World) -> list[dict[str, Any]]:
    return [from_item(i) for i in client("dynamodb").scan(TableName=world.table)["Items"]]


@pytest.fixture(autouse=True)
def _clock(fixed_clock: FixedClock) -> None:
    pass


def test_permanent_bounce_and_complaint_land_on_the_suppression_list(
    world: World, ctx: LambdaContext
) -> None:
    # Given one hard bounce and one complaint (for another customer) in a batch
    batch = sqs_batch([permanent_bounce(), complaint("other@example.com", message_id="ses-msg-2")])

    # When the feedback λ runs
    assert handler(batch, ctx) == {"batchItemFailures": []}

    # Then the bounced address may receive nothing, the complainant no marketing
    hard = suppressions(world).get("shop-1", "email", "jane.doe@example.com")  # normalised lookup
    assert hard is not None
    assert (hard.channel, hard.kind, hard.reason, hard.source) == (
        "email",
        "hard",
        "Permanent bounce (General)",
        "ses:ses-msg-1",
    )
    assert hard.at == pytest.approx(1789984804.0)
    soft = suppressions(world).get("shop-1", "email", "OTHER@example.com")
    assert soft is not None and soft.kind == "marketing" and soft.reason == "Complaint (abuse)"
    assert soft.blocks(marketing=True) and not soft.blocks(marketing=False)
    assert hard.blocks(marketing=False)
    # and only for that store
    assert suppressions(world).get("shop-2", "email", ADDRESS) is None


def test_the_table_holds_no_address(world: World, ctx: LambdaContext) -> None:
    handler(sqs_batch([permanent_bounce()]), ctx)

    [item] = [i for i in all_items(world) if "#SUPPRESS#" in i["pk"]]
    digest = hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert item["pk"] == f"STORE#shop-1#SUPPRESS#email#{digest}"
    assert item["sk"] == "SUPPRESS"
    assert "example.com" not in json.dumps(item).lower()


def test_replays_are_idempotent(world: World, ctx: LambdaContext) -> None:
    event = permanent_bounce()
    handler(sqs_batch([event]), ctx)
    before = [i for i in all_items(world) if "#SUPPRESS#" in i["pk"]]

    # The same event delivered again (at-least-once delivery, archive replay), even in one batch
    assert handler(sqs_batch([event, event]), ctx) == {"batchItemFailures": []}

    assert [i for i in all_items(world) if "#SUPPRESS#" in i["pk"]] == before


def test_a_later_complaint_never_downgrades_a_hard_bounce(world: World, ctx: LambdaContext) -> None:
    handler(sqs_batch([permanent_bounce()]), ctx)
    handler(sqs_batch([complaint(message_id="ses-msg-9")]), ctx)

    entry = suppressions(world).get("shop-1", "email", ADDRESS)
    assert entry is not None and (entry.kind, entry.source) == ("hard", "ses:ses-msg-1")


def test_a_bounce_after_a_complaint_upgrades_to_hard(world: World, ctx: LambdaContext) -> None:
    handler(sqs_batch([complaint(message_id="ses-msg-3")]), ctx)
    handler(sqs_batch([permanent_bounce(message_id="ses-msg-4")]), ctx)

    entry = suppressions(world).get("shop-1", "email", ADDRESS)
    assert entry is not None and (entry.kind, entry.source) == ("hard", "ses:ses-msg-4")


def test_soft_bounces_and_untagged_or_unknown_store_mail_change_nothing(
    world: World, ctx: LambdaContext
) -> None:
    batch = sqs_batch(
        [
            transient_bounce(),
            permanent_bounce(store=None, message_id="untagged"),
            permanent_bounce(store="gone-shop", message_id="unknown-store"),
        ]
    )

    # skipped, not failed: retrying would never help
    assert handler(batch, ctx) == {"batchItemFailures": []}
    assert [i for i in all_items(world) if "#SUPPRESS#" in i["pk"]] == []


def test_a_poison_record_fails_alone(world: World, ctx: LambdaContext) -> None:
    batch = sqs_batch(["{not json", {"source": "aws.ses", "detail-type": EMAIL_BOUNCED}, permanent_bounce()])
    poison = {batch["Records"][0]["messageId"], batch["Records"][1]["messageId"]}

    result = handler(batch, ctx)

    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == poison
    assert suppressions(world).get("shop-1", "email", ADDRESS) is not None  # the good one still applied


def test_suppress_directly_is_idempotent_and_validates(world: World) -> None:
    s = suppressions(world)
    args = {"kind": "marketing", "reason": "Complaint (abuse)", "source": "ses:x", "at": 1.0}
    assert s.suppress("shop-1", "email", ADDRESS, **args) is True
    assert s.suppress("shop-1", "email", ADDRESS.upper(), **args) is False
    assert s.suppress("shop-1", "email", ADDRESS, **{**args, "kind": "hard", "source": "ses:y"}) is True
    assert s.suppress("shop-1", "email", ADDRESS, **{**args, "kind": "hard", "source": "ses:z"}) is False
    entry = s.get("shop-1", "email", ADDRESS)
    assert entry is not None and (entry.kind, entry.source) == ("hard", "ses:y")
    with pytest.raises(ValueError):
        s.suppress("shop-1", "email", ADDRESS, **{**args, "kind": "soft"})
    with pytest.raises(ValueError):
        s.suppress("shop-1", "email", "  ", **args)


def engagement(
    kind: str, event_type: str, message_id: str, time: str = "2026-09-21T10:05:00Z"
) -> dict[str, Any]:
    event = ses_event(
        kind, {"eventType": event_type, event_type.lower(): {"timestamp": time}}, message_id=message_id
    )
    event["time"] = time
    return event


def test_deliveries_opens_and_clicks_are_counted_once_per_message(world: World, ctx: LambdaContext) -> None:
    # Given two journey emails: one delivered, opened twice and clicked; one only delivered
    first = [
        engagement(EMAIL_DELIVERED, "Delivery", "ses-a", "2026-09-21T10:00:01Z"),
        engagement(EMAIL_OPENED, "Open", "ses-a", "2026-09-21T10:05:00Z"),
        engagement(EMAIL_OPENED, "Open", "ses-a", "2026-09-21T18:00:00Z"),  # opened again
        engagement(EMAIL_CLICKED, "Click", "ses-a", "2026-09-21T10:06:00Z"),
        engagement(EMAIL_DELIVERED, "Delivery", "ses-b"),
    ]
    assert handler(sqs_batch(first), ctx) == {"batchItemFailures": []}
    # When the same events arrive again (at-least-once delivery, archive replay)
    assert handler(sqs_batch(first), ctx) == {"batchItemFailures": []}

    # Then one item per message, first times kept, no address, no suppression
    items = {i["pk"]: i for i in all_items(world) if "#MSG#" in i["pk"]}
    a = items["STORE#shop-1#MSG#ses-a"]
    assert (a["sk"], a["journey"], a["step"]) == ("ENGAGE", "cart-abandonment", "email-1")
    # 2026-09-21T10:05:00Z, the first open (not the 18:00 one); the click at 10:06
    assert (a["delivered_at"], a["opened_at"], a["clicked_at"]) == (1789984801, 1789985100, 1789985160)
    assert "clicked_at" not in items["STORE#shop-1#MSG#ses-b"]
    assert "example.com" not in json.dumps(list(items.values())).lower()
    assert [i for i in all_items(world) if "#SUPPRESS#" in i["pk"]] == []
    # and the report counts them per journey and step
    data = collect(scan_table(client("dynamodb"), world.table, "shop-1"), "shop-1")
    assert data.engagement is not None
    counted = sorted((e.journey, e.step_id, e.delivered, e.opened, e.clicked) for e in data.engagement)
    assert counted == [
        ("cart-abandonment", "email-1", True, False, False),
        ("cart-abandonment", "email-1", True, True, True),
    ]


def test_engagement_of_untagged_mail_is_not_kept(world: World, ctx: LambdaContext) -> None:
    event = ses_event(EMAIL_OPENED, {"eventType": "Open", "open": {}}, store=None, message_id="ses-x")
    assert handler(sqs_batch([event]), ctx) == {"batchItemFailures": []}
    assert [i for i in all_items(world) if "#MSG#" in i["pk"]] == []
