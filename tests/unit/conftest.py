"""Unit tests never touch the network: a socket opened by accident fails the test."""

from collections.abc import Iterator

import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    # Per test rather than at import, so integration and e2e tests in the same run keep loopback.
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()
