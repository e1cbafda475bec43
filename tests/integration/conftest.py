"""Integration tests: real handlers, in-process, on moto (mock_aws). Nothing leaves the process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_socket
from moto import mock_aws

from infra.aws_calls import Recorder, recording_session
from infra.local import moto_dynamodb
from shared.platform import clock
from shared.platform.aws import reset_clients
from shared.platform.settings import settings
from shared.services import wiring
from tests.aws_fixtures import (
    FAKE_CREDENTIALS,
    FixedClock,
    LambdaContext,
    World,
    create_world,
    use_shared_boto3_session,
)

# the emulator's DynamoDB semantics here too: a cancelled transaction undoes only its own writes
moto_dynamodb.install()


@pytest.fixture(autouse=True, scope="session")
def _aws_calls() -> Iterator[Recorder]:
    # every AWS call a handler makes, for the IAM check (infra/aws_calls.py, python -m infra.iam_check)
    yield from recording_session("integration")


@pytest.fixture(autouse=True)
def _record_this_test(_aws_calls: Recorder) -> Iterator[None]:
    _aws_calls.active = True
    yield
    _aws_calls.active = False


@pytest.fixture(autouse=True)
def _offline() -> Iterator[None]:
    # moto answers in-process; a socket opened here would mean a call escaped to a real endpoint.
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


def _forget_cached_clients() -> None:
    reset_clients()
    settings.cache_clear()
    wiring.reset()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        use_shared_boto3_session()
        created = create_world()
        for name, value in created.env().items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()  # a test without a world may have read the environment before this one
        _forget_cached_clients()
        try:
            yield created
        finally:
            clock.reset_clock()
            reset_clients()
            settings.cache_clear()


@pytest.fixture
def fixed_clock() -> Iterator[FixedClock]:
    c = FixedClock(1_790_000_000.0)
    clock.set_clock(c)
    yield c
    clock.reset_clock()


@pytest.fixture
def ctx() -> LambdaContext:
    return LambdaContext()
