from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from shared.platform.signing import Claims, InvalidToken, KeyRing, SigningKeyProvider, sign, verify

KEY = b"k" * 32
NOW = 1_800_000_000.0


def token(**overrides: Any) -> str:
    args: dict[str, Any] = {
        "key": KEY,
        "store_id": "shop-1",
        "customer_id": "u:42",
        "channel": "email",
        "expires_at": NOW + 3600,
    }
    args.update(overrides)
    return sign(**args)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip() -> None:
    assert verify(KEY, token(), NOW) == Claims("shop-1", "u:42", "email", NOW + 3600)


def test_token_is_versioned_and_url_safe() -> None:
    value = token(customer_id="a:ünïcode/+=?&")
    assert value.startswith("v1.")
    assert all(c.isalnum() or c in "._-" for c in value)
    assert verify(KEY, value, NOW).customer_id == "a:ünïcode/+=?&"


def test_altered_payload_is_rejected() -> None:
    version, _, signature = token().split(".")
    forged = b64(json.dumps({"s": "shop-1", "c": "u:43", "ch": "email", "e": int(NOW + 3600)}).encode())
    with pytest.raises(InvalidToken) as info:
        verify(KEY, f"{version}.{forged}.{signature}", NOW)
    assert info.value.reason == "bad signature"


def test_extended_expiry_is_rejected() -> None:
    version, _, signature = token(expires_at=NOW - 1).split(".")
    forged = b64(json.dumps({"s": "shop-1", "c": "u:42", "ch": "email", "e": int(NOW + 10**6)}).encode())
    with pytest.raises(InvalidToken):
        verify(KEY, f"{version}.{forged}.{signature}", NOW)


def test_altered_signature_is_rejected() -> None:
    version, payload, signature = token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(InvalidToken):
        verify(KEY, f"{version}.{payload}.{flipped}", NOW)


def test_other_key_is_rejected() -> None:
    with pytest.raises(InvalidToken):
        verify(b"x" * 32, token(), NOW)


def test_expired_is_rejected() -> None:
    value = token(expires_at=NOW + 10)
    assert verify(KEY, value, NOW + 9.9).store_id == "shop-1"
    with pytest.raises(InvalidToken) as info:
        verify(KEY, value, NOW + 10)
    assert info.value.reason == "expired"


def test_key_id_is_signed() -> None:
    _, payload, signature = token().split(".")
    with pytest.raises(InvalidToken, match="retired key"):
        verify(KEY, f"v2.{payload}.{signature}", NOW)
    # a ring that holds a v2 still refuses v1's signature under the v2 id
    ring = KeyRing("v2", {"v1": KEY, "v2": b"another-key-of-32-bytes-length!!"}, {"v1": 0, "v2": NOW})
    with pytest.raises(InvalidToken, match="bad signature"):
        verify(ring, f"v2.{payload}.{signature}", NOW)


@pytest.mark.parametrize(
    "value",
    ["", "v1", "v1..", "v1.a.b.c", "v1.!!!.abc", "not a token", "v1." + "A" * 5000 + ".x", "v1.e30.e30"],
)
def test_malformed_is_rejected(value: str) -> None:
    with pytest.raises(InvalidToken):
        verify(KEY, value, NOW)


@pytest.mark.parametrize(
    "value",
    [
        "v1.\u00e9.AAAA",  # ?t=v1.%C3%A9.AAAA, URL-decoded: a non-ASCII payload used to crash the MAC
        "v1.\ufffd.AAAA",  # non-UTF-8 bytes (%FF), decoded with replacement
        "v1.\udcff.AAAA",  # ... or with surrogateescape
        "v1.e30\n.AAAA",  # a trailing newline the old `$` let through
        "v1\n.e30.AAAA",
        "v1.e30.AAAA\n",
        "v1.e30.A",  # bad base64 (one leftover character)
        "v1.e30.\u00e9\u00e9",
        "v99.e30.AAAA",  # unknown key id
        "\u00e9.e30.AAAA",
    ],
)
def test_hostile_tokens_are_invalid_never_a_crash(value: str) -> None:
    with pytest.raises(InvalidToken):
        verify(KEY, value, NOW)


