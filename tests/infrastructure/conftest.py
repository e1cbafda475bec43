"""Infrastructure tests synthesise the CDK app offline: no Docker, no network, no AWS account."""

from __future__ import annotations

import os

# Before anything imports aws_cdk: jsii reads these when it starts Node (see infra/app.py).
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from pytest_socket import disable_socket, enable_socket  # noqa: E402

from infra.assets import NO_DEPS_ENV  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _offline() -> Iterator[None]:
    # Module scope, like the synth fixtures, and undone afterwards: other test folders run moto servers.
    # jsii talks to Node over pipes, so synthesis needs no socket at all.
    previous = os.environ.get(NO_DEPS_ENV)
    os.environ[NO_DEPS_ENV] = "1"  # even a build_app() without with_dependencies=False must not pip-install
    disable_socket(allow_unix_socket=False)
    try:
        yield
    finally:
        enable_socket()
        if previous is None:
            os.environ.pop(NO_DEPS_ENV, None)
        else:
            os.environ[NO_DEPS_ENV] = previous
