"""The emulator's HTTP front door: API Gateway's Lambda proxy (the HTTP API Boomerang deploys by
default, payload format 1.0), plus /_local/* for people and tests."""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import threading
import uuid
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from infra import description as d
from infra.local.emulator import ACCOUNT, Emulator, resource_name
from infra.local.http_guard import BodyError, GuardedHandler, error_body
from shared.platform import clock
from shared.services.consent.guard import csp_hash, security_headers

MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit; the λ enforces 500 KB
ROUTES = {(m, p) for m, p in d.API.routes}
# API Gateway's resource paths: "{name}" is one non-empty path segment
_ROUTE_PATTERNS = [
    (m, p, re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(p)) + "$"))
    for m, p in d.API.routes
]


def match_route(method: str, path: str) -> tuple[str, dict[str, str] | None] | None:
    """The resource a request maps to and its path parameters, as API Gateway resolves them."""
    for m, resource, pattern in _ROUTE_PATTERNS:
        found = pattern.match(path) if m == method else None
        if found:
            # API Gateway hands the λ path parameters URL-decoded
            return resource, {k: unquote(v) for k, v in found.groupdict().items()} or None
    return None


def _binary(headers: dict[str, str], api: str = d.API.default_kind) -> bool:
    """Whether API Gateway hands the λ this body base64-encoded: REST when Content-Type matches a
    binary media type ("*/*": always); HTTP API unless it is one of its text types (none: base64)."""
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "") or ""
    ctype = ctype.split(";")[0].strip().lower()
    if api == "rest":
        return any(fnmatch.fnmatch(ctype, t.lower()) for t in d.API.binary_media_types)
    return not ctype or not any(fnmatch.fnmatch(ctype, t) for t in d.API.http_text_media_types)


def proxy_event(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    api: str = d.API.default_kind,
) -> dict[str, Any]:
    """The v1 proxy event API Gateway would hand the ingest λ: the deployed default's (an HTTP API's
    payload format 1.0: no stage in any path, text bodies as text), or a REST API's (api="rest")."""
    params = dict(parse_qsl(query, keep_blank_values=True)) or None
    if not any(k.lower() == "x-forwarded-proto" for k in headers):
        # API Gateway adds X-Forwarded-Proto; the front door speaks plain http on loopback
        headers = {**headers, "X-Forwarded-Proto": "http"}
    route = match_route(method, path)
    resource, path_params = route if route else (path, None)
    if _binary(headers, api):
        text, is_b64 = base64.b64encode(body).decode(), True
    else:
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
    # REST's requestContext.path carries its stage; an HTTP API's $default stage is the root
    stage, stage_path = (d.API.stage, f"/{d.API.stage}{path}") if api == "rest" else ("$default", path)
    event: dict[str, Any] = {"version": "1.0"} if api != "rest" else {}
    event.update(
        {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": params,
            "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
            "pathParameters": path_params,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": method,
                "path": stage_path,
                "stage": stage,
                "requestId": str(uuid.uuid4()),
                "accountId": ACCOUNT,
                "apiId": "local",
                "identity": {"sourceIp": "127.0.0.1"},
            },
            "body": text if body else None,
            "isBase64Encoded": is_b64 if body else False,
        }
    )
    return event


