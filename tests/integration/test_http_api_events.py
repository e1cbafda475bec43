"""The ingest λ behind an HTTP API (the default deploy): payload format 1.0 events, shaped as AWS
documents them ("Create AWS Lambda proxy integrations for HTTP APIs", the 1.0 example), through the
real handler on moto.

An HTTP API has no binaryMediaTypes: it hands the λ text/*, application/json, application/xml and
application/javascript bodies as UTF-8 text and every other body (or one without a Content-Type, or a
form post) base64-encoded. Either way the λ must read the same bytes: a batch, a gzip'd batch, a
signed webhook and the signup form answer exactly as they do behind the REST API (always base64).
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from functions.ingest.handler import handler
from infra.local.server import proxy_event
from shared.adapters.form_keys import FormKeys
from shared.adapters.store_directory import StoreDirectory
from shared.domain.forms import FormConfig
from shared.domain.webhooks import signature
from shared.platform.aws import client
from tests.aws_fixtures import API_KEY, LambdaContext, World, basic_auth
from tests.events import load_event
from tests.integration.test_ingest_handler import failing_put_events
from tests.integration.test_signup_form import FORM, ORIGIN
from tests.integration.test_signup_form import body as form_body
from tests.integration.test_webhooks import SHOPIFY_SECRET

API_ID = "a1b2c3d4e5"


def http_api_event(
    method: str,
    resource: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    *,
    as_base64: bool,
    ip: str = "198.51.100.23",
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API payload format 1.0 event, field for field as AWS documents it: a version, no stage
    in any path ($default), header names in lower case, requestContext with apiId and identity."""
    headers = {k.lower(): v for k, v in headers.items()}
    return {
        "version": "1.0",
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "authorizer": {"claims": None, "scopes": None},
            "domainName": f"{API_ID}.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": API_ID,
            "extendedRequestId": "Fz3k8gSxoAMEb2A=",
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": ip,
                "user": None,
                "userAgent": headers.get("user-agent", "analytics-node/2.1"),
                "userArn": None,
            },
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": "Fz3k8gSxoAMEb2A=",
            "requestTime": "03/Dec/2026:18:30:00 +0000",
            "requestTimeEpoch": 1796322600000,
            "resourceId": None,
            "resourcePath": resource,
            "stage": "$default",
        },
        "pathParameters": path_parameters,
        "stageVariables": None,
        "body": None if body is None else base64.b64encode(body).decode() if as_base64 else body.decode(),
        "isBase64Encoded": as_base64 and body is not None,
    }


