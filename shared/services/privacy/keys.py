"""Rotating the key ring that signs unsubscribe, preferences and confirmation links.

Secrets Manager's rotation protocol (the key_rotation λ on the schedule, `boomerang keys rotate` by
hand): createSecret stages a new ring (a new current key, keys still needed kept) as AWSPENDING,
testSecret signs and verifies with it, finishSecret makes it AWSCURRENT. Every step may run again
(Secrets Manager retries): each checks what is already done. Warm functions pick the new ring up
within their cache's 5 minutes; links signed meanwhile with the previous key stay valid, since
it stays in the ring for a whole link lifetime.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from shared.platform import clock, signing
from shared.services.consent.unsubscribe import LINK_LIFETIME_S

KEY_LENGTH = 64  # characters of URL-safe randomness: 384 bits


def _ring(sm: Any, secret_id: str, **version: str) -> signing.KeyRing:
    value = sm.get_secret_value(SecretId=secret_id, **version)
    return signing.KeyRing.parse(value.get("SecretString") or bytes(value.get("SecretBinary", b"")))


def rotation_step(sm: Any, secret_id: str, token: str, step: str) -> str:
    """One step of Secrets Manager's rotation; returns what it did (no key material)."""
    if step == "createSecret":
        try:
            _ring(sm, secret_id, VersionId=token, VersionStage="AWSPENDING")
            return "pending ring already staged"
        except sm.exceptions.ResourceNotFoundException:
            pass
        current = _ring(sm, secret_id, VersionStage="AWSCURRENT")
        ring = current.rotated(secrets.token_urlsafe(48)[:KEY_LENGTH], clock.now_ts(), LINK_LIFETIME_S)
        sm.put_secret_value(
            SecretId=secret_id,
            ClientRequestToken=token,
            SecretString=ring.dumps(),
            VersionStages=["AWSPENDING"],
        )
        return f"staged {ring.current}; keeps {','.join(sorted(ring.keys))}"
    if step == "setSecret":
        return "nothing to set: only Boomerang uses the key"
    if step == "testSecret":
        ring = _ring(sm, secret_id, VersionId=token, VersionStage="AWSPENDING")
        now = clock.now_ts()
        signing.verify(ring, signing.sign(ring, "rotation-test", "u:test", "email", now + 60), now)
        return f"{ring.current} signs and verifies"
    if step == "finishSecret":
        versions = sm.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
        live = next((v for v, stages in versions.items() if "AWSCURRENT" in stages), None)
        if live == token:
            return "already current"
        sm.update_secret_version_stage(
            SecretId=secret_id, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=live
        )
        return "made current"
    raise ValueError(
        f"unknown rotation step {step!r}; expected createSecret, setSecret, testSecret, finishSecret"
    )


def rotate_now(sm: Any, secret_id: str) -> signing.KeyRing:
    """All four steps at once (the CLI): returns the new ring (print its key ids, never its keys)."""
    token = str(uuid.uuid4())
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        rotation_step(sm, secret_id, token, step)
    return _ring(sm, secret_id, VersionStage="AWSCURRENT")
