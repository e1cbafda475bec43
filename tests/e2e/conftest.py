"""Starts `boomerang local` in a subprocess (loopback only) once for the e2e session."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import log_scan

ROOT = Path(__file__).resolve().parents[2]
SPEED = 3600
API_KEY = "e2e-key"


@dataclass
class Local:
    url: str
    key: str = API_KEY
    log: deque[str] = field(default_factory=deque, repr=False)  # the emulator's last log lines

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        if data:
            log_scan.remember(data)  # the values the session's logs are scanned for
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                raw = resp.read()
                return resp.status, json.loads(
                    raw
                ) if resp.headers.get_content_type() == "application/json" else raw
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if err.headers.get_content_type() == "application/json" else raw

    def post(self, path: str, body: Any, key: str | None = None) -> tuple[int, Any]:
        auth = base64.b64encode(f"{key if key is not None else self.key}:".encode()).decode()
        return self.request(
            "POST", path, body, {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
        )

    def outbox(self) -> list[dict[str, Any]]:
        return self.request("GET", "/_local/outbox")[1]["messages"]

    def wait_for(self, predicate: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_local(*extra: str) -> tuple[subprocess.Popen[str], Local]:
    """`boomerang local` in a subprocess on a free loopback port; returns once it printed 'ready'."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.local",
            "local",
            "--port",
            str(port),
            "--speed",
            str(SPEED),
            "--api-key",
            API_KEY,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    log_file = log_scan.new_log_file().open("a", encoding="utf-8")  # every line, scanned at the end
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        log_file.write(line)
        if "ready" in line:
            tail: deque[str] = deque(lines, maxlen=200)
            threading.Thread(
                target=_drain, args=(proc, tail, log_file), name="local-log", daemon=True
            ).start()
            return proc, Local(f"http://127.0.0.1:{port}", log=tail)
        if proc.poll() is not None:
            raise RuntimeError("boomerang local exited:\n" + "".join(lines))
    proc.kill()
    raise RuntimeError("boomerang local never printed 'ready':\n" + "".join(lines))


def _drain(proc: subprocess.Popen[str], tail: deque[str], log_file: Any) -> None:
    """Keep reading the emulator's log: a pipe nobody reads fills up (64 KB) and then every thread
    that logs blocks on write, which freezes journeys and keeps Ctrl-C from stopping it."""
    assert proc.stdout is not None
    with log_file:
        for line in proc.stdout:
            tail.append(line)
            log_file.write(line)
            log_file.flush()


@pytest.fixture(scope="session", autouse=True)
def _no_customer_values_in_logs() -> Iterator[None]:
    """Set up first, so torn down last: after every emulator of the session has stopped."""
    yield
    problems = log_scan.scan()
    if problems:
        pytest.fail(
            f"{len(problems)} log lines carry customer values:\n" + "\n".join(problems[:20]), pytrace=False
        )


def stop_local(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)  # Ctrl-C must stop it cleanly
    try:
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="session", autouse=True)
def _aws_calls() -> Iterator[None]:
    """Every emulator this session starts records its functions' AWS calls (infra/aws_calls.py) into
    one folder; once they have all stopped, calls missing from infra/aws_calls.json fail the run."""
    from infra import aws_calls

    directory = os.environ.get(aws_calls.RECORD_DIR_ENV) or str(
        aws_calls.DEFAULT_RECORD_DIR / f"e2e-{os.getpid()}"
    )
    previous = os.environ.get(aws_calls.RECORD_DIR_ENV)
    os.environ[aws_calls.RECORD_DIR_ENV] = directory  # inherited by `boomerang local` subprocesses
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(aws_calls.RECORD_DIR_ENV, None)
    if not os.environ.get(aws_calls.UPDATING_ENV) and Path(directory).is_dir():
        missing = aws_calls.unrecorded(aws_calls.read_records(directory))
        assert not missing, aws_calls.describe_unrecorded(missing)


@pytest.fixture(scope="session")
def local() -> Iterator[Local]:
    proc, server = start_local()
    try:
        yield server
    finally:
        stop_local(proc)
