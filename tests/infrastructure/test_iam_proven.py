"""Least privilege, proven: every AWS call the tests saw each function make is allowed by its role.

Why a committed snapshot (infra/aws_calls.json) rather than this session's record: the
infrastructure tier runs before the integration tier and can run alone, so it must not depend on
which tests ran first. The integration and e2e sessions compare what they record with the snapshot
and fail on a call it lacks (tests/integration/conftest.py, tests/e2e/conftest.py), so the snapshot
cannot fall behind the code; this test proves the snapshot against the synthesised roles.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra import aws_calls, iam_check
from infra import description as d


@pytest.fixture(scope="module")
def template() -> Iterator[dict[str, Any]]:
    yield iam_check.synthesise()


@pytest.fixture(scope="module")
def snapshot() -> set[aws_calls.Call]:
    return aws_calls.load_snapshot()


def test_every_recorded_call_is_granted_and_every_grant_is_used_or_explained(
    template: dict[str, Any], snapshot: set[aws_calls.Call]
) -> None:
    report = iam_check.check(template, snapshot, complete=aws_calls.snapshot_complete())
    print(report.text())  # the unused grants and their reasons, in the test's output
    assert report.ok, report.text()


def test_the_snapshot_covers_every_function_and_the_state_machine(snapshot: set[aws_calls.Call]) -> None:
    recorded = {who for who, _, _ in snapshot}
    assert {f.id for f in d.FUNCTIONS} | {aws_calls.STATE_MACHINE_PRINCIPAL} <= recorded
    unknown = recorded - {f.id for f in d.FUNCTIONS} - {aws_calls.STATE_MACHINE_PRINCIPAL}
    assert not unknown


def test_an_ungranted_call_fails_naming_function_action_and_resource(
    template: dict[str, Any], snapshot: set[aws_calls.Call]
) -> None:
    # Given the feedback λ, which may read and write the table and nothing else
    forged = {
        ("feedback", "sns:Publish", "<REPORTS_TOPIC_ARN>"),
        ("feedback", "dynamodb:Scan", "<TABLE_NAME>"),
        ("journey_step", "s3:PutObject", "<TEMPLATES_BUCKET>/active/_"),
        (
            "ingest",
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:${Region}:${Account}:secret:x-??????",
        ),
    }
    report = iam_check.check(template, snapshot | forged)
    assert not report.ok
    assert sorted(forged) == sorted(report.ungranted)
    assert "UNGRANTED: feedback calls sns:Publish on <REPORTS_TOPIC_ARN>" in report.text()


def test_a_grant_no_call_uses_must_be_removed_or_explained(
    template: dict[str, Any], snapshot: set[aws_calls.Call]
) -> None:
    # the journey step's email grant, as if no test sent an email
    without_email = {c for c in snapshot if not (c[0] == "journey_step" and c[1].startswith("ses:Send"))}
    report = iam_check.check(template, without_email)
    assert {("journey_step", "ses:SendEmail")} <= {(who, a) for who, a, _ in report.unexplained}
    # an explanation for a grant that is in fact used is stale, and fails too
    stale = {
        **d.UNEXERCISED_GRANTS,
        "ingest": {**d.UNEXERCISED_GRANTS.get("ingest", {}), "events:PutEvents": "x"},
    }
    assert ("ingest", "events:PutEvents") in iam_check.check(template, snapshot, stale).stale_reasons
