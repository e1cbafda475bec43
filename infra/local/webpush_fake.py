"""A local push service (RFC 8030) with fake browsers, for the emulator and tests: no internet.

Real browsers subscribe at their vendor's push service (Mozilla autopush, FCM, Apple) and hold the
private half of the subscription's keys; Boomerang only ever sees the endpoint URL and the public
keys. This stand-in plays both parts on loopback, over HTTPS (a self-signed certificate made at
start; the sender trusts it through WEBPUSH_CA_BUNDLE, so endpoints stay https like real ones):

- ``subscribe(application_server_key)`` is a fake browser's ``PushManager.subscribe()``: it makes a
  P-256 key pair and a 16-byte auth secret, remembers the store's VAPID public key the subscription
  is bound to, and returns ``PushSubscription.toJSON()``.
- ``POST /wpush/<id>`` is the push message request, checked as push services check it:
  unknown endpoint 404; expired 410 (``expire()``); throttled 429 with ``Retry-After``
  (``throttle_requests()``); no ``TTL`` header 400; an ``Urgency`` outside RFC 8030's four 400;
  ``Content-Encoding`` other than aes128gcm 415; a body over 4096 bytes 413; a missing or bad VAPID
  ``Authorization: vapid t=<JWT>, k=<key>`` 401 (ES256 signature checked against ``k``; ``aud``
  must be the endpoint's origin, ``exp`` in the future and at most 24 h away, ``sub`` a mailto: or
  https: contact); ``k`` other than the key the browser subscribed with 403; a body the browser
  cannot decrypt (RFC 8291 with its private key and auth secret) 400. Otherwise 201 Created with
  ``Location: <url>/m/<id>``, and the decrypted notification is kept for the outbox.

Thread-safe; request bodies are bounded, so a malformed request never blocks the server.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import secrets
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from shared.platform.vapid import b64url, b64url_decode

MAX_BODY = 4096  # RFC 8030 §7.2: what a push service must accept
MAX_EXP_S = 24 * 3600  # RFC 8292 §2: exp no more than 24 hours from the request
_PATH = re.compile(r"^/wpush/(?P<id>[A-Za-z0-9_-]{8,64})$")
_URGENCIES = frozenset({"very-low", "low", "normal", "high"})


class _Browser:
    def __init__(self, server_key: str, label: str) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.auth = secrets.token_bytes(16)
        self.server_key = server_key  # the applicationServerKey (VAPID public key) it subscribed with
        self.label = label
        self.status = 201  # 410 once expired

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )


class PushServiceFake:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._browsers: dict[str, _Browser] = {}
        self._messages: list[dict[str, Any]] = []
        self._throttle: list[int] = []  # Retry-After seconds of the next throttled requests
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="boomerang-webpush-")
        self.ca_file = str(Path(self._dir.name) / "push-service.pem")
        self.url = ""
        self.requests = 0

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> PushServiceFake:
        fake = self

        class Handler(_Handler):
            owner = fake

        server = ThreadingHTTPServer((self._host, self._port), Handler)
        server.daemon_threads = True
        key_file = self._certificate()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.url = f"https://{self._host}:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, name="webpush-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._dir.cleanup()

    def _certificate(self) -> str:
        """A self-signed certificate for the loopback address; the sender trusts exactly this one."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "boomerang local push service")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(self._host))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        Path(self.ca_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = Path(self._dir.name) / "push-service.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return str(key_file)

    # --- the fake browsers ---------------------------------------------------------------------------

    def subscribe(self, application_server_key: str, label: str = "Firefox on Linux") -> dict[str, Any]:
        """A fake browser subscribes with the store's VAPID public key: its PushSubscription.toJSON()."""
        b64url_decode(application_server_key)  # a browser refuses a key that is not base64url
        browser = _Browser(application_server_key, label)
        sub_id = secrets.token_urlsafe(24)
        with self._lock:
            self._browsers[sub_id] = browser
        return {
            "endpoint": f"{self.url}/wpush/{sub_id}",
            "expirationTime": None,
            "keys": {"p256dh": browser.p256dh, "auth": b64url(browser.auth)},
        }

    def expire(self, endpoint: str, status: int = 410) -> None:
        """The browser dropped the subscription: 410 Gone from now on (404: forgotten entirely)."""
        sub_id = endpoint.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            if status == 404:
                self._browsers.pop(sub_id, None)
            elif sub_id in self._browsers:
                self._browsers[sub_id].status = 410

    def throttle_requests(self, n: int, retry_after: int = 30) -> None:
        with self._lock:
            self._throttle.extend([retry_after] * n)

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages]

    # --- a push message request ----------------------------------------------------------------------

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], str]:
        """Status, response headers and a short reason for one POST (see the module docstring)."""
        with self._lock:
            self.requests += 1
            match = _PATH.match(path)
            browser = self._browsers.get(match["id"]) if match else None
            if browser is None:
                return 404, {}, "no such subscription"
            if browser.status == 410:
                return 410, {}, "subscription expired"
            if self._throttle:
                return 429, {"Retry-After": str(self._throttle.pop(0))}, "too many requests"
        h = {k.lower(): v for k, v in headers.items()}
        if not h.get("ttl", "").isdigit():
            return 400, {}, "TTL header missing or not a number of seconds"
        if h.get("urgency", "normal") not in _URGENCIES:
            return 400, {}, "Urgency must be very-low, low, normal or high"
        if h.get("content-encoding") != "aes128gcm":
            return 415, {}, "Content-Encoding must be aes128gcm (RFC 8291)"
        if len(body) > MAX_BODY:
            return 413, {}, f"payload over {MAX_BODY} bytes"
        problem, key = _check_vapid(h.get("authorization", ""), f"{self.url}")
        if problem:
            return 401, {}, problem
        if key != browser.server_key:
            return 403, {}, "VAPID key is not the one this subscription was created with"
        try:
            import http_ece

            plain = http_ece.decrypt(
                body, private_key=browser.private, auth_secret=browser.auth, version="aes128gcm"
            )
        except Exception:  # any failure to decrypt is the sender's
            return 400, {}, "payload does not decrypt with the subscription's keys"
        message_id = f"{self.url}/m/{secrets.token_urlsafe(12)}"
        try:
            notification = json.loads(plain)
        except ValueError:
            notification = {"body": plain.decode("utf-8", "replace")}
        with self._lock:
            self._messages.append(
                {
                    "message_id": message_id,
                    "endpoint": f"{self.url}{path}",
                    "browser": browser.label,
                    "ttl": int(h["ttl"]),
                    "urgency": h.get("urgency", "normal"),
                    "notification": notification,
                    "at": time.time(),
                }
            )
        return 201, {"Location": message_id}, "created"


