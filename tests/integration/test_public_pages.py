"""The public pages (unsubscribe, confirm, preferences) against hostile requests, through the ingest λ.

Issue 16: a malformed token answered 502; a cross-site text/plain POST with a customer's link
changed their consent; no page carried a CSP or frame protection.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from functions.ingest.handler import handler
from shared.platform import signing
from shared.services.consent.unsubscribe import CONFIRM_PURPOSE
from tests.aws_fixtures import (
    SIGNING_SECRET,
    FixedClock,
    LambdaContext,
    World,
    api_request,
    basic_auth,
    canonical,
)
from tests.events import load_event
from tests.pages import FORM, SAME_ORIGIN, form_token, with_form_token

KEY = SIGNING_SECRET.encode()
PAGES = ("/v1/unsubscribe", "/v1/preferences", "/v1/confirm")
HOSTILE_QUERIES = [
    "t=v1.%C3%A9.AAAA",  # the probe: URL-decoded, a non-ASCII payload
    "t=v1.%FF%FE.AAAA",  # not UTF-8 at all
    "t=v1.e30.A",  # bad base64
    "t=v1.e30",  # wrong number of parts
    "t=v1.e30.AAAA.AAAA",
    "t=v77.e30.AAAA",  # a key id the ring never had
    "t=%00%0A",
    "t=" + "A" * 5000,
]
SECURITY = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def link(path: str, now: float) -> str:
    channel = CONFIRM_PURPOSE if path == "/v1/confirm" else "email"
    return quote(signing.sign(KEY, "shop-1", "u:user-42", channel, now + 3600))


def call(
    ctx: LambdaContext, method: str, path: str, query: str, body: bytes | None, headers: dict[str, str]
) -> dict[str, Any]:
    return handler(api_request(method, path, body, headers, query=query), ctx)


def assert_page_headers(result: dict[str, Any]) -> None:
    headers = {k: v[0] for k, v in result["multiValueHeaders"].items()}
    assert headers["Content-Type"].startswith("text/html")
    for name, value in SECURITY.items():
        assert headers[name] == value, name
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "script-src" not in csp
    assert "style=" not in result["body"]  # inline style attributes would be blocked by the CSP


def test_malformed_tokens_answer_403_with_a_plain_page_never_a_crash(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    for path in PAGES:
        for query in HOSTILE_QUERIES:
            for method, body in (("GET", None), ("POST", b"List-Unsubscribe=One-Click")):
                result = call(ctx, method, path, query, body, FORM)
                assert result["statusCode"] == 403, (path, query, method)
                assert "This link is not valid" in result["body"]
                assert_page_headers(result)
    assert world.published("profile") == []


def test_a_cross_site_post_with_a_customers_link_changes_nothing(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    [identify] = canonical([load_event("identify_with_consent")], fixed_clock.now - 300)
    world.profiles().apply(identify)
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    for path in PAGES:
        query = f"t={link(path, fixed_clock.now)}"
        page = call(ctx, "GET", path, query, None, FORM)["body"]
        fields = b"confirm=yes&form=preferences&shown=email"
        attempts = [
            # the finding: a text/plain form from another site (no CORS preflight)
            ({"Content-Type": "text/plain", **evil}, fields),
            ({"Content-Type": "text/plain"}, b"List-Unsubscribe=One-Click"),
            # a urlencoded form from another site, even carrying a stolen form token
            ({**FORM, **evil}, with_form_token(fields, page)),
            (
                {**SAME_ORIGIN, "Origin": "null", "Sec-Fetch-Site": "cross-site"},
                with_form_token(fields, page),
            ),
            # same origin, but not from the page (no form token)
            (SAME_ORIGIN, fields),
        ]
        for headers, body in attempts:
            result = call(ctx, "POST", path, query, body, headers)
            assert result["statusCode"] == 403, (path, headers)
            assert "Nothing was changed" in result["body"]
            assert_page_headers(result)
    assert world.published("profile") == []


def test_the_pages_own_button_and_rfc_8058_one_click_still_work(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock
) -> None:
    # The customer presses the page's button in their browser
    query = f"t={link('/v1/unsubscribe', fixed_clock.now)}"
    page = call(ctx, "GET", "/v1/unsubscribe", query, None, FORM)
    assert page["statusCode"] == 200 and form_token(page["body"])
    assert_page_headers(page)
    result = call(
        ctx, "POST", "/v1/unsubscribe", query, with_form_token(b"confirm=yes", page["body"]), SAME_ORIGIN
    )
    assert result["statusCode"] == 200 and "You are unsubscribed" in result["body"]
    assert_page_headers(result)

    # A mailbox provider POSTs RFC 8058's own example body (multipart), server to server
    boundary = "---FormBoundaryjWmhtjORrn"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    result = call(ctx, "POST", "/v1/unsubscribe", query, body, headers)
    assert result["statusCode"] == 200
    sources = [e["detail"]["properties"]["consent_source"] for e in world.published("profile")]
    assert sources == ["unsubscribe-page", "one-click"]


def test_an_expired_page_says_so_and_offers_a_fresh_one(
    world: World, ctx: LambdaContext, fixed_clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    query = f"t={link('/v1/preferences', fixed_clock.now)}"
    page = call(ctx, "GET", "/v1/preferences", query, None, FORM)["body"]
    later = time.time() + 3 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    body = with_form_token(b"form=preferences&channel=email", page)
    result = call(ctx, "POST", "/v1/preferences", query, body, SAME_ORIGIN)
    assert result["statusCode"] == 403 and "This page has expired" in result["body"]
    assert f'href="?{query}"' in result["body"]
    assert world.published("profile") == []


def test_the_customers_data_export_page_is_locked_down_too(world: World, ctx: LambdaContext) -> None:
    auth = basic_auth(world.api_key)
    result = handler(
        api_request("GET", "/v1/customers/export", None, auth, query="customer=u:x&format=html"), ctx
    )
    assert result["statusCode"] == 200
    assert_page_headers(result)
