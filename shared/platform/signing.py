"""Signed, expiring tokens for links in messages (one-click unsubscribe).

Format: ``<key id>.<payload>.<signature>``, both parts unpadded base64url, so a token is URL-safe
as is. The payload is compact JSON ``{"s": store_id, "c": customer_id, "ch": channel, "e":
expires_at}``; the signature is HMAC-SHA256 over ``<key id>.<payload>`` (the key id is signed too).
The payload is signed, not encrypted: anyone holding the link can read it, so it carries ids only,
never addresses or names.

Key rotation: the signing secret holds a key ring, ``{"current": "v3", "keys": {"v2": {"key":
"...", "since": 1767225600}, "v3": {...}}}``. New links are signed with the current key; a link
verifies with the key its id names, as long as that key is in the ring. A key leaves the ring
(retired) only once its successor has been current for a whole link lifetime, so every link signed
with it has expired by then. A secret that is a plain string is the ring's first key, ``v1`` (what
Boomerang stored before rotation existed), so links sent before keep working.
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

VERSION = "v1"  # the key id of a plain-string secret (the only key before rotation)
MAX_TOKEN_LENGTH = 2048
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_KEY_ID = re.compile(r"^v[1-9][0-9]{0,5}$")
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class KeyRing:
    """The keys links may be verified with, and the one new links are signed with."""

    current: str
    keys: dict[str, bytes]
    since: dict[str, float]  # key id -> when it became current (0 for a legacy plain key)

    @property
    def current_key(self) -> bytes:
        return self.keys[self.current]

    @staticmethod
    def parse(secret: str | bytes) -> KeyRing:
        """The ring in a secret's value; a plain (non-JSON) value is key v1."""
        text = secret.decode("utf-8") if isinstance(secret, bytes) else secret
        stripped = text.strip()
        if not stripped.startswith("{"):
            ring = KeyRing(VERSION, {VERSION: text.encode("utf-8")}, {VERSION: 0.0})
        else:
            try:
                data = json.loads(stripped)
                entries = data["keys"]
                ring = KeyRing(
                    str(data["current"]),
                    {str(k): str(v["key"]).encode("utf-8") for k, v in entries.items()},
                    {str(k): float(v.get("since", 0)) for k, v in entries.items()},
                )
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ValueError("signing secret is neither a key nor a key ring") from None
        for kid, key in ring.keys.items():
            if not _KEY_ID.match(kid):
                raise ValueError(f"signing key id {kid!r} is not of the form v<N>")
            if len(key) < MIN_KEY_BYTES:
                # never echo the secret; its length is enough to diagnose
                raise ValueError(f"signing key {kid} is {len(key)} bytes; at least {MIN_KEY_BYTES} required")
        if ring.current not in ring.keys:
            raise ValueError(f"the signing key ring's current key {ring.current!r} is not in it")
        return ring

    def dumps(self) -> str:
        return json.dumps(
            {
                "current": self.current,
                "keys": {
                    k: {"key": v.decode("utf-8"), "since": self.since.get(k, 0.0)}
                    for k, v in self.keys.items()
                },
            },
            sort_keys=True,
        )

    def rotated(self, new_key: str, now: float, link_lifetime_s: float) -> KeyRing:
        """A new current key; keys whose successor has been current for a link lifetime retire."""
        if len(new_key.encode("utf-8")) < MIN_KEY_BYTES:
            raise ValueError(f"a new signing key needs at least {MIN_KEY_BYTES} bytes")
        ids = sorted(self.keys, key=lambda k: int(k[1:]))
        new_id = f"v{int(ids[-1][1:]) + 1}"
        keys = {**self.keys, new_id: new_key.encode("utf-8")}
        since = {**self.since, new_id: now}
        order = [*ids, new_id]
        kept = {
            kid
            for kid, successor in zip(order, order[1:], strict=False)
            if now - since[successor] < link_lifetime_s  # links signed with kid may still be alive
        } | {new_id}
        return KeyRing(
            new_id, {k: keys[k] for k in order if k in kept}, {k: since[k] for k in order if k in kept}
        )


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
    if not _B64URL.fullmatch(text):
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