def answer(event: dict[str, Any], ctx: LambdaContext) -> tuple[int, dict[str, str], Any]:
    result = handler(event, ctx)
    headers = {k.lower(): ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update({k.lower(): v for k, v in (result.get("headers") or {}).items()})
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    return result["statusCode"], headers, json.loads(data) if data else None


def batch(body: bytes, *, as_base64: bool, **headers: str) -> dict[str, Any]:
    return http_api_event(
        "POST", "/v1/batch", "/v1/batch", {**basic_auth(API_KEY), **headers}, body, as_base64=as_base64
    )


# --- the emulator's event is the one an HTTP API sends ------------------------------------------------


def test_the_emulator_builds_the_http_api_payload_1_0_event() -> None:
    documented = http_api_event("POST", "/v1/batch", "/v1/batch", {}, b"{}", as_base64=False)

    def event(ctype: str | None, body: bytes = b"{}", api: str = "http") -> dict[str, Any]:
        headers = {"Content-Type": ctype} if ctype else {}
        return proxy_event("POST", "/v1/batch", "", headers, body, api=api)

    local = event("application/json")
    assert set(local) <= set(documented) and set(local["requestContext"]) <= set(documented["requestContext"])
    assert local["version"] == "1.0"
    assert (local["path"], local["requestContext"]["path"], local["requestContext"]["stage"]) == (
        "/v1/batch",
        "/v1/batch",
        "$default",
    )
    # text types as text; everything else, no Content-Type and form posts included, base64
    assert (local["body"], local["isBase64Encoded"]) == ("{}", False)
    assert event("text/plain;charset=UTF-8")["isBase64Encoded"] is False
    for binary in ("application/octet-stream", "application/x-www-form-urlencoded", None):
        assert event(binary)["isBase64Encoded"] is True, binary
    # compressed bytes cannot be text: base64 whatever the Content-Type says
    assert event("application/json", gzip.compress(b"{}"))["isBase64Encoded"] is True
    # the REST choice: every body base64 (binaryMediaTypes */*), the stage in requestContext.path
    rest = event("application/json", api="rest")
    assert rest["isBase64Encoded"] is True and rest["requestContext"]["path"] == "/prod/v1/batch"
    assert "version" not in rest


# --- batches: text, base64 and gzip read the same -----------------------------------------------------


def test_a_batch_as_text_or_base64_is_accepted_the_same(world: World, ctx: LambdaContext) -> None:
    sample = load_event("batch_cart_abandon")
    raw = json.dumps(sample, ensure_ascii=False).encode()
    ids = [c["messageId"] for c in sample["batch"]]
    as_text = answer(batch(raw, as_base64=False, **{"Content-Type": "application/json"}), ctx)
    assert as_text[::2] == (200, {"success": True, "accepted": 4})
    as_b64 = answer(batch(raw, as_base64=True), ctx)  # e.g. sent without a Content-Type
    assert as_b64[::2] == as_text[::2]
    published = world.published("profile")
    assert [e["detail"]["message_id"] for e in published] == ids + ids  # the same events, twice
    details = [{k: v for k, v in e["detail"].items() if k != "received_at"} for e in published]
    assert details[:4] == details[4:]  # byte for byte the same calls


def test_a_gzip_batch_reaches_the_λ_base64_and_is_accepted(world: World, ctx: LambdaContext) -> None:
    sample = load_event("batch_cart_abandon")
    packed = gzip.compress(json.dumps(sample).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _, body = answer(batch(packed, as_base64=True, **headers), ctx)
    assert (status, body) == (200, {"success": True, "accepted": 4})
    assert len(world.published("profile")) == 4


def test_a_compressed_body_altered_into_text_is_a_clear_400(world: World, ctx: LambdaContext) -> None:
    # a gzip stream is never UTF-8: decoded as text on the way, its bytes are gone for good
    mangled = gzip.compress(b'{"batch": []}').decode("utf-8", errors="replace").encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _, body = answer(batch(mangled, as_base64=False, **headers), ctx)
    assert (status, body["error"]) == (400, "malformed_body")
    assert "application/octet-stream" in body["message"]
    assert world.published("profile") == []


# --- a signed webhook verifies over the same bytes either way ----------------------------------------


@pytest.mark.parametrize("as_base64", [False, True], ids=["text", "base64"])
def test_a_signed_webhook_verifies_as_text_or_base64(
    world: World, ctx: LambdaContext, as_base64: bool
) -> None:
    StoreDirectory(client("dynamodb"), world.table).set_webhook_secret("shop-1", "shopify", SHOPIFY_SECRET)
    order = load_event("shopify/checkouts_create")
    order["note"] = "Zoë’s gift — ☃"  # non-ASCII: the HMAC is over the UTF-8 bytes sent
    raw = json.dumps(order, ensure_ascii=False).encode()

    def post(body: bytes, hmac: str, webhook_id: str) -> tuple[int, dict[str, str], Any]:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "checkouts/create",
            "X-Shopify-Hmac-Sha256": hmac,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Shop-Domain": "johns-apparel.myshopify.com",
        }
        event = http_api_event(
            "POST",
            "/v1/webhooks/shopify/{store}",
            "/v1/webhooks/shopify/shop-1",
            headers,
            body,
            as_base64=as_base64,
            path_parameters={"store": "shop-1"},
        )
        return answer(event, ctx)

    assert post(raw, signature(SHOPIFY_SECRET, raw), "w-1")[0] == 200
    assert world.published("profile")
    forged = post(raw.replace("Zoë".encode(), b"Zoe"), signature(SHOPIFY_SECRET, raw), "w-2")
    assert (forged[0], forged[2]["error"]) == (401, "invalid_signature")


# --- the signup form: the visitor's address from requestContext.identity -----------------------------


@pytest.fixture
def form_key(world: World) -> str:
    ddb = client("dynamodb")
    StoreDirectory(ddb, world.table).put(
        world.store.model_copy(update={"form": FormConfig.model_validate(FORM)})
    )
    return FormKeys(ddb, world.table).issue(world.store.store_id)


def _submit(key: str, n: int, ip: str, as_base64: bool) -> dict[str, Any]:
    payload = json.dumps(form_body(email=f"v{n}@example.com", submission_id=f"http-0000{n:04d}")).encode()
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN}
    return http_api_event(
        "POST",
        "/v1/forms/{key}/submit",
        f"/v1/forms/{key}/submit",
        headers,
        payload,
        as_base64=as_base64,
        ip=ip,
        path_parameters={"key": key},
    )


