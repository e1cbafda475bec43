"""Faults the local emulator can inject into the AWS calls its λs make, to test what a faulty cloud
does to Boomerang (tests/e2e/test_faults.py):

- `throttle`: {"rate": 0.2, "services": ["dynamodb", "sesv2", "sns"]}: that share of the calls to
  those services is refused as the service refuses an over-limit caller (DynamoDB
  ThrottlingException, SES TooManyRequestsException "Maximum sending rate exceeded", SNS
  Throttling), each attempt drawn afresh, so the SDK's own retries see it too. SES and SNS: only
  the sends (SendEmail, Publish); DynamoDB: every operation.
- `ses_quota`: {"max_24h": N}: SES's daily sending quota, a rolling 24 hours on Boomerang's clock;
  the send past it is refused with ThrottlingException "Daily message quota exceeded." as SES does
  (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html). `null` lifts it.
- `kill_after_claim`: N: the next N journey steps die the way a λ timeout kills them, after claiming
  their send and before handing the message to the provider (the hand-off write of
  shared/services/journeys/claim.py). Lambda answers Sandbox.Timedout; Step Functions retries.

The faults are answers from the service, injected at botocore's `before-send` (the request never
leaves), so the λ code and the SDK handle exactly what they would get from AWS.
"""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

SERVICES = ("dynamodb", "sesv2", "sns")
_SENDS = {"sesv2": "SendEmail", "sns": "Publish"}
DAY_S = 24 * 3600


class StepKilled(BaseException):
    """The λ's runtime stopping it: no `except Exception` of Boomerang's runs (BaseException)."""

    error_type = "Sandbox.Timedout"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _response(url: str, status: int, headers: dict[str, str], body: bytes) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(url, status, headers, _Raw(body))  # type: ignore[arg-type]


def refusal(service: str, url: str, code: str, message: str) -> Any:
    """What the service answers when it refuses a request, in its own protocol."""
    if service == "dynamodb":  # JSON 1.0
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
        return _response(url, 400, {"x-amzn-RequestId": "fault"}, body.encode())
    if service == "sns":  # query protocol, XML errors
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            "</Error><RequestId>fault</RequestId></ErrorResponse>"
        )
        return _response(url, 400, {"x-amzn-RequestId": "fault"}, xml.encode())
    # SES v2: REST-JSON, the code in a header
    status = 429 if code == "TooManyRequestsException" else 400
    headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": "fault"}
    return _response(url, status, headers, json.dumps({"message": message}).encode())


class Faults:
    def __init__(self, now: Callable[[], float], seed: int | None = None) -> None:
        self._now = now
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.rate = 0.0
        self.services: frozenset[str] = frozenset()
        self.max_24h: int | None = None
        self._sent: deque[float] = deque()  # SES sends in the rolling day, Boomerang time
        self.kills = 0
        self.injected: dict[str, int] = {"throttled": 0, "quota": 0, "killed": 0}

    # -- configuration (POST /_local/faults) -------------------------------------------------------
    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validate all, then apply all; raises ValueError naming the field and what is allowed."""
        rate, services, max_24h, kills = self.rate, self.services, self.max_24h, self.kills
        if "throttle" in body:
            t = body["throttle"]
            if not isinstance(t, dict) or set(t) - {"rate", "services"}:
                raise ValueError('throttle: {"rate": 0..1, "services": [...]} expected')
            r = t.get("rate", 0)
            if isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r <= 1:
                raise ValueError("throttle.rate: a number from 0 to 1")
            s = t.get("services", list(SERVICES))
            if not isinstance(s, list) or not set(s) <= set(SERVICES):
                raise ValueError(f"throttle.services: a list of {', '.join(SERVICES)}")
            rate, services = float(r), frozenset(s)
        if "ses_quota" in body:
            q = body["ses_quota"]
            m = q.get("max_24h") if isinstance(q, dict) else "?"
            if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
                raise ValueError('ses_quota: {"max_24h": a whole number >= 0, or null to lift it}')
            max_24h = m
        if "kill_after_claim" in body:
            k = body["kill_after_claim"]
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise ValueError("kill_after_claim: a whole number >= 0")
            kills = k
        with self._lock:
            self.rate, self.services, self.max_24h, self.kills = rate, services, max_24h, kills
        return self.state()

    def state(self) -> dict[str, Any]:
        with self._lock:
            self._age_out()
            return {
                "throttle": {"rate": self.rate, "services": sorted(self.services)},
                "ses_quota": {"max_24h": self.max_24h, "sent_24h": len(self._sent)},
                "kill_after_claim": self.kills,
                "injected": dict(self.injected),
            }

    # -- the hook ----------------------------------------------------------------------------------
    def install(self) -> None:
        """On the default boto3 session, which every client the λs build comes from (lazily, after this)."""
        import boto3

        boto3._get_default_session().events.register("before-send", self.before_send)

    def before_send(self, request: Any, event_name: str = "", **kwargs: Any) -> Any:
        service, _, operation = event_name.partition(".")[2].partition(".")
        if service not in SERVICES:
            return None
        with self._lock:
            if (
                service == "dynamodb"
                and self.kills > 0
                and operation == "UpdateItem"
                and b'"handed-off"' in (request.body or b"")
            ):
                self.kills -= 1
                self.injected["killed"] += 1
                raise StepKilled("the step λ was stopped after claiming its send")
            if service in self.services and (service == "dynamodb" or _SENDS[service] == operation):
                if self._random.random() < self.rate:
                    self.injected["throttled"] += 1
                    code, message = {
                        "dynamodb": (
                            "ThrottlingException",
                            "Rate of requests exceeds the allowed throughput.",
                        ),
                        "sesv2": ("TooManyRequestsException", "Maximum sending rate exceeded."),
                        "sns": ("Throttling", "Rate exceeded"),
                    }[service]
                    return refusal(service, request.url, code, message)
            if service == "sesv2" and operation == "SendEmail" and self.max_24h is not None:
                self._age_out()
                if len(self._sent) >= self.max_24h:
                    self.injected["quota"] += 1
                    return refusal(
                        service, request.url, "ThrottlingException", "Daily message quota exceeded."
                    )
            if service == "sesv2" and operation == "SendEmail":
                self._sent.append(self._now())  # counted as SES counts: every accepted send
        return None

    def _age_out(self) -> None:
        now = self._now()
        while self._sent and self._sent[0] <= now - DAY_S:
            self._sent.popleft()
