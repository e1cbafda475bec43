"""The signup form's public endpoints through the ingest λ on moto: a good signup reaches the profile
with its consent proof and the visitor's earlier browsing; a foreign origin, a filled honeypot, a
flood or a wrong field store nothing."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from functions.ingest.handler import handler as ingest
from functions.profile.handler import handler as fold
from shared.adapters.form_keys import FormKeys
from shared.adapters.store_directory import StoreDirectory
from shared.domain.forms import FormConfig
from shared.platform.aws import client
from tests.aws_fixtures import FixedClock, LambdaContext, World, api_request, canonical, sqs_batch

ORIGIN = "https://shop.example.com"
EMAIL_TEXT = "Email me news and offers from Acme Outdoor. Unsubscribe any time."
FORM = {
    "fields": {
        "email": "required",
        "first_name": "optional",
        "interests": "optional",
        "birthday": "optional",
    },
    "interests": ["hiking", "climbing"],
    "consent": {"email": {"en": EMAIL_TEXT}},
    "texts": {"en": {"title": "Join Acme", "offer": "10% off your first order"}},
    "allowed_origins": [ORIGIN],
    "limits": {"per_ip_per_hour": 3, "per_store_per_minute": 100},
}


@pytest.fixture
def key(world: World) -> str:
    ddb = client("dynamodb")
    StoreDirectory(ddb, world.table).put(
        world.store.model_copy(update={"form": FormConfig.model_validate(FORM)})
    )
    return FormKeys(ddb, world.table).issue(world.store.store_id)


def body(**over: Any) -> dict[str, Any]:
    return {
        "email": "ada@example.com",
        "first_name": "Ada",
        "interests": ["hiking"],
        "birthday": "03-15",
        "consent": {"email": True},
        "locale": "en",
        "page_url": ORIGIN + "/products/boots",
        "anonymous_id": "anon-ada",
        "submission_id": "0f0e0d0c-1111-4222-8333-444455556666",
        "website": "",
        **over,
    }


def call(
    ctx: LambdaContext,
    method: str,
    path: str,
    payload: Any = None,
    origin: str | None = ORIGIN,
    ip: str = "203.0.113.7",
    **headers: str,
) -> tuple[int, dict[str, str], Any]:
    hdrs = {"Content-Type": "text/plain;charset=UTF-8", **headers}
    if origin:
        hdrs["Origin"] = origin
    event = api_request(method, path, payload, hdrs)
    event["requestContext"]["identity"]["sourceIp"] = ip
    result = ingest(event, ctx)
    out_headers = {
        **{k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()},
        **(result.get("headers") or {}),
    }
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    if out_headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    ctype = out_headers.get("Content-Type", "")
    return result["statusCode"], out_headers, json.loads(data) if "json" in ctype and data else data


def test_a_signup_reaches_the_profile_with_its_consent_proof_and_earlier_browsing(
    world: World, key: str, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # Given the visitor browsed anonymously before signing up
    [viewed] = canonical(
        [
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": "anon-ada",
                "messageId": "v-1",
                "properties": {"product_id": "boots"},
            }
        ],
        fixed_clock.now,
    )
    world.profiles().apply(viewed)

    # When they submit the pop-up
    status, headers, answer = call(ctx, "POST", f"/v1/forms/{key}/submit", body())
    assert (status, answer) == (200, {"success": True, "status": "subscribed"})
    assert headers["Access-Control-Allow-Origin"] == ORIGIN

    # Then the same calls as the event API's travel the bus, and the profile holds it all
    published = world.published("profile")
    assert [p["detail"].get("event") or p["detail"]["type"] for p in published] == [
        "identify",
        "Consent Updated",
        "Signed Up",
    ]
    assert fold(sqs_batch(published), ctx) == {"batchItemFailures": []}
    user = published[0]["detail"]["user_id"]
    profile = world.profiles().load_profile("shop-1", "u:" + user)
    assert profile is not None
    assert (profile.email, profile.traits["first_name"], profile.traits["birthday"]) == (
        "ada@example.com",
        "Ada",
        "03-15",
    )
    assert profile.traits["interests"] == ["hiking"]
    consent = profile.consent["email"]
    assert (consent.status, consent.source, consent.text, consent.url) == (
        "subscribed",
        "form:welcome",
        EMAIL_TEXT,
        ORIGIN + "/products/boots",
    )
    # the anonymous visitor's browsing joined the profile
    assert "Product Viewed" in json.dumps(profile.model_dump(mode="json"))

    # And a retried POST (same submission id) is folded as the duplicate it is
    status, _, _ = call(ctx, "POST", f"/v1/forms/{key}/submit", body())
    again = world.published("profile")
    assert status == 200 and [p["detail"]["message_id"] for p in again] == [
        p["detail"]["message_id"] for p in published
    ]


def test_refused_submissions_store_nothing(world: World, key: str, ctx: LambdaContext) -> None:
    submit = f"/v1/forms/{key}/submit"
    # a foreign origin: 403, and no CORS header so that page cannot even read the answer
    status, headers, answer = call(ctx, "POST", submit, body(), origin="https://evil.example")
    assert (
        status == 403
        and answer["error"] == "forbidden_origin"
        and "Access-Control-Allow-Origin" not in headers
    )
    assert call(ctx, "POST", submit, body(), origin=None)[0] == 403
    # an unknown or malformed key: 404
    assert call(ctx, "POST", "/v1/forms/pk_unknownunknownunknown/submit", body())[0] == 404
    # the honeypot: looks like success, stores nothing
    assert call(ctx, "POST", submit, body(website="https://spam.example"), ip="198.51.100.1")[:3:2] == (
        200,
        {"success": True, "status": "subscribed"},
    )
    # a wrong field: which one and what is allowed, readable by the store's page
    status, headers, answer = call(ctx, "POST", submit, body(interests=["sailing"]), ip="198.51.100.2")
    assert status == 400 and headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer["errors"] == [
        {"field": "interests", "message": "'sailing' not offered; choose from hiking, climbing"}
    ]
    # too large
    status, _, answer = call(ctx, "POST", submit, body(first_name="x" * 9000), ip="198.51.100.3")
    assert status == 413
    assert world.published("profile") == []


def test_a_flood_from_one_address_is_cut_off(world: World, key: str, ctx: LambdaContext) -> None:
    submit = f"/v1/forms/{key}/submit"
    answers = [
        call(
            ctx,
            "POST",
            submit,
            body(email=f"bot{n}@example.com", submission_id=f"flood-000{n:04d}"),
            ip="192.0.2.9",
        )
        for n in range(6)
    ]
    assert [a[0] for a in answers] == [200, 200, 200, 429, 429, 429]
    assert int(answers[3][1]["Retry-After"]) <= 3600
    published = world.published("profile")
    emails = {p["detail"]["traits"]["email"] for p in published if p["detail"]["type"] == "identify"}
    assert emails == {"bot0@example.com", "bot1@example.com", "bot2@example.com"}  # the refused left nothing
    # another visitor is not affected
    assert call(ctx, "POST", submit, body(), ip="192.0.2.10")[0] == 200
    # and the counters hold no IP address
    items = client("dynamodb").scan(TableName=world.table)["Items"]
    rates = [i["pk"]["S"] for i in items if i["pk"]["S"].startswith("RATE#")]
    assert rates and not any("192.0.2" in r for r in rates)


def test_config_script_and_preflight(world: World, key: str, ctx: LambdaContext) -> None:
    status, headers, config = call(ctx, "GET", f"/v1/forms/{key}/config")
    assert (
        status == 200
        and headers["Access-Control-Allow-Origin"] == ORIGIN
        and "max-age" in headers["Cache-Control"]
    )
    assert config["texts"]["en"]["title"] == "Join Acme" and "allowed_origins" not in config
    assert call(ctx, "GET", f"/v1/forms/{key}/config", origin="https://evil.example")[0] == 403
    status, headers, _ = call(
        ctx, "OPTIONS", f"/v1/forms/{key}/submit", **{"Access-Control-Request-Method": "POST"}
    )
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]

    status, headers, script = call(
        ctx, "GET", "/v1/forms/boomerang.js", origin=None, **{"Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and b"data-key" in script
    assert "max-age" in headers["Cache-Control"] and headers["ETag"]
    assert (
        call(ctx, "GET", "/v1/forms/boomerang.js", origin=None, **{"If-None-Match": headers["ETag"]})[0]
        == 304
    )


def test_double_opt_in_and_key_rotation(world: World, key: str, ctx: LambdaContext) -> None:
    ddb = client("dynamodb")
    form = FormConfig.model_validate(FORM)
    StoreDirectory(ddb, world.table).put(
        world.store.model_copy(update={"form": form, "double_opt_in_email": True})
    )
    from shared.services import wiring

    wiring.reset()
    status, _, answer = call(ctx, "POST", f"/v1/forms/{key}/submit", body())
    assert (status, answer["status"]) == (200, "pending_confirmation")

    # rotating the form key retires the old one
    new = FormKeys(client("dynamodb"), world.table).issue("shop-1", rotate=True)
    assert new != key
    from shared.services import wiring

    wiring.reset()
    assert call(ctx, "GET", f"/v1/forms/{key}/config")[0] == 404
    assert call(ctx, "GET", f"/v1/forms/{new}/config")[0] == 200
    # and removing the store removes its form key with it
    StoreDirectory(client("dynamodb"), world.table).remove("shop-1")
    assert FormKeys(client("dynamodb"), world.table).store_for(new) is None


def test_with_double_opt_in_the_welcome_waits_for_the_click(
    world: World, key: str, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    from moto.ses.models import ses_backends

    from functions.journey_step.handler import handler as step
    from functions.journey_trigger.handler import handler as trigger
    from shared.domain.fold import DOUBLE_OPT_IN_SOURCE
    from shared.domain.webhooks import email_key
    from shared.services import wiring
    from tests.aws_fixtures import ACCOUNT, REGION

    # Given a store that asks new subscribers to confirm
    form = FormConfig.model_validate(FORM)
    StoreDirectory(client("dynamodb"), world.table).put(
        world.store.model_copy(update={"form": form, "double_opt_in_email": True})
    )
    wiring.reset()
    # When a visitor signs up with the form, and everything is folded and triggered
    assert call(ctx, "POST", f"/v1/forms/{key}/submit", body())[2]["status"] == "pending_confirmation"
    assert fold(sqs_batch(world.published("profile")), ctx) == {"batchItemFailures": []}
    assert trigger(sqs_batch(world.published("journey")), ctx) == {"batchItemFailures": []}
    states = {}
    for execution in world.executions():
        state = json.loads(
            client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
        )
        states[state["journey"]] = state
    assert set(states) == {"email-confirmation", "welcome"}

    # Then the welcome waits for the click instead of turning the subscriber away
    waiting = step(states["welcome"], ctx)
    assert (waiting["action"], waiting["reason"]) == (
        "wait",
        "waiting for the email confirmation (double opt-in)",
    )
    assert waiting["wait_seconds"] == 300
    fixed_clock.advance(4 * 3600)
    again = step(waiting, ctx)
    assert (again["action"], again["wait_seconds"]) == ("wait", 4 * 3600)  # backs off with the time pending

    # And once the customer confirms, the welcome with the offer goes out
    user = "guest-" + email_key("ada@example.com")
    [confirmed] = canonical(
        [
            {
                "type": "track",
                "event": "Consent Updated",
                "userId": user,
                "messageId": "confirm-1",
                "properties": {"consent": {"email": "subscribed"}, "consent_text": "Confirmed"},
            }
        ],
        fixed_clock.now,
    )
    confirmed.properties["consent_source"] = DOUBLE_OPT_IN_SOURCE  # as the confirmation page writes it
    world.profiles().apply(confirmed)
    fixed_clock.advance(again["wait_seconds"])
    done = step(again, ctx)
    assert [e["type"] for e in done["events"]] == ["sent", "wait"]  # then the brand story, 2 days on
    [mail] = ses_backends[ACCOUNT][REGION].sent_messages
    assert "WELCOME10" in mail.raw_data.replace("=\r\n", "")
