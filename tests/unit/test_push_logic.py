"""Push: platform names, the SendMessages request, and sorting per-device outcomes (no network)."""

from __future__ import annotations

import logging
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from shared.adapters.channels.email import PermanentSendError, TransientSendError
from shared.adapters.channels.push import Device, PushMessage, PushResult, send_push
from shared.domain.contacts import normalise_platform


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("apns", "APNS"),
        ("APNS", "APNS"),
        ("iOS", "APNS"),
        ("apns_sandbox", "APNS_SANDBOX"),
        ("APNS_SANDBOX", "APNS_SANDBOX"),
        ("fcm", "GCM"),
        ("GCM", "GCM"),
        (" Android ", "GCM"),
    ],
)
def test_normalise_platform(value: str, expected: str) -> None:
    assert normalise_platform(value) == expected


@pytest.mark.parametrize("value", ["", "web", "adm", "baidu", "sms"])
def test_unknown_platform_is_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="platform"):
        normalise_platform(value)


def test_device_normalises_its_platform() -> None:
    assert Device("t" * 64, "ios").platform == "APNS"  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Device("", "APNS")


class StubPinpoint:
    """Records SendMessages calls and answers with a canned MessageResponse (or raises)."""

    def __init__(self, result: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.result = result or {}
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def send_messages(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        return {"MessageResponse": {"ApplicationId": kwargs["ApplicationId"], "Result": self.result}}


IOS = Device("a" * 64, "APNS")
ANDROID = Device("b" * 152, "GCM")
MESSAGE = PushMessage(
    title="Still thinking it over?",
    body="Your cart is waiting",
    deep_link="acme://cart/123",
    image_url="https://cdn.shop.example.com/boot.png",
    data={"cart_id": "123"},
)


def test_request_is_valid_for_the_pinpoint_model() -> None:
    # Given a stub client
    stub = StubPinpoint()
    # When we push to an iPhone and an Android phone
    send_push(stub, app_id="app-1", devices=[IOS, ANDROID], message=MESSAGE, transactional=False)
    # Then one call went out, and botocore's own validator accepts its parameters
    (call,) = stub.calls
    model = botocore.session.get_session().get_service_model("pinpoint")
    shape = model.operation_model("SendMessages").input_shape
    assert shape is not None
    validate_parameters(call, shape)
    request = call["MessageRequest"]
    assert request["Addresses"] == {IOS.token: {"ChannelType": "APNS"}, ANDROID.token: {"ChannelType": "GCM"}}
    apns = request["MessageConfiguration"]["APNSMessage"]
    gcm = request["MessageConfiguration"]["GCMMessage"]
    assert apns["Action"] == gcm["Action"] == "DEEP_LINK"
    assert apns["Url"] == gcm["Url"] == "acme://cart/123"
    assert apns["MediaUrl"] == gcm["ImageUrl"] == "https://cdn.shop.example.com/boot.png"
    assert apns["Title"] == gcm["Title"] == "Still thinking it over?"
    assert apns["Data"] == gcm["Data"] == {"cart_id": "123"}
    assert (apns["Priority"], gcm["Priority"]) == ("5", "normal")
    assert apns["SilentPush"] is gcm["SilentPush"] is False


def test_transactional_push_is_high_priority_and_opens_the_app_without_a_link() -> None:
    stub = StubPinpoint()
    send_push(
        stub, app_id="a", devices=[IOS], message=PushMessage("Shipped", "On its way"), transactional=True
    )
    config = stub.calls[0]["MessageRequest"]["MessageConfiguration"]
    assert (config["APNSMessage"]["Priority"], config["GCMMessage"]["Priority"]) == ("10", "high")
    assert config["APNSMessage"]["Action"] == "OPEN_APP"
    assert "Url" not in config["APNSMessage"] and "MediaUrl" not in config["APNSMessage"]


def test_results_are_sorted_per_device() -> None:
    tokens = [f"token-{i:02d}-" + "x" * 40 for i in range(9)]
    stub = StubPinpoint(
        {
            tokens[0]: {"DeliveryStatus": "SUCCESSFUL", "StatusCode": 200, "MessageId": "m0"},
            tokens[1]: {"DeliveryStatus": "DUPLICATE", "StatusCode": 200, "MessageId": "m1"},
            tokens[2]: {"DeliveryStatus": "PERMANENT_FAILURE", "StatusCode": 410},
            tokens[3]: {"DeliveryStatus": "OPT_OUT", "StatusCode": 200},
            tokens[4]: {"DeliveryStatus": "TEMPORARY_FAILURE", "StatusCode": 404},  # FCM UNREGISTERED
            tokens[5]: {"DeliveryStatus": "THROTTLED", "StatusCode": 429},
            tokens[6]: {"DeliveryStatus": "TEMPORARY_FAILURE", "StatusCode": 503},
            tokens[7]: {"DeliveryStatus": "UNKNOWN_FAILURE", "StatusCode": 500},
            # tokens[8] missing from the answer
        }
    )
    devices = [Device(t, "GCM") for t in tokens]
    result = send_push(stub, app_id="a", devices=devices, message=MESSAGE, transactional=False)
    assert result == PushResult(
        delivered={tokens[0]: "m0", tokens[1]: "m1"},
        rejected=[tokens[2], tokens[3], tokens[4]],
        transient=[tokens[5], tokens[6], tokens[7], tokens[8]],
    )


def test_updated_token_is_reported() -> None:
    stub = StubPinpoint(
        {
            IOS.token: {
                "DeliveryStatus": "SUCCESSFUL",
                "StatusCode": 200,
                "MessageId": "m",
                "UpdatedToken": "new",
            }
        }
    )
    result = send_push(stub, app_id="a", devices=[IOS], message=MESSAGE, transactional=False)
    assert result.updated == {IOS.token: "new"}


def test_no_devices_makes_no_call() -> None:
    stub = StubPinpoint()
    assert send_push(stub, app_id="a", devices=[], message=MESSAGE, transactional=False) == PushResult()
    assert stub.calls == []


def test_more_than_100_devices_is_refused() -> None:
    devices = [Device(f"tok-{i:04d}", "GCM") for i in range(101)]
    with pytest.raises(ValueError, match="100"):
        send_push(StubPinpoint(), app_id="a", devices=devices, message=MESSAGE, transactional=False)


def _client_error(code: str, status: int, message: str = "nope") -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SendMessages")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status"),
    [("TooManyRequestsException", 429), ("InternalServerErrorException", 500)],
)
def test_whole_call_transient_failures(code: str, status: int) -> None:
    stub = StubPinpoint(error=_client_error(code, status))
    with pytest.raises(TransientSendError) as info:
        send_push(stub, app_id="a", devices=[IOS], message=MESSAGE, transactional=False)
    assert info.value.code == code
    assert str(info.value).startswith("Pinpoint ")


@pytest.mark.parametrize(
    ("code", "status"),
    [("NotFoundException", 404), ("ForbiddenException", 403), ("BadRequestException", 400)],
)
def test_whole_call_permanent_failures(code: str, status: int) -> None:
    stub = StubPinpoint(error=_client_error(code, status))
    with pytest.raises(PermanentSendError):
        send_push(stub, app_id="a", devices=[IOS], message=MESSAGE, transactional=False)


def test_tokens_never_appear_in_full(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="shared.adapters.channels.push")
    stub = StubPinpoint({IOS.token: {"DeliveryStatus": "PERMANENT_FAILURE", "StatusCode": 410}})
    send_push(stub, app_id="a", devices=[IOS], message=MESSAGE, transactional=False)
    stub.error = _client_error("BadRequestException", 400, f"Invalid address {IOS.token}")
    with pytest.raises(PermanentSendError) as info:
        send_push(stub, app_id="a", devices=[IOS], message=MESSAGE, transactional=False)
    assert IOS.token not in str(info.value)
    assert caplog.records
    for record in caplog.records:
        assert IOS.token not in str(record.__dict__)