def sign(key: bytes | KeyRing, store_id: str, customer_id: str, channel: str, expires_at: float) -> str:
    """A token for these claims, valid until ``expires_at`` (epoch seconds, kept to the second),
    signed with the ring's current key (a bare key is key v1)."""
    key_id, key = (key.current, key.current_key) if isinstance(key, KeyRing) else (VERSION, key)
    for name, value in (("store_id", store_id), ("customer_id", customer_id), ("channel", channel)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    payload = {"s": store_id, "c": customer_id, "ch": channel, "e": int(expires_at)}
    body = _b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signed_part = f"{key_id}.{body}"
    token = f"{signed_part}.{_b64encode(_mac(key, signed_part))}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("claims too long for a token")
    return token


def verify(key: bytes | KeyRing, token: str, now: float) -> Claims:
    """The claims of a genuine, unexpired token signed with a key still in the ring; raises
    :class:`InvalidToken` otherwise (a retired key's token fails as "retired key")."""
    ring = key if isinstance(key, KeyRing) else KeyRing(VERSION, {VERSION: key}, {VERSION: 0.0})
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed")
    version, body, signature = parts
    if not _KEY_ID.fullmatch(version):
        raise InvalidToken("unsupported version")
    # Checked before the MAC: the signed part must be ASCII (a token like "v1.%C3%A9.AAAA" arrives
    # URL-decoded as "v1.é.AAAA"), and a bad link is a 403, never a crash.
    if not _B64URL.fullmatch(body):
        raise InvalidToken("malformed")
    if version not in ring.keys:
        raise InvalidToken("retired key")
    given = _b64decode(signature)
    expected = _mac(ring.keys[version], f"{version}.{body}")
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
    """The key ring from Secrets Manager, fetched on first use and cached for ``ttl`` seconds.

    The secret's SecretString is a key ring (or a plain key: v1). Caching keeps Secrets Manager off
    the hot path; the TTL lets a rotated secret reach warm containers, and since the previous key
    stays in the ring, a container still signing with it for a few minutes is harmless.
    """

    MIN_KEY_BYTES = MIN_KEY_BYTES

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
        self._ring: KeyRing | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def ring(self) -> KeyRing:
        with self._lock:
            now = self._clock()
            if self._ring is None or now - self._fetched_at >= self._ttl:
                self._ring = self._fetch()
                self._fetched_at = now
            return self._ring

    def key(self) -> bytes:
        """The current key (signing); verify with ring()."""
        return self.ring().current_key

    def _fetch(self) -> KeyRing:
        if not self._arn:
            raise ValueError("no signing secret configured")
        # explicit stage: what AWS returns by default, and what moto returns after a rotation
        response = self._client.get_secret_value(SecretId=self._arn, VersionStage="AWSCURRENT")
        secret = response.get("SecretString")
        value = secret if isinstance(secret, str) else bytes(response.get("SecretBinary", b""))
        if len(value) < self.MIN_KEY_BYTES:
            # Never echo the secret; its length is enough to diagnose.
            raise ValueError(f"signing secret is {len(value)} bytes; at least {self.MIN_KEY_BYTES} required")
        return KeyRing.parse(value)


# --- form tokens: proof that a POST was made from the page Boomerang served -------------------------
#
# A page's form carries ``<key id>.<expires_at>.<signature>``, the HMAC over the page's purpose, a
# digest of the link token the page was opened with and the expiry. So a form token works only on
# its own page, for its own customer link, for a short while; cross-site forms cannot read it.
_FORM_TOKEN = re.compile(r"(v[1-9][0-9]{0,5})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def _form_mac(key: bytes, key_id: str, purpose: str, link_token: str, expires_at: int) -> bytes:
    bound = hashlib.sha256(link_token.encode("utf-8", "surrogatepass")).hexdigest()
    # "form." keeps these MACs apart from link tokens' ("v1.<payload>") under the same key
    return _mac(key, f"form.{key_id}.{purpose}.{bound}.{expires_at}")


def form_token(ring: KeyRing, purpose: str, link_token: str, expires_at: float) -> str:
    """The token a page's form carries back, bound to ``purpose`` and the page's link token."""
    exp = int(expires_at)
    return f"{ring.current}.{exp}.{_b64encode(_form_mac(ring.current_key, ring.current, purpose, link_token, exp))}"


def verify_form_token(ring: KeyRing, token: str, purpose: str, link_token: str, now: float) -> None:
    """Raises :class:`InvalidToken` unless ``token`` was issued for this page and is unexpired."""
    found = _FORM_TOKEN.fullmatch(token) if isinstance(token, str) else None
    if found is None:
        raise InvalidToken("malformed")
    key_id, exp, signature = found.group(1), int(found.group(2)), found.group(3)
    if key_id not in ring.keys:
        raise InvalidToken("retired key")
    expected = _form_mac(ring.keys[key_id], key_id, purpose, link_token, exp)
    if not hmac.compare_digest(_b64decode(signature), expected):
        raise InvalidToken("bad signature")
    if now >= exp:
        raise InvalidToken("expired")