def test_signed_but_incomplete_payload_is_rejected() -> None:
    # A payload we never issue, signed with the right key, is still refused.
    body = b64(json.dumps({"s": "shop-1", "e": int(NOW + 60)}).encode())
    signature = b64(hmac.new(KEY, f"v1.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken, match="malformed"):
        verify(KEY, f"v1.{body}.{signature}", NOW)


def test_non_canonical_base64_is_rejected() -> None:
    version, payload, signature = token().split(".")
    # Flip the unused low bits of the last character: decodes to the same bytes, different text.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(signature[-1]) ^ 1]
    with pytest.raises(InvalidToken):
        verify(KEY, f"{version}.{payload}.{signature[:-1]}{last}", NOW)


@pytest.mark.parametrize("field", ["store_id", "customer_id", "channel"])
def test_sign_requires_every_claim(field: str) -> None:
    with pytest.raises(ValueError):
        token(**{field: ""})


def test_empty_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        token(key=b"")


# --- key provider ---------------------------------------------------------------------------------


class FakeSecrets:
    def __init__(self, value: str) -> None:
        self.value = value
        self.calls = 0

    def get_secret_value(self, SecretId: str, VersionStage: str = "AWSCURRENT") -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        return {"ARN": SecretId, "SecretString": self.value}


def test_key_provider_fetches_lazily_and_caches_for_ttl() -> None:
    now = [0.0]
    secrets = FakeSecrets("s" * 40)
    provider = SigningKeyProvider(
        secrets, "arn:aws:secretsmanager:us-east-1:1:secret:k", ttl=300, clock=lambda: now[0]
    )
    assert secrets.calls == 0  # nothing at construction (cold start)

    assert provider.key() == b"s" * 40
    now[0] = 299
    secrets.value = "r" * 40  # rotated
    assert provider.key() == b"s" * 40
    assert secrets.calls == 1

    now[0] = 300
    assert provider.key() == b"r" * 40
    assert secrets.calls == 2


def test_key_provider_refuses_a_short_secret() -> None:
    provider = SigningKeyProvider(FakeSecrets("short"), "arn:secret")
    with pytest.raises(ValueError, match="5 bytes") as info:
        provider.key()
    assert "short" not in str(info.value)


# -- key rotation ---------------------------------------------------------------------------------

LIFETIME = 400 * 86400.0
DAY = 86400.0


def test_a_plain_secret_is_key_v1_and_old_links_verify_after_rotation() -> None:
    # Given a link signed before rotation existed (the secret was a plain key)
    legacy = KeyRing.parse(KEY.decode())
    before = sign(legacy, "shop-1", "u:1", "email", NOW + LIFETIME)
    assert before.startswith("v1.") and before == token(customer_id="u:1", expires_at=NOW + LIFETIME)
    # When the key is rotated
    ring = KeyRing.parse(legacy.rotated("n" * 40, NOW, LIFETIME).dumps())
    # Then new links are signed with v2, and both verify
    after = sign(ring, "shop-1", "u:1", "email", NOW + LIFETIME)
    assert after.startswith("v2.")
    assert verify(ring, before, NOW + DAY).customer_id == "u:1"
    assert verify(ring, after, NOW + DAY).customer_id == "u:1"


def test_a_key_retires_only_after_a_whole_link_lifetime_under_its_successor() -> None:
    ring = KeyRing.parse(KEY.decode())
    old_link = sign(ring, "shop-1", "u:1", "email", NOW + LIFETIME)
    ring = ring.rotated("a" * 40, NOW, LIFETIME)  # v2 current from NOW
    ring = ring.rotated("b" * 40, NOW + 90 * DAY, LIFETIME)  # v3: v1's link may still live: kept
    assert sorted(ring.keys) == ["v1", "v2", "v3"]
    assert verify(ring, old_link, NOW + 91 * DAY).store_id == "shop-1"
    ring = ring.rotated("c" * 40, NOW + LIFETIME, LIFETIME)  # v2 current for a lifetime: v1 retires
    assert sorted(ring.keys) == ["v2", "v3", "v4"] and ring.current == "v4"
    with pytest.raises(InvalidToken) as info:
        verify(ring, old_link, NOW + LIFETIME - 1)
    assert info.value.reason == "retired key"


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("short", "at least 16"),
        ('{"current": "v9", "keys": {"v1": {"key": "' + "k" * 20 + '"}}}', "not in it"),
        ('{"current": "x1", "keys": {"x1": {"key": "' + "k" * 20 + '"}}}', "v<N>"),
        ('{"keys": 1}', "neither a key nor a key ring"),
    ],
)
def test_a_bad_key_ring_is_named(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        KeyRing.parse(secret)