def _check_vapid(authorization: str, origin: str) -> tuple[str | None, str]:
    """RFC 8292 §3: ``vapid t=<JWT>, k=<public key>``; a problem (or None) and the key."""
    params = dict(
        part.strip().split("=", 1) for part in authorization.removeprefix("vapid ").split(",") if "=" in part
    )
    if not authorization.startswith("vapid ") or "t" not in params or "k" not in params:
        return "Authorization must be 'vapid t=<JWT>, k=<key>'", ""
    token, key = params["t"], params["k"]
    try:
        head_b64, claims_b64, sig_b64 = token.split(".")
        header, claims = json.loads(b64url_decode(head_b64)), json.loads(b64url_decode(claims_b64))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        sig = b64url_decode(sig_b64)
    except (ValueError, TypeError):
        return "VAPID token or key is malformed", key
    if header.get("alg") != "ES256" or len(sig) != 64:
        return "VAPID token must be signed with ES256", key
    try:
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "VAPID signature does not verify with the key in k=", key
    parts = urlsplit(origin)
    if claims.get("aud") != f"{parts.scheme}://{parts.netloc}":
        return f"VAPID aud must be {parts.scheme}://{parts.netloc}", key
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= time.time() or exp > time.time() + MAX_EXP_S:
        return "VAPID exp must be in the future and at most 24 hours away", key
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        return "VAPID sub must be a mailto: or https: contact", key
    return None, key


class _Handler(BaseHTTPRequestHandler):
    owner: PushServiceFake
    protocol_version = "HTTP/1.1"
    timeout = 10  # a body shorter than its Content-Length times out instead of holding a thread
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (delayed ACK)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # endpoints address browsers: keep them out of the terminal

    def _answer(self, status: int, headers: dict[str, str], reason: str) -> None:
        raw = reason.encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length_header = self.headers.get("Content-Length") or "0"
        if not length_header.isdigit():
            self.close_connection = True
            self._answer(400, {}, "Content-Length must be a number")
            return
        length = int(length_header)
        if length > MAX_BODY * 2:
            self.close_connection = True  # the body is not read: this connection cannot be reused
            self._answer(413, {}, f"payload over {MAX_BODY} bytes")
            return
        body = self.rfile.read(length) if length else b""
        status, headers, reason = self.owner.receive(self.path, dict(self.headers.items()), body)
        self._answer(status, headers, reason)

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._answer(405, {"Allow": "POST"}, "push services take POST only")

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed
