"""The front door's defences against malformed and hostile HTTP, as API Gateway has them.

`http.server` trusts its client: `Content-Length: -1` makes it read until the client hangs up (for
ever, if it never does), a non-numeric length crashes the request thread without an answer, and a
client sending one header byte a minute holds a thread for as long as it likes. Here every request
gets an answer in bounded time:

- the whole request (line, headers, body) must arrive within `request_timeout_s` (slowloris): a
  watchdog closes the read side when time is up and the client gets 408;
- the body length is a plain non-negative decimal (400 otherwise, conflicting duplicates too),
  at most the limit (413), present when a POST has a body (411), and the body must be as long as it
  says (400 if the client hangs up early, 408 if it stops sending);
- `Transfer-Encoding: chunked` is read (bounded by the same limit); any other coding is 501, and
  both a length and chunking at once is 400 (request smuggling);
- overlong request lines (414), header lines or too many headers (431) and bad request lines (400)
  are answered by `http.server` itself; errors are JSON like API Gateway's `{"message": ...}`.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

REQUEST_TIMEOUT_S = 10.0  # API Gateway waits about as long for a client to finish its request
_MAX_LENGTH_DIGITS = 16  # more digits than any length we accept: refuse before int() on a huge string


class BodyError(Exception):
    """A request whose body cannot be read as sent: answered with `status` and never dispatched."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class GuardedHandler(BaseHTTPRequestHandler):
    """A request handler that answers every malformed or too slow request with a 4xx, in bounded time."""

    request_timeout_s = REQUEST_TIMEOUT_S
    timed_out = False
    default_request_version = "HTTP/1.0"  # never answer in HTTP/0.9 (no status line, no headers)

    def setup(self) -> None:
        self.timeout = self.request_timeout_s  # type: ignore[misc]  # each read blocks at most this long (StreamRequestHandler)
        super().setup()
        self._reading = threading.Lock()
        self._watchdog = threading.Timer(self.request_timeout_s, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def finish(self) -> None:
        self._watchdog.cancel()
        super().finish()

    def _expire(self) -> None:
        # A per-read timeout alone lets a client drip one byte just inside it for ever: end the reading.
        self.timed_out = True
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def request_read(self) -> None:
        """The request is in: the watchdog has nothing left to guard (the answer may take longer)."""
        self._watchdog.cancel()

    def handle_one_request(self) -> None:
        # http.server's own loop, with the deadline checked wherever a slow client could hold it
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if self.timed_out:
                return self._timeout()
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(414, "Request line too long")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # answers 400 / 431 itself
                return
            if self.timed_out:  # the headers stopped half-way: what was read is not a request
                return self._timeout()
            if len(self.requestline.split()) != 3:  # "GET /" alone is HTTP/0.9: no headers, no length
                self.send_error(400, "Bad request line: expected METHOD PATH HTTP/1.x")
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self._timeout()

    def _timeout(self) -> None:
        self.close_connection = True
        try:
            self.send_error(408, "Request Timeout")
        except OSError:
            pass  # the client is gone

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors answered before the λ runs, as API Gateway words them: JSON with a message."""
        body = json.dumps({"message": message or self.responses.get(code, ("Error",))[0]}).encode()
        self.close_connection = True
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def read_body(self, limit: int) -> bytes:
        """The request body, exactly as long as the client said, or BodyError saying what was wrong."""
        try:
            body = self._read_body(limit)
        except TimeoutError:
            raise BodyError(408, "request_timeout", "the request body did not arrive in time") from None
        if self.timed_out:
            raise BodyError(408, "request_timeout", "the request body did not arrive in time")
        self.request_read()
        return body

    def _read_body(self, limit: int) -> bytes:
        lengths = [v.strip() for v in self.headers.get_all("Content-Length") or []]
        coding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if coding:
            if lengths:
                raise BodyError(
                    400, "bad_request", "send either Content-Length or Transfer-Encoding: chunked, not both"
                )
            if coding != "chunked":
                raise BodyError(501, "not_implemented", f"Transfer-Encoding {coding!r}: only chunked is read")
            return self._read_chunked(limit)
        if not lengths:
            if self.command == "POST":
                raise BodyError(411, "length_required", "Content-Length is required on a POST")
            return b""
        if len(set(lengths)) > 1:
            raise BodyError(400, "bad_request", "conflicting Content-Length headers")
        text = lengths[0]
        if not (text.isascii() and text.isdigit()):
            raise BodyError(
                400,
                "bad_request",
                f"Content-Length must be a non-negative whole number of bytes, got {text!r}",
            )
        if len(text) > _MAX_LENGTH_DIGITS or int(text) > limit:
            raise BodyError(413, "payload_too_large", f"request body over {limit} bytes")
        length = int(text)
        body = self.rfile.read(length) if length else b""
        if len(body) < length and not self.timed_out:
            raise BodyError(
                400, "bad_request", f"body ended after {len(body)} of {length} bytes (Content-Length)"
            )
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            size_text = line.split(b";", 1)[0].strip()  # chunk extensions are allowed and ignored
            if (
                not line.endswith(b"\n")
                or not size_text
                or any(c not in b"0123456789abcdefABCDEF" for c in size_text)
            ):
                raise BodyError(400, "bad_request", "malformed chunk size line")
            size = int(size_text, 16) if len(size_text) <= _MAX_LENGTH_DIGITS else limit + 1
            if size == 0:
                break
            total += size
            if total > limit:
                raise BodyError(413, "payload_too_large", f"request body over {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BodyError(400, "bad_request", "chunk shorter than its size")
            parts.append(chunk)
        for _ in range(100):  # trailers, up to the blank line that ends the message
            if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                break
        else:
            raise BodyError(431, "bad_request", "too many trailer lines")
        return b"".join(parts)


def error_body(exc: BodyError) -> dict[str, Any]:
    return {"success": False, "error": exc.error, "message": exc.message}
