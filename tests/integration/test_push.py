"""send_push over HTTP against the local Pinpoint fake, through a real botocore pinpoint client."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import pytest_socket
from botocore.config import Config

from infra.local.pinpoint_fake import PinpointFake
from shared.adapters.channels.email import TransientSendError
from shared.adapters.channels.push import Device, PushMessage, send_push

APP_ID = "0123456789abcdef0123456789abcdef"
IPHONE = Device("a1" * 32, "APNS")
PIXEL = Device("fcm-" + "b" * 140, "GCM")
MESSAGE = PushMessage(
    title="Still thinking it over?",
    body="Your boots are waiting",
    deep_link="acme://cart/123",
    image_url="https://cdn.shop.example.com/boots.png",
    data={"cart_id": "123"},
)


@pytest.fixture
def fake() -> Iterator[PinpointFake]:
    # The integration conftest turns sockets off for every test (its fixture runs first, being
    # autouse); these tests need loopback to the fake, and nothing else.
    pytest_socket.enable_socket()
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    server = PinpointFake().start()
    try:
        yield server
    finally:
        server.stop()  # before sockets go off again: its accept() would build a guarded socket
        pytest_socket.disable_socket(allow_unix_socket=True)


@pytest.fixture
def pinpoint(fake: PinpointFake) -> Any:
    # No retries: botocore would retry THROTTLED 429s itself, hiding what the fake simulates.
    return boto3.client(
        "pinpoint",
        endpoint_url=fake.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_push_is_delivered_with_every_field(fake: PinpointFake, pinpoint: Any) -> None:
    before = time.time()
    result = send_push(pinpoint, app_id=APP_ID, devices=[IPHONE, PIXEL], message=MESSAGE, transactional=False)
    assert set(result.delivered) == {IPHONE.token, PIXEL.token}
    assert result.rejected == result.transient == []
    sent = {m["token"]: m for m in fake.messages}
    for device, priority in ((IPHONE, "5"), (PIXEL, "normal")):
        m = sent[device.token]
        assert m["message_id"] == result.delivered[device.token]
        assert (m["app_id"], m["platform"], m["title"], m["body"]) == (
            APP_ID,
            device.platform,
            "Still thinking it over?",
            "Your boots are waiting",
        )
        assert (m["deep_link"], m["image_url"], m["data"]) == (
            "acme://cart/123",
            "https://cdn.shop.example.com/boots.png",
            {"cart_id": "123"},
        )
        assert (m["action"], m["priority"]) == ("DEEP_LINK", priority)
        assert before <= m["at"] <= time.time()


def test_invalid_token_is_rejected(fake: PinpointFake, pinpoint: Any) -> None:
    dead = Device("invalid-" + "c" * 56, "APNS_SANDBOX")
    result = send_push(pinpoint, app_id=APP_ID, devices=[IPHONE, dead], message=MESSAGE, transactional=True)
    assert list(result.delivered) == [IPHONE.token]
    assert result.rejected == [dead.token]
    assert [m["token"] for m in fake.messages] == [IPHONE.token]


def test_throttled_delivery_is_transient_per_device(fake: PinpointFake, pinpoint: Any) -> None:
    fake.fail_next(1, "THROTTLED")
    result = send_push(pinpoint, app_id=APP_ID, devices=[IPHONE, PIXEL], message=MESSAGE, transactional=False)
    # Addresses are delivered in request order, so the first one took the failure.
    assert result.transient == [IPHONE.token]
    assert list(result.delivered) == [PIXEL.token]
    # And the next attempt goes through
    retry = send_push(pinpoint, app_id=APP_ID, devices=[IPHONE], message=MESSAGE, transactional=False)
    assert list(retry.delivered) == [IPHONE.token]


def test_throttled_call_raises_transient(fake: PinpointFake, pinpoint: Any) -> None:
    fake.throttle_requests(1)
    with pytest.raises(TransientSendError) as info:
        send_push(pinpoint, app_id=APP_ID, devices=[IPHONE], message=MESSAGE, transactional=False)
    assert info.value.code == "TooManyRequestsException"
    assert fake.messages == []


def test_botocore_retries_consume_throttled_requests(fake: PinpointFake) -> None:
    # With botocore's default retries, a single 429 is absorbed and the push goes out.
    retrying = boto3.client(
        "pinpoint",
        endpoint_url=fake.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
    fake.throttle_requests(1)
    result = send_push(retrying, app_id=APP_ID, devices=[PIXEL], message=MESSAGE, transactional=False)
    assert list(result.delivered) == [PIXEL.token]
    assert fake.requests == 2


def test_unknown_path_is_a_json_404(fake: PinpointFake) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{fake.url}/v1/apps/{APP_ID}/endpoints/x", timeout=5)
    assert info.value.code == 404
    assert json.loads(info.value.read())["__type"] == "NotFoundException"
