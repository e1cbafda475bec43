"""The emulator's injected faults (infra/local/faults.py) are what the services answer, as botocore
and Boomerang's classifiers see them; nothing leaves the process."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.local.faults import Faults, StepKilled
from shared.adapters.channels.email import SendingParked, TransientSendError, classify


def _client(service: str, faults: Faults) -> Any:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    c = session.client(service, config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))  # type: ignore[call-overload]
    c.meta.events.register("before-send", faults.before_send)
    return c


def test_throttled_calls_get_each_services_own_refusal() -> None:
    faults = Faults(lambda: 0.0, seed=1)
    faults.configure({"throttle": {"rate": 1, "services": ["dynamodb", "sesv2", "sns"]}})
    with pytest.raises(ClientError) as ddb:
        _client("dynamodb", faults).get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert ddb.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError) as sns:
        _client("sns", faults).publish(PhoneNumber="+442079460018", Message="hi")
    assert sns.value.response["Error"]["Code"] == "Throttling"
    with pytest.raises(ClientError) as ses:
        _client("sesv2", faults).send_email(
            FromEmailAddress="a@example.com", Destination={}, Content={"Raw": {"Data": b"x"}}
        )
    error = classify(ses.value)
    assert isinstance(error, TransientSendError) and not isinstance(error, SendingParked)
    assert faults.state()["injected"]["throttled"] == 3


def test_the_ses_quota_is_a_rolling_day_on_boomerangs_clock() -> None:
    now = [1_000_000.0]
    faults = Faults(lambda: now[0])
    faults.configure({"ses_quota": {"max_24h": 1}})
    ses = _client("sesv2", faults)
    send = {"FromEmailAddress": "a@example.com", "Destination": {}, "Content": {"Raw": {"Data": b"x"}}}
    faults.before_send(None, "before-send.sesv2.SendEmail")  # one send went out
    with pytest.raises(ClientError) as over:
        ses.send_email(**send)
    assert isinstance(classify(over.value), SendingParked)
    assert "Daily message quota exceeded" in str(over.value)
    now[0] += 24 * 3600  # the day rolls on: room again (the hook lets the request through)
    assert faults.before_send(None, "before-send.sesv2.SendEmail") is None


def test_a_step_is_killed_at_its_hand_off_write_only() -> None:
    faults = Faults(lambda: 0.0)
    faults.configure({"kill_after_claim": 1})

    class Request:
        url, body = "https://dynamodb", b'{"ExpressionAttributeValues": {":v0": {"S": "claimed"}}}'

    assert faults.before_send(Request(), "before-send.dynamodb.UpdateItem") is None
    Request.body = b'{"ExpressionAttributeValues": {":v0": {"S": "handed-off"}}}'
    with pytest.raises(StepKilled):
        faults.before_send(Request(), "before-send.dynamodb.UpdateItem")
    assert faults.before_send(Request(), "before-send.dynamodb.UpdateItem") is None  # once


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"throttle": {"rate": 2}}, "throttle.rate"),
        ({"throttle": {"rate": 0.2, "services": ["s3"]}}, "throttle.services"),
        ({"ses_quota": {"max_24h": -1}}, "ses_quota"),
        ({"kill_after_claim": "x"}, "kill_after_claim"),
    ],
)
def test_bad_knobs_are_named_and_change_nothing(body: dict[str, Any], field: str) -> None:
    faults = Faults(lambda: 0.0)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        faults.configure({**body, "kill_after_claim": body.get("kill_after_claim", 5)})
    assert faults.state()["kill_after_claim"] == 0


def test_a_send_is_attempted_once_by_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    # a retry after a read timeout could deliver twice: the λs' SES/SNS/Pinpoint clients never retry
    from shared.platform import aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    aws.reset_clients()
    faults = Faults(lambda: 0.0)
    faults.configure({"throttle": {"rate": 1}})
    ses = aws.client("sesv2")
    ses.meta.events.register("before-send", faults.before_send)
    with pytest.raises(ClientError):
        ses.send_email(FromEmailAddress="a@example.com", Destination={}, Content={"Raw": {"Data": b"x"}})
    aws.reset_clients()
    assert faults.state()["injected"]["throttled"] == 1
