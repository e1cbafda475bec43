"""Each store's VAPID key pair (RFC 8292), derived from one root secret kept in Secrets Manager.

Why derived: stores are data added after deploy (`boomerang stores add`), so a key pair per store
cannot be created by the deploy itself, and a send path that created secrets would race and need
write permissions. Instead the deploy generates one random root secret (Secrets Manager's own
generator, RETAINed) and every store's P-256 private key is HKDF-SHA256(root, info=store id),
reduced into [1, n-1] as in FIPS 186-5 A.2.1: distinct per store, stable across cold starts and
regions, and nothing to write. Rotating the root would orphan every browser subscription (they are
bound to the public key), so it is never rotated.

The provider caches the root for ``ttl_seconds`` and the derived keys per store (lock-guarded), so
a send costs no Secrets Manager call after the first.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.platform.lru import Lru

# the order of P-256's base point
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SALT = b"boomerang/vapid/v1"
MIN_ROOT_BYTES = 32


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; ValueError on anything else (binascii.Error is one)."""
    if not isinstance(text, str) or any(c in text for c in "+/ \n"):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeyPair:
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_bytes(self) -> bytes:
        """The uncompressed point (65 bytes): what a browser's `applicationServerKey` takes."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @property
    def public_key(self) -> str:
        return b64url(self.public_bytes)


def derive(root: bytes, store_id: str) -> VapidKeyPair:
    """The store's key pair from the root secret (see the module docstring)."""
    if len(root) < MIN_ROOT_BYTES:
        raise ValueError(f"VAPID root secret is {len(root)} bytes; at least {MIN_ROOT_BYTES} required")
    okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=_SALT, info=store_id.encode()).derive(root)
    scalar = int.from_bytes(okm, "big") % (_N - 1) + 1
    return VapidKeyPair(ec.derive_private_key(scalar, ec.SECP256R1()))


class VapidKeys:
    """Per-store VAPID key pairs from the root secret in Secrets Manager, cached."""

    def __init__(
        self,
        secretsmanager: Any,
        secret_arn: str,
        ttl_seconds: float = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sm, self._arn, self._ttl, self._clock = secretsmanager, secret_arn, ttl_seconds, clock
        self._root: bytes | None = None
        self._fetched_at = 0.0
        # one pair per store this container served; bounded like every cache (shared/platform/lru.py)
        self._pairs: Lru[str, VapidKeyPair] = Lru(256)
        self._lock = threading.Lock()

    def for_store(self, store_id: str) -> VapidKeyPair:
        with self._lock:
            now = self._clock()
            if self._root is None or now - self._fetched_at >= self._ttl:
                root = self._fetch()
                if root != self._root:
                    self._pairs.clear()
                self._root, self._fetched_at = root, now
            pair = self._pairs.get(store_id)
            if pair is None:
                pair = derive(self._root, store_id)
                self._pairs[store_id] = pair
            return pair

    def _fetch(self) -> bytes:
        if not self._arn:
            raise ValueError("no VAPID secret configured (VAPID_SECRET_ARN)")
        response = self._sm.get_secret_value(SecretId=self._arn, VersionStage="AWSCURRENT")
        secret = response.get("SecretString")
        return secret.encode() if isinstance(secret, str) else bytes(response.get("SecretBinary", b""))