_OUTBOX_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Boomerang local outbox</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f4f4f5; color: #18181b; }
  header { position: sticky; top: 0; background: #18181b; color: #fff; padding: .8rem 1.5rem;
           display: flex; gap: 1rem; align-items: baseline; z-index: 1; }
  header h1 { font-size: 1.2rem; margin: 0; }
  #live { font-size: .8rem; color: #a1a1aa; }
  main { max-width: 980px; margin: 0 auto; padding: 1rem 1.5rem; }
  .msg { background: #fff; border-radius: 10px; margin: 1rem 0; padding: 1rem 1.2rem;
         box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  .meta { color: #52525b; font-size: .85rem; display: flex; flex-wrap: wrap; gap: .3rem .8rem; }
  .badge { font-weight: 600; text-transform: uppercase; font-size: .75rem; padding: .1rem .45rem;
           border-radius: 4px; background: #e4e4e7; }
  .email .badge { background: #dbeafe; } .sms .badge { background: #dcfce7; } .push .badge { background: #fef3c7; }
  .webpush .badge { background: #ede9fe; }
  .browser { max-width: 420px; margin: .8rem 0 0; border: 1px solid #d4d4d8; border-radius: 8px; overflow: hidden; }
  .browser .bar { background: #e4e4e7; padding: .35rem .6rem; font-size: .75rem; color: #52525b; }
  .browser .desk { background: #f4f4f5; padding: 14px; min-height: 120px; }
  .browser .note { background: #fff; box-shadow: 0 2px 8px rgba(0,0,0,.15); flex-direction: column; }
  .browser .note .row { display: flex; gap: .6rem; }
  .browser .note img.hero { width: 100%; height: auto; max-height: 160px; border-radius: 6px; }
  .subject { font-size: 1.05rem; margin: .6rem 0; }
  iframe.mail { width: 100%; height: 520px; border: 1px solid #e4e4e7; border-radius: 6px; background: #fff; }
  .phone { width: 300px; margin: .8rem 0 0; padding: 14px; border-radius: 30px; background: #27272a; }
  .screen { border-radius: 20px; min-height: 180px; padding: 14px; background: #fafafa; }
  .push .screen { background: linear-gradient(160deg, #4f46e5, #0ea5e9); }
  .bubble { background: #e4e4e7; border-radius: 16px 16px 16px 4px; padding: .6rem .8rem; font-size: .9rem;
            line-height: 1.35; white-space: pre-wrap; word-break: break-word; }
  .sender { font-size: .75rem; color: #71717a; margin-bottom: .4rem; text-align: center; }
  .note { background: rgba(255,255,255,.92); border-radius: 14px; padding: .6rem .7rem; font-size: .85rem;
          display: flex; gap: .6rem; }
  .note img { width: 44px; height: 44px; object-fit: cover; border-radius: 8px; }
  .note .app { font-size: .7rem; text-transform: uppercase; color: #71717a; }
  .note .title { font-weight: 600; }
  .link { font-size: .75rem; color: #52525b; word-break: break-all; margin-top: .3rem; }
  .reports { background: #fef2f2; border: 1px solid #fecaca; border-radius: 10px; padding: .6rem 1rem; }
  .reports pre { white-space: pre-wrap; font-size: .8rem; margin: .3rem 0 .8rem; }
  .empty { color: #71717a; }
</style></head>
<body>
<header><h1>Outbox</h1><span id="count">0 messages</span><span id="live">live</span></header>
<main>
  <section id="reports" class="reports" hidden><h2>Template reports</h2><div id="report-list"></div></section>
  <p id="empty" class="empty">Nothing sent yet. Messages appear here as journeys send them.</p>
  <div id="messages"></div>
</main>
<script>
"use strict";
const seen = new Map();  // id -> what the card shows of the journey (recorded just after the send)
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function render(m) {
  const card = el("article", "msg " + m.channel);
  card.dataset.id = m.id; card.dataset.channel = m.channel;
  const meta = el("div", "meta");
  meta.append(el("span", "badge", m.channel), el("span", "time", m.sent_at || ""),
              el("span", "journey", (m.journey || "?") + " / " + (m.step || "?")), el("span", "to", "to " + m.to));
  card.append(meta);
  if (m.channel === "email") {
    card.append(el("h2", "subject", m.subject));
    const frame = document.createElement("iframe");
    frame.className = "mail";
    frame.setAttribute("sandbox", "");  // no scripts, no forms, no same-origin: the mail is only shown
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.title = m.subject || "email";
    frame.srcdoc = m.html || "<pre>" + (m.text || "").replace(/[&<>]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;"}[c])) + "</pre>";
    card.append(frame);
  } else if (m.channel === "sms") {
    const phone = el("div", "phone"), screen = el("div", "screen");
    screen.append(el("div", "sender", "SMS to " + m.to), el("div", "bubble sms-body", m.text));
    phone.append(screen); card.append(phone);
  } else if (m.channel === "webpush") {
    // a browser notification: icon, title, body, the large image, and where a click goes
    const frame = el("div", "browser"), desk = el("div", "desk"), note = el("div", "note"), row = el("div", "row");
    const h = m.headers || {};
    if (h.icon && /^https:/i.test(h.icon)) { const i = el("img"); i.src = h.icon; i.alt = ""; row.append(i); }
    const words = el("div");
    words.append(el("div", "app", "Browser notification · " + m.to), el("div", "title", m.subject), el("div", "webpush-body", m.text));
    row.append(words); note.append(row);
    if (h.image_url && /^https:/i.test(h.image_url)) { const i = el("img", "hero"); i.src = h.image_url; i.alt = ""; note.append(i); }
    if (h.deep_link) note.append(el("div", "link", "click opens " + h.deep_link));
    desk.append(note); frame.append(el("div", "bar", "TTL " + h.ttl + " s · urgency " + h.urgency), desk);
    card.append(frame);
  } else {
    const phone = el("div", "phone"), screen = el("div", "screen"), note = el("div", "note");
    const image = (m.headers || {}).image_url;
    if (image && /^https?:/i.test(image)) { const img = el("img"); img.src = image; img.alt = ""; note.append(img); }
    const words = el("div");
    words.append(el("div", "app", "Boomerang Demo Store · now"), el("div", "title", m.subject), el("div", "push-body", m.text));
    const link = (m.headers || {}).deep_link;
    if (link) words.append(el("div", "link", "opens " + link));
    note.append(words); screen.append(note); phone.append(screen); card.append(phone);
  }
  return card;
}
async function refresh() {
  try {
    const messages = (await (await fetch("/_local/outbox", {cache: "no-store"})).json()).messages;
    const list = document.getElementById("messages");
    for (const m of messages) {
      const sig = [m.journey, m.step, m.sent_at].join("|");
      if (seen.get(m.id) === sig) continue;  // unchanged cards keep their iframes
      const old = seen.has(m.id) ? list.querySelector(`article[data-id="${CSS.escape(m.id)}"]`) : null;
      seen.set(m.id, sig);
      if (old) old.replaceWith(render(m)); else list.prepend(render(m));  // newest first
    }
    document.getElementById("count").textContent = messages.length + (messages.length === 1 ? " message" : " messages");
    document.getElementById("empty").hidden = messages.length > 0;
    const reports = (await (await fetch("/_local/reports", {cache: "no-store"})).json()).reports;
    const box = document.getElementById("report-list");
    if (box.childElementCount !== reports.length) {
      box.replaceChildren(...reports.slice().reverse().map(r => {
        const d = el("div", "report"); d.append(el("strong", "", r.subject), el("pre", "", r.message)); return d;
      }));
    }
    document.getElementById("reports").hidden = reports.length === 0;
    document.getElementById("live").textContent = "live · updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("live").textContent = "emulator not answering";
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body></html>
"""


def outbox_page() -> str:
    """The outbox page: every message as it arrives (polls /_local/outbox and /_local/reports)."""
    return _OUTBOX_PAGE


def _outbox_headers() -> dict[str, str]:
    """The outbox page's own script by hash and nothing else; the mails it shows sit in sandboxed
    srcdoc frames, which inherit this policy: their inline styles and remote images stay allowed."""
    script = _OUTBOX_PAGE.split("<script>", 1)[1].split("</script>", 1)[0]
    csp = (
        f"default-src 'none'; script-src {csp_hash(script)}; connect-src 'self'; "
        "style-src 'unsafe-inline' http: https:; img-src http: https: data:; font-src http: https: data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return {**security_headers(), "Content-Security-Policy": csp}


OUTBOX_HEADERS = _outbox_headers()


class _Handler(GuardedHandler):
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

    def _webpush(self, action: str) -> None:
        """A fake browser allows notifications ({"store", "browser"}) or drops its subscription
        ({"endpoint", "status": 410|404}); see infra/local/webpush_fake.py."""
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
            if action == "subscribe":
                store = str(body.get("store") or self.emulator.store.store_id)
                label = str(body.get("browser") or "Firefox on Linux")[:60]
                return self._json(200, self.emulator.webpush_subscribe(store, label))
            status = int(body.get("status", 410))
            if status not in (404, 410):
                raise ValueError("status must be 404 or 410")
            self.emulator.webpush.expire(str(body["endpoint"]), status)
            return self._json(200, {"expired": True, "status": status})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._json(400, {"error": "invalid_request", "message": str(exc)})

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
                    # what `boomerang customers|keys --local` needs
                    **self.emulator.privacy_resources(),
                },
            )
        if method == "GET" and url.path == "/_local/reports":
            return self._json(200, {"reports": self.emulator.reports()})
        if method == "GET" and url.path == "/_local/outbox":
            return self._json(200, {"messages": self.emulator.outbox()})
        if method == "POST" and url.path == "/_local/faults":
            try:
                faults = json.loads(self.read_body(MAX_REQUEST_BYTES) or b"{}")
            except BodyError as exc:
                return self._json(exc.status, error_body(exc))
            try:
                return self._json(200, {"faults": self.emulator.inject_faults(faults)})
            except (ValueError, AttributeError) as exc:
                return self._json(400, {"error": "invalid_faults", "message": str(exc)})
        if method == "POST" and url.path in ("/_local/webpush/subscribe", "/_local/webpush/expire"):
            return self._webpush(url.path.rsplit("/", 1)[1])
        if method == "GET" and url.path == "/_local/executions":
            return self._json(200, {"executions": self.emulator.executions()})
        if method == "GET" and url.path == "/_local/profile":
            q = dict(parse_qsl(url.query))
            profile = self.emulator.profile(
                q.get("store", self.emulator.store.store_id), q.get("customer", "")
            )
            return self._json(200, profile) if profile else self._json(404, {"error": "not_found"})
        if method == "GET" and url.path == "/_local/history":
            q = dict(parse_qsl(url.query))
            return self._json(
                200,
                {
                    "history": self.emulator.history(
                        q.get("store", self.emulator.store.store_id), q.get("customer", "")
                    )
                },
            )
        if method == "GET" and url.path in ("/_local", "/_local/", "/_local/outbox.html"):
            return self._send(200, outbox_page().encode(), "text/html; charset=utf-8", OUTBOX_HEADERS)
        if match_route(method, url.path) is None:
            allowed = ", ".join(f"{m} {p}" for m, p in sorted(ROUTES))
            return self._json(404, {"success": False, "error": "not_found", "message": f"routes: {allowed}"})
        try:
            body = self.read_body(MAX_REQUEST_BYTES)
        except BodyError as exc:  # answered as API Gateway would, before the λ runs
            self.close_connection = True
            return self._json(exc.status, error_body(exc))
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

    def do_OPTIONS(self) -> None:  # CORS preflight (the signup form)
        self._dispatch("OPTIONS")


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
