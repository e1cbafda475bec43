"""The emulator's front door answers malformed and slow HTTP with a 4xx, in bounded time (issue 16.8).

Raw sockets against the real request handler (infra/local/server.py) on loopback; the λ behind it
is a stub that records what reached it, so these run in well under a second each and prove that
no malformed request is ever dispatched. Before the guard, `Content-Length: -1` hung the server.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import server as local_server
from infra.local.http_guard import GuardedHandler
from infra.local.server import LocalServer

TIMEOUT = 0.6  # the request deadline in these tests (10 s in `make local`)


class _StubEmulator:
    speed = 1.0

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def set_public_url(self, url: str) -> None:
        pass

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": json.dumps({"success": True}), "headers": {}}


@pytest.fixture
def door(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalServer, _StubEmulator]]:
    monkeypatch.setattr(GuardedHandler, "request_timeout_s", TIMEOUT)
    emu = _StubEmulator()
    srv = LocalServer(emu, port=0).start()  # type: ignore[arg-type]
    try:
        yield srv, emu
    finally:
        srv.stop()


def _exchange(
    port: int, raw: bytes, *, then_wait: float = 0.0, close_write: bool = False
) -> tuple[int, bytes]:
    """Send `raw`, optionally keep the connection open, and read the answer (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        time.sleep(then_wait)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


def _post(headers: str, body: bytes = b"") -> bytes:
    return (
        f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n".encode()
        + body
    )


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ("Content-Length: -1\r\n", b"{}", 400),
        ("Content-Length: 12abc\r\n", b"{}", 400),
        ("Content-Length: 0x10\r\n", b"{}", 400),
        ("Content-Length: 2\r\nContent-Length: 3\r\n", b"{}", 400),
        (f"Content-Length: {local_server.MAX_REQUEST_BYTES + 1}\r\n", b"{}", 413),
        ("Content-Length: 99999999999999999999999999999\r\n", b"{}", 413),
        ("", b'{"batch": []}', 411),  # a body without a length
        ("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"{}", 400),
        ("Transfer-Encoding: gzip\r\n", b"{}", 501),
        ("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n", 400),
    ],
)
def test_malformed_lengths_are_answered_and_never_dispatched(
    door: tuple[LocalServer, _StubEmulator], headers: str, body: bytes, status: int
) -> None:
    srv, emu = door
    got, payload = _exchange(srv.port, _post(headers, body), close_write=True)
    assert got == status, payload
    assert json.loads(payload)["message"]
    assert emu.events == []


def test_a_body_shorter_than_its_length_is_400_when_the_client_hangs_up(
    door: tuple[LocalServer, _StubEmulator],
) -> None:
    srv, emu = door
    got, payload = _exchange(srv.port, _post("Content-Length: 50\r\n", b"{}"), close_write=True)
    assert got == 400 and b"2 of 50" in payload
    assert emu.events == []


def test_a_body_that_stops_arriving_is_408_in_bounded_time(door: tuple[LocalServer, _StubEmulator]) -> None:
    srv, emu = door
    started = time.monotonic()
    got, _ = _exchange(srv.port, _post("Content-Length: 50\r\n", b"{}"))  # keeps the connection open
    assert got == 408
    assert time.monotonic() - started < TIMEOUT + 3
    assert emu.events == []


def test_slowloris_headers_get_408_at_the_deadline(door: tuple[LocalServer, _StubEmulator]) -> None:
    srv, emu = door
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST /v1/batch HTTP/1.1\r\n")
        answer = b""
        for _ in range(40):  # one header byte at a time, each well inside a per-read timeout
            try:
                s.sendall(b"X")
            except OSError:
                break
            time.sleep(TIMEOUT / 8)
            s.setblocking(False)
            try:
                answer += s.recv(4096)
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
            if answer:
                break
    assert answer.startswith(b"HTTP/1.0 408"), answer
    assert time.monotonic() - started < TIMEOUT * 3
    assert emu.events == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /v1/batch HTTP/9.9\r\n\r\n", 505),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"POST /v1/batch HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"POST /v1/batch HTTP/1.1\r\n" + b"X-A: 1\r\n" * 150 + b"\r\n", 431),
        (b"BREW /v1/batch HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 501),
    ],
)
def test_bad_request_lines_and_headers(
    door: tuple[LocalServer, _StubEmulator], raw: bytes, status: int
) -> None:
    srv, emu = door
    assert _exchange(srv.port, raw, close_write=True)[0] == status
    assert emu.events == []


def test_well_formed_requests_still_reach_the_function(door: tuple[LocalServer, _StubEmulator]) -> None:
    srv, emu = door
    assert _exchange(srv.port, _post("Content-Length: 2\r\n", b"{}"), close_write=True)[0] == 200
    chunked = _post("Transfer-Encoding: chunked\r\n", b"1;ext=1\r\n{\r\n1\r\n}\r\n0\r\n\r\n")
    assert _exchange(srv.port, chunked, close_write=True)[0] == 200
    bodies = [base64.b64decode(e["body"]) if e["isBase64Encoded"] else e["body"].encode() for e in emu.events]
    assert bodies == [b"{}", b"{}"]
