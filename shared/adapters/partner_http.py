"""The HTTP side of fulfilment partners: their secrets, OAuth tokens, and one request.

- `PartnerSecrets`: one Secrets Manager secret per partner (JSON: api_key, password, client_secret,
  signing_secret), cached for a few minutes so a rotation shows up without a redeploy.
- `post`: one HTTPS POST with a timeout, never retried here (the forwarder owns the schedule: a
  retry inside the call could hide an attempt from the order's record). Answers are returned, not
  raised; "no answer" is status None.
- `OAuthTokens`: client-credentials tokens, cached until shortly before they expire.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.domain.partners import Auth, secret_name
from shared.platform.lru import Lru

SECRET_TTL_SECONDS = 300
USER_AGENT = "Boomerang-Fulfilment/1"


class PartnerSecretMissing(Exception):
    """The partner's secret is not set, or lacks a value its auth needs (a setup mistake)."""


class PartnerSecrets:
    def __init__(self, secretsmanager: Any, ttl_seconds: float = SECRET_TTL_SECONDS) -> None:
        self._sm = secretsmanager
        self._ttl = ttl_seconds
        self._cache: Lru[str, tuple[float, dict[str, str]]] = Lru(256)  # one secret per (store, partner)
        self._lock = threading.Lock()

    def get(self, store_id: str, partner_id: str, needed: tuple[str, ...]) -> dict[str, str]:
        name = secret_name(store_id, partner_id)
        with self._lock:
            hit = self._cache.get(name)
        if hit is None or time.monotonic() - hit[0] > self._ttl:
            try:
                raw = self._sm.get_secret_value(SecretId=name)["SecretString"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    raise PartnerSecretMissing(f"secret {name} is not set") from exc
                raise
            values = json.loads(raw) if raw.strip().startswith("{") else {}
            hit = (time.monotonic(), {k: str(v) for k, v in values.items()})
            with self._lock:
                self._cache[name] = hit
        missing = [k for k in needed if not hit[1].get(k)]
        if missing:
            raise PartnerSecretMissing(f"secret {name} has no {', '.join(missing)}")
        return hit[1]


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (timeout, refused, DNS)
    body: str
    retry_after: float | None
    ms: int
    error: str | None = None


def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers}
    )
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (https, or loopback)
            return Answer(resp.status, resp.read(4096).decode("utf-8", "replace"), None, took())
    except urllib.error.HTTPError as exc:
        text = exc.read(4096).decode("utf-8", "replace") if exc.fp else ""
        return Answer(exc.code, text, _retry_after(exc.headers.get("Retry-After")), took())
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(None, "", None, took(), error=f"{type(reason).__name__}: {reason}"[:200])


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: our own back-off applies


class OAuthTokens:
    def __init__(self) -> None:
        self._tokens: Lru[tuple[str, str], tuple[float, str]] = Lru(64)  # one per partner token endpoint
        self._lock = threading.Lock()

    def token(self, auth: Auth, client_secret: str, timeout: float) -> str | None:
        """A bearer token, or None when the token endpoint did not give one (retried later)."""
        assert auth.token_url and auth.client_id
        cache_key = (auth.token_url, auth.client_id)
        with self._lock:
            hit = self._tokens.get(cache_key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        form = {"grant_type": "client_credentials", **({"scope": auth.scope} if auth.scope else {})}
        basic = base64.b64encode(f"{auth.client_id}:{client_secret}".encode()).decode()
        answer = post(
            auth.token_url,
            {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
            urllib.parse.urlencode(form).encode(),
            timeout,
        )
        if answer.status != 200:
            return None
        try:
            data = json.loads(answer.body)
            token = str(data["access_token"])
        except (ValueError, KeyError, TypeError):
            return None
        lifetime = float(data.get("expires_in") or 3600)
        with self._lock:
            self._tokens[cache_key] = (time.monotonic() + max(0.0, lifetime - 60), token)
        return token


def auth_headers(
    auth: Auth, secret: dict[str, str], tokens: OAuthTokens, timeout: float
) -> dict[str, str] | None:
    """The authentication headers for a partner; None when an OAuth token could not be had."""
    if auth.type == "api_key":
        return {auth.header: secret["api_key"]}
    if auth.type == "basic":
        basic = base64.b64encode(f"{auth.username}:{secret['password']}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    if auth.type == "oauth_client_credentials":
        token = tokens.token(auth, secret["client_secret"], timeout)
        return None if token is None else {"Authorization": f"Bearer {token}"}
    return {}