def test_the_signup_form_submits_and_limits_by_the_visitors_address(
    world: World, form_key: str, ctx: LambdaContext
) -> None:
    # text/plain (the form's CORS-simple post) arrives as text; the same post base64 answers the same
    answers = [answer(_submit(form_key, n, "192.0.2.9", as_base64=n % 2 == 1), ctx) for n in range(4)]
    assert [a[0] for a in answers] == [200, 200, 200, 429]  # FORM allows 3 per address per hour
    assert answers[0][2] == {"success": True, "status": "subscribed"}
    assert answers[0][1]["access-control-allow-origin"] == ORIGIN
    # the λ's own 429 carries Retry-After (API Gateway's throttle 429 on an HTTP API carries none)
    assert 0 < int(answers[3][1]["retry-after"]) <= 3600
    # another address is another visitor
    assert answer(_submit(form_key, 9, "192.0.2.10", as_base64=False), ctx)[0] == 200


def test_the_forms_preflight_is_answered_by_the_λ(world: World, form_key: str, ctx: LambdaContext) -> None:
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    event = http_api_event(
        "OPTIONS",
        "/v1/forms/{key}/submit",
        f"/v1/forms/{form_key}/submit",
        headers,
        None,
        as_base64=False,
        path_parameters={"key": form_key},
    )
    status, out, _ = answer(event, ctx)
    assert status in (200, 204) and out["access-control-allow-origin"] == ORIGIN


# --- error answers ----------------------------------------------------------------------------------


def test_error_answers_are_the_same_json_behind_an_http_api(
    world: World, ctx: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = json.dumps(load_event("batch_cart_abandon")).encode()
    unauthorized = http_api_event("POST", "/v1/batch", "/v1/batch", {}, good, as_base64=False)
    status, headers, body = answer(unauthorized, ctx)
    assert (status, body["error"]) == (401, "unauthorized") and headers["www-authenticate"].startswith(
        "Basic"
    )
    assert answer(batch(b"{not json", as_base64=False), ctx)[2]["error"] == "malformed_json"
    assert answer(batch(b"x", as_base64=True, **{"Content-Encoding": "br"}), ctx)[0] == 415
    assert answer(batch(b" " * (600 * 1024), as_base64=False), ctx)[0] == 413
    assert world.published("profile") == []
    # the bus refusing: 503 with the λ's own Retry-After, nothing half-stored
    failing_put_events(monkeypatch)
    status, headers, body = answer(batch(good, as_base64=False), ctx)
    assert (status, body["error"]) == (503, "unavailable") and int(headers["retry-after"]) > 0
