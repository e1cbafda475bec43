"""Signed, expiring tokens for links in messages (one-click unsubscribe).

Format: ``v1.<payload>.<signature>``, both parts unpadded base64url, so a token is URL-safe as is.
The payload is compact JSON ``{"s": store_id, "c": customer_id, "ch": channel, "e": expires_at}``;
the signature is HMAC-SHA256 over ``v1.<payload>`` (the version is signed too, so a token cannot be
replayed under a future format). The payload is signed, not encrypted: anyone holding the link can
read it, so it carries ids only, never addresses or names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VERSION = "v1"
MAX_TOKEN_LENGTH = 2048
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class InvalidToken(Exception):
    """The token is malformed, forged, altered or expired. ``reason`` says which, for logs."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Claims:
    store_id: str
    customer_id: str
    channel: str
    expires_at: float


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise InvalidToken("malformed")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed") from None
    # Only the canonical encoding is accepted, so one claim set has exactly one valid token.
    if _b64encode(data) != text:
        raise InvalidToken("malformed")
    return data


def _mac(key: bytes, signed_part: str) -> bytes:
    if not key:
        raise ValueError("signing key is empty")
    return hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest()


def sign(key: bytes, store_id: str, customer_id: str, channel: str, expires_at: float) -> str:
    """A token for these claims, valid until ``expires_at`` (epoch seconds, kept to the second)."""
    for name, value in (("store_id", store_id), ("customer_id", customer_id), ("channel", channel)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    payload = {"s": store_id, "c": customer_id, "ch": channel, "e": int(expires_at)}
    body = _b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signed_part = f"{VERSION}.{body}"
    token = f"{signed_part}.{_b64encode(_mac(key, signed_part))}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("claims too long for a token")
    return token


def verify(key: bytes, token: str, now: float) -> Claims:
    """The claims of a genuine, unexpired token; raises :class:`InvalidToken` otherwise."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed")
    version, body, signature = parts
    if version != VERSION:
        raise InvalidToken("unsupported version")
    given = _b64decode(signature)
    expected = _mac(key, f"{version}.{body}")
    # Constant time, and before the payload is parsed: unauthenticated input is never interpreted.
    if not hmac.compare_digest(given, expected):
        raise InvalidToken("bad signature")
    try:
        payload: Any = json.loads(_b64decode(body).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidToken("malformed") from None
    if not isinstance(payload, dict):
        raise InvalidToken("malformed")
    fields = (payload.get("s"), payload.get("c"), payload.get("ch"))
    expires_at = payload.get("e")
    if not all(isinstance(f, str) and f for f in fields) or type(expires_at) is not int:
        raise InvalidToken("malformed")
    if now >= expires_at:
        raise InvalidToken("expired")
    store_id, customer_id, channel = (str(f) for f in fields)
    return Claims(store_id=store_id, customer_id=customer_id, channel=channel, expires_at=float(expires_at))


class SigningKeyProvider:
    """The HMAC key from Secrets Manager, fetched on first use and cached for ``ttl`` seconds.

    The secret's SecretString (UTF-8) is the key. Caching keeps Secrets Manager off the hot path;
    the TTL lets a rotated secret reach warm containers.
    """

    MIN_KEY_BYTES = 16

    def __init__(
        self,
        secrets_client: Any,
        secret_arn: str,
        ttl: float = 300,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = secrets_client
        self._arn = secret_arn
        self._ttl = ttl
        self._clock = clock
        self._key: bytes | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def key(self) -> bytes:
        with self._lock:
            now = self._clock()
            if self._key is None or now - self._fetched_at >= self._ttl:
                self._key = self._fetch()
                self._fetched_at = now
            return self._key

    def _fetch(self) -> bytes:
        if not self._arn:
            raise ValueError("no signing secret configured")
        response = self._client.get_secret_value(SecretId=self._arn)
        secret = response.get("SecretString")
        key = secret.encode("utf-8") if isinstance(secret, str) else response.get("SecretBinary", b"")
        if len(key) < self.MIN_KEY_BYTES:
            # Never echo the secret; its length is enough to diagnose.
            raise ValueError(f"signing secret is {len(key)} bytes; at least {self.MIN_KEY_BYTES} required")
        return bytes(key)
