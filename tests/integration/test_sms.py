"""send_sms against SNS on moto: what gets published, opt-outs, the segment budget, throttling."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sns.models import sns_backends

from shared.adapters.channels.email import PermanentSendError, TransientSendError
from shared.adapters.channels.sms import OptedOut, send_sms
from tests.aws_fixtures import ACCOUNT, FAKE_CREDENTIALS, REGION

PHONE = "+48601234567"
OPTED_OUT = "+48601234599"  # moto reports every number ending in 99 as opted out


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sns", region_name=REGION)


def sms_sent() -> dict[str, tuple[str, str]]:
    """moto's record of published SMS: MessageId -> (phone number, body). Attributes are not kept."""
    return dict(sns_backends[ACCOUNT][REGION].sms_messages)


def publish_wire_params(client: Any) -> list[dict[str, str]]:
    """The Publish form parameters as serialised by botocore (moto does not keep SMS attributes)."""
    seen: list[dict[str, str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append({k: str(v) for k, v in params["body"].items()})  # query protocol: a dict here

    client.meta.events.register("before-call.sns.Publish", record)
    return seen


def attributes(wire: dict[str, str]) -> dict[str, str]:
    """MessageAttributes.entry.N.{Name,Value.StringValue} back into {name: value}."""
    return {
        name: wire[key.removesuffix("Name") + "Value.StringValue"]
        for key, name in wire.items()
        if key.startswith("MessageAttributes.entry.") and key.endswith(".Name")
    }


def test_promotional_sms_is_published(sns: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(
        logging.DEBUG, logger="shared.adapters.channels.sms"
    )  # botocore DEBUG logs do quote the number
    wire = publish_wire_params(sns)
    # When a marketing SMS goes out
    message_id = send_sms(sns, to=PHONE, body="Your cart misses you", transactional=False, max_segments=2)
    # Then SNS holds it under the returned id, addressed to the number
    assert sms_sent() == {message_id: (PHONE, "Your cart misses you")}
    # And it was sent as Promotional, without a sender ID
    (request,) = wire
    assert attributes(request) == {"AWS.SNS.SMS.SMSType": "Promotional"}
    # And the number appears in no log record
    assert caplog.records
    assert all("601234567" not in str(r.__dict__) for r in caplog.records)


def test_transactional_sms_with_sender_id(sns: Any) -> None:
    wire = publish_wire_params(sns)
    send_sms(sns, to=PHONE, body="Order 1001 shipped", transactional=True, max_segments=1, sender_id="Acme")
    assert attributes(wire[0]) == {"AWS.SNS.SMS.SMSType": "Transactional", "AWS.SNS.SMS.SenderID": "Acme"}


def test_opted_out_number_raises_and_nothing_is_published(sns: Any) -> None:
    with pytest.raises(OptedOut) as info:
        send_sms(sns, to=OPTED_OUT, body="Come back!", transactional=False, max_segments=2)
    assert info.value.code == "OptedOut"
    assert isinstance(info.value, PermanentSendError)
    assert sms_sent() == {}


def test_too_many_segments_is_permanent_and_nothing_is_published(sns: Any) -> None:
    body = "ą" * 135  # UCS-2: three segments of 67
    with pytest.raises(PermanentSendError) as info:
        send_sms(sns, to=PHONE, body=body, transactional=False, max_segments=2)
    assert info.value.code == "TooManySegments"
    assert "3" in str(info.value) and "2" in str(info.value)
    assert sms_sent() == {}


def test_throttling_is_transient(sns: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(**_: Any) -> dict[str, Any]:
        response: dict[str, Any] = {
            "Error": {"Code": "Throttling", "Message": f"Rate exceeded for {PHONE}"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        raise ClientError(response, "Publish")  # type: ignore[arg-type]

    monkeypatch.setattr(sns, "publish", throttled)
    with pytest.raises(TransientSendError) as info:
        send_sms(sns, to=PHONE, body="Hello", transactional=False, max_segments=1)
    assert info.value.code == "Throttling"
    assert "601234567" not in str(info.value)
    assert sms_sent() == {}


def test_a_number_sns_refuses_is_permanent(sns: Any) -> None:
    # moto, like SNS, refuses anything but digits in the opt-out check: InvalidParameter.
    with pytest.raises(PermanentSendError) as info:
        send_sms(sns, to="+48 601 234 567", body="Hello", transactional=False, max_segments=1)
    assert info.value.code == "InvalidParameter"
    assert sms_sent() == {}
