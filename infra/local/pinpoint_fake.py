"""A wire-level fake of Pinpoint ``SendMessages`` for the local emulator and tests.

moto does not implement Pinpoint's send API, and push goes through it (AWS End User Messaging
Push), so this serves the one REST call botocore makes: ``POST /v1/apps/{application-id}/messages``
with the MessageRequest as the JSON body, answered by the MessageResponse structure as the whole
body. Point a ``pinpoint`` client at it with ``endpoint_url=fake.url``; signatures are not checked.

Simulation hooks, all thread-safe:
- a token starting with ``invalid-`` fails with PERMANENT_FAILURE / 410 (an uninstalled app);
- ``fail_next(n, status)`` makes the next n deliveries (addresses, not calls) end in ``status``;
- ``throttle_requests(n)`` answers the next n HTTP calls with 429 TooManyRequestsException. botocore
  retries 429 by itself, so each retry consumes one; use a client with ``total_max_attempts=1``
  (or a larger n) to see the error.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

_SEND = re.compile(r"^/v1/apps/(?P<app>[^/?]+)/messages/?(?:\?.*)?$")

# Which message block of MessageConfiguration a channel reads, most specific first.
_BLOCKS = {
    "APNS": ("APNSMessage", "DefaultPushNotificationMessage"),
    "APNS_SANDBOX": ("APNSMessage", "DefaultPushNotificationMessage"),
    "GCM": ("GCMMessage", "DefaultPushNotificationMessage"),
}
# The downstream (APNs / FCM) status code Pinpoint reports with each delivery status.
_STATUS_CODES = {
    "SUCCESSFUL": (200, "Success"),
    "DUPLICATE": (200, "Duplicate address"),
    "THROTTLED": (429, "Too many requests for this device"),
    "TEMPORARY_FAILURE": (503, "Service unavailable"),
    "UNKNOWN_FAILURE": (500, "Internal server error"),
    "PERMANENT_FAILURE": (410, "Unregistered"),
    "OPT_OUT": (400, "Address opted out"),
}


class PinpointFake:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._fail: list[str] = []  # statuses for the next deliveries, in order
        self._throttle = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0  # HTTP calls received, throttled ones included

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> PinpointFake:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer((self._host, self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="pinpoint-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> PinpointFake:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("PinpointFake is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- what was sent, and simulation hooks -----------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """A snapshot of every delivered notification (failed deliveries are not recorded)."""
        with self._lock:
            return [dict(m) for m in self._messages]

    def keep_newest(self, cap: int) -> int:
        """Forget all but the newest `cap` notifications (bounded memory); how many were forgotten."""
        with self._lock:
            cut = max(0, len(self._messages) - cap)
            del self._messages[:cut]
            return cut

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._fail.clear()
            self._throttle = 0

    def fail_next(self, n: int, status: str = "THROTTLED") -> None:
        if status not in _STATUS_CODES or status == "SUCCESSFUL":
            raise ValueError(f"not a failing DeliveryStatus: {status!r}")
        with self._lock:
            self._fail.extend([status] * n)

    def throttle_requests(self, n: int) -> None:
        with self._lock:
            self._throttle += n

    # --- the service -------------------------------------------------------------------------------

    def _take_throttle(self) -> bool:
        with self._lock:
            self.requests += 1
            if self._throttle > 0:
                self._throttle -= 1
                return True
            return False

    def _deliver(
        self, app_id: str, token: str, address: dict[str, Any], config: dict[str, Any]
    ) -> dict[str, Any]:
        channel = str(address.get("ChannelType", ""))
        block: dict[str, Any] | None = None
        for name in _BLOCKS.get(channel, ()):
            if isinstance(config.get(name), dict):
                block = config[name]
                break
        if block is None:
            # Real Pinpoint answers this way for a channel it has no message block (or support) for.
            return {
                "DeliveryStatus": "PERMANENT_FAILURE",
                "StatusCode": 400,
                "StatusMessage": f"No message configuration for channel {channel or 'unknown'}",
            }
        with self._lock:
            status = self._fail.pop(0) if self._fail else "SUCCESSFUL"
        if token.startswith("invalid-"):
            status = "PERMANENT_FAILURE"
        code, text = _STATUS_CODES[status]
        result: dict[str, Any] = {"DeliveryStatus": status, "StatusCode": code, "StatusMessage": text}
        if status != "SUCCESSFUL":
            return result
        result["MessageId"] = uuid.uuid4().hex
        entry = {
            "app_id": app_id,
            "token": token,
            "platform": channel,
            "title": address.get("TitleOverride") or block.get("Title"),
            "body": address.get("BodyOverride") or block.get("Body"),
            "deep_link": block.get("Url"),
            "image_url": block.get("MediaUrl") or block.get("ImageUrl"),
            "data": dict(block.get("Data") or {}),
            "action": block.get("Action"),
            "priority": block.get("Priority"),
            "message_id": result["MessageId"],
            "at": time.time(),
        }
        with self._lock:
            self._messages.append(entry)
        return result

    def send_messages(self, app_id: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The SendMessages operation on a parsed MessageRequest: (HTTP status, JSON body)."""
        config = request.get("MessageConfiguration")
        if not isinstance(config, dict):
            return 400, _error("BadRequestException", "MessageConfiguration is required")
        addresses = request.get("Addresses") or {}
        if not isinstance(addresses, dict) or not addresses:
            # The real service also allows Endpoints; this fake (like Boomerang) sends to addresses only.
            return 400, _error("BadRequestException", "Addresses must name at least one address")
        if len(addresses) > 100:
            return 400, _error("BadRequestException", "At most 100 addresses per request")
        result = {
            token: self._deliver(app_id, token, address if isinstance(address, dict) else {}, config)
            for token, address in addresses.items()
        }
        return 200, {"ApplicationId": app_id, "RequestId": str(uuid.uuid4()), "Result": result}


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"__type": kind, "Message": message, "RequestID": str(uuid.uuid4())}


class _Handler(BaseHTTPRequestHandler):
    owner: PinpointFake
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the request line contains no secrets, but test output should stay clean

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header(
            "x-amzn-RequestId", str(body.get("RequestId") or body.get("RequestID") or uuid.uuid4())
        )
        if "__type" in body:
            self.send_header("x-amzn-ErrorType", str(body["__type"]))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        raw = self._body()  # read it first so a keep-alive connection stays in step
        match = _SEND.match(self.path)
        if not match:
            self._answer(404, _error("NotFoundException", f"No route for POST {self.path.split('?')[0]}"))
            return
        if self.owner._take_throttle():
            self._answer(
                HTTPStatus.TOO_MANY_REQUESTS, _error("TooManyRequestsException", "Too many requests")
            )
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            self._answer(400, _error("BadRequestException", "Request body is not JSON"))
            return
        if not isinstance(request, dict):
            self._answer(400, _error("BadRequestException", "Request body must be a JSON object"))
            return
        status, body = self.owner.send_messages(unquote(match["app"]), request)
        self._answer(status, body)

    def _not_found(self) -> None:
        self._body()
        self._answer(
            404, _error("NotFoundException", f"No route for {self.command} {self.path.split('?')[0]}")
        )

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_found
