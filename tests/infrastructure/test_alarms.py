"""The alarms construct: every DLQ, failed executions, steps and reports, the SES reputation, all
to one topic whose ARN is an output (infra/constructs/alarms.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.constructs.alarms import APP_FAILURES
from shared.domain.reputation import BOUNCE_PAUSE, COMPLAINT_PAUSE
from tests.infrastructure.test_stack import Synth, _context


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield Synth(_context(), tmp_path_factory.mktemp("build"))


def _alarm_topic(synth: Synth) -> str:
    [topic] = [
        k
        for k, v in synth.of_type("AWS::SNS::Topic").items()
        if v["Properties"].get("DisplayName") == "Boomerang alarms"
    ]
    return topic


def _alarms(synth: Synth) -> list[dict[str, Any]]:
    return [v["Properties"] for v in synth.of_type("AWS::CloudWatch::Alarm").values()]


def test_every_alarm_notifies_the_topic_operators_subscribe_to(synth: Synth) -> None:
    topic = _alarm_topic(synth)
    alarms = _alarms(synth)
    assert alarms and all(a["AlarmActions"] == [{"Ref": topic}] for a in alarms)
    assert synth.json["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic}


def test_every_dlq_has_an_alarm(synth: Synth) -> None:
    # a DLQ is a queue's redrive target or an EventBridge target's dead-letter queue
    queues = synth.of_type("AWS::SQS::Queue").values()
    redrive = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues
        if "RedrivePolicy" in q["Properties"]
    }
    targets = [
        t for r in synth.of_type("AWS::Events::Rule").values() for t in r["Properties"].get("Targets", [])
    ]
    delivery = {t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for t in targets if "DeadLetterConfig" in t}
    dlqs = redrive | delivery
    watched = {
        d["Value"]["Fn::GetAtt"][0]
        for a in _alarms(synth)
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        for d in a["Dimensions"]
    }
    assert len(dlqs) >= 2 and dlqs == watched


def test_failed_executions_steps_reports_and_reputation_alarm(synth: Synth) -> None:
    by_metric = {(a.get("Namespace"), a.get("MetricName")): a for a in _alarms(synth)}
    assert ("AWS/States", "ExecutionsFailed") in by_metric
    for metric, _ in APP_FAILURES:
        assert by_metric[("Boomerang", metric)]["Threshold"] == 1
    assert ("AWS/Lambda", "Errors") in by_metric  # the report λ
    assert by_metric[("AWS/SES", "Reputation.BounceRate")]["Threshold"] == BOUNCE_PAUSE
    assert by_metric[("AWS/SES", "Reputation.ComplaintRate")]["Threshold"] == COMPLAINT_PAUSE
    assert all(a["TreatMissingData"] == "notBreaching" for a in _alarms(synth))
