"""The emulator's HTTP front door: API Gateway's REST proxy, plus /_local/* for people and tests."""

from __future__ import annotations

import base64
import html
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra import description as d
from infra.local.emulator import ACCOUNT, Emulator, resource_name
from shared import clock

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit; the λ enforces 500 KB
ROUTES = {(m, p) for m, p in d.API.routes}


def proxy_event(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The REST API (v1) proxy event API Gateway would hand the ingest λ."""
    params = dict(parse_qsl(query, keep_blank_values=True)) or None
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/{d.API.stage}{path}",
            "stage": d.API.stage,
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": text if body else None,
        "isBase64Encoded": is_b64,
    }


def outbox_page(messages: list[dict[str, Any]]) -> str:
    rows = []
    for m in reversed(messages):
        rows.append(
            "<article style='border:1px solid #ddd;border-radius:8px;margin:1rem 0;padding:1rem'>"
            f"<div style='color:#555;font-size:.9rem'>{html.escape(m['sent_at'] or '')} · {html.escape(m['channel'])}"
            f" · {html.escape(str(m['journey']))} / {html.escape(str(m['step']))} · to {html.escape(m['to'])}</div>"
            f"<h2 style='font-size:1.1rem'>{html.escape(m['subject'])}</h2>"
            f"<iframe sandbox style='width:100%;height:420px;border:0' srcdoc=\"{html.escape(m['html'])}\"></iframe>"
            "</article>"
        )
    return (
        "<!doctype html><meta charset=utf-8><title>Boomerang local outbox</title>"
        "<body style='font-family:system-ui,sans-serif;max-width:760px;margin:2rem auto'>"
        f"<h1>Outbox <small style='color:#777'>({len(messages)})</small></h1>"
        + ("".join(rows) or "<p>Nothing sent yet.</p>")
    )


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    server_version = "boomerang-local"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own timeline
        pass

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, default=str).encode(), "application/json")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        if method == "GET" and url.path == "/_local/health":
            now = clock.iso(clock.now_ts())
            return self._json(
                200,
                {
                    "status": "ready",
                    "speed": self.emulator.speed,
                    "now": now,
                    # what `boomerang templates --local` needs to reach the emulated bucket
                    "aws_endpoint": self.emulator.endpoint,
                    "templates_bucket": self.emulator.templates_bucket,
                },
            )
        if method == "GET" and url.path == "/_local/reports":
            return self._json(200, {"reports": self.emulator.reports()})
        if method == "GET" and url.path == "/_local/outbox":
            return self._json(200, {"messages": self.emulator.outbox()})
        if method == "POST" and url.path == "/_local/faults":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                faults = json.loads(self.rfile.read(length) or b"{}")
                return self._json(200, {"faults": self.emulator.inject_faults(faults)})
            except (ValueError, AttributeError) as exc:
                return self._json(400, {"error": "invalid_faults", "message": str(exc)})
        if method == "GET" and url.path == "/_local/executions":
            return self._json(200, {"executions": self.emulator.executions()})
        if method == "GET" and url.path == "/_local/profile":
            q = dict(parse_qsl(url.query))
            profile = self.emulator.profile(q.get("store", "demo"), q.get("customer", ""))
            return self._json(200, profile) if profile else self._json(404, {"error": "not_found"})
        if method == "GET" and url.path == "/_local/history":
            q = dict(parse_qsl(url.query))
            return self._json(
                200, {"history": self.emulator.history(q.get("store", "demo"), q.get("customer", ""))}
            )
        if method == "GET" and url.path in ("/_local", "/_local/", "/_local/outbox.html"):
            return self._send(200, outbox_page(self.emulator.outbox()).encode(), "text/html; charset=utf-8")
        if (method, url.path) not in ROUTES:
            allowed = ", ".join(f"{m} {p}" for m, p in sorted(ROUTES))
            return self._json(404, {"success": False, "error": "not_found", "message": f"routes: {allowed}"})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            return self._json(
                413, {"success": False, "error": "payload_too_large", "message": "request too large"}
            )
        body = self.rfile.read(length) if length else b""
        event = proxy_event(method, url.path, url.query, dict(self.headers.items()), body)
        try:
            result = self.emulator.invoke(resource_name("fn", d.API.function), event)
        except Exception:  # what API Gateway answers when the λ crashes
            return self._json(502, {"message": "Internal server error"})
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        # API Gateway merges headers and multiValueHeaders (Powertools answers with the latter)
        headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
        headers.update(result.get("headers") or {})
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        content_type = headers.pop("Content-Type", headers.pop("content-type", "application/json"))
        self._send(int(result.get("statusCode", 200)), payload, content_type, headers)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")


class LocalServer:
    def __init__(self, emulator: Emulator, port: int = 8787) -> None:
        handler = type("Handler", (_Handler,), {"emulator": emulator})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        emulator.set_public_url(self.url)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
