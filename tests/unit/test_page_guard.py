"""The public pages' POST rules (shared/services/consent/guard.py): only the page's own same-origin
form post, or an RFC 8058 one-click POST from a mail server, is ever obeyed."""

from __future__ import annotations

import re

import pytest

from shared.platform import signing
from shared.services.consent import guard

RING = signing.KeyRing("v2", {"v1": b"a" * 32, "v2": b"b" * 32}, {"v1": 0.0, "v2": 1.0})
LINK = signing.sign(RING, "shop-1", "u:42", "email", 2_000_000_000)
NOW = 1_800_000_000.0
OWN = {"Host": "api.shop.example.com", "X-Forwarded-Proto": "https"}
FORM = "application/x-www-form-urlencoded"


def ft(purpose: str = "unsubscribe", link: str = LINK, now: float = NOW) -> str:
    html = guard.form_token_input(RING, purpose, link, wall=lambda: now)
    found = re.search(r'value="([^"]+)"', html)
    assert found
    return found.group(1)


def post(headers: dict[str, str], body: bytes) -> guard.PagePost:
    return guard.page_post({**OWN, **headers}, body)


def verdict(p: guard.PagePost, purpose: str = "unsubscribe", now: float = NOW + 60) -> str | None:
    return guard.refusal(p, RING, purpose, LINK, wall=lambda: now)


BROWSER = {"Content-Type": FORM, "Origin": "https://api.shop.example.com", "Sec-Fetch-Site": "same-origin"}


def test_the_pages_own_form_post_is_obeyed() -> None:
    assert verdict(post(BROWSER, f"confirm=yes&ft={ft()}".encode())) is None
    # a browser that sends no Sec-Fetch-Site (older ones) but the right Origin
    assert verdict(post({**BROWSER, "Sec-Fetch-Site": ""}, f"ft={ft()}".encode())) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({**BROWSER, "Content-Type": "text/plain"}, "not a form post"),  # no CORS preflight for it
        ({**BROWSER, "Content-Type": "application/json"}, "not a form post"),
        ({**BROWSER, "Origin": "https://evil.example"}, "cross-site"),
        ({**BROWSER, "Origin": "null"}, "cross-site"),
        ({**BROWSER, "Origin": "http://api.shop.example.com"}, "cross-site"),  # scheme counts
        ({**BROWSER, "Origin": "https://api.shop.example.com.evil.example"}, "cross-site"),
        ({**BROWSER, "Sec-Fetch-Site": "cross-site"}, "cross-site"),
        ({**BROWSER, "Sec-Fetch-Site": "same-site"}, "cross-site"),  # a sibling subdomain is not us
    ],
)
def test_cross_site_and_non_form_posts_are_refused_even_with_a_form_token(
    headers: dict[str, str], reason: str
) -> None:
    assert verdict(post(headers, f"confirm=yes&ft={ft()}".encode())) == reason


def test_a_form_token_works_only_on_its_page_for_its_link_for_a_while() -> None:
    other_link = signing.sign(RING, "shop-1", "u:someone-else", "email", 2_000_000_000)
    assert verdict(post(BROWSER, b"confirm=yes")) == "no form token"
    assert verdict(post(BROWSER, f"ft={ft(link=other_link)}".encode())) == "no form token"
    assert verdict(post(BROWSER, f"ft={ft(purpose='preferences')}".encode())) == "no form token"
    assert verdict(post(BROWSER, f"ft={ft()}x".encode())) == "no form token"
    late = NOW + guard.FORM_TOKEN_LIFETIME_S
    assert verdict(post(BROWSER, f"ft={ft()}".encode()), now=late) == "page expired"
    # signed with a key that left the ring
    retired = signing.KeyRing("v2", {"v2": b"b" * 32}, {"v2": 1.0})
    token = signing.form_token(RING.__class__("v1", RING.keys, RING.since), "unsubscribe", LINK, NOW + 99)
    with pytest.raises(signing.InvalidToken):
        signing.verify_form_token(retired, token, "unsubscribe", LINK, NOW)


def test_rfc_8058_one_click_from_a_mail_server_needs_no_origin_nor_form_token() -> None:
    urlencoded = post({"Content-Type": FORM}, b"List-Unsubscribe=One-Click")
    # RFC 8058's own example body
    boundary = "---FormBoundaryjWmhtjORrn"
    multipart = post(
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n".encode(),
    )
    assert guard.is_one_click(urlencoded) and guard.is_one_click(multipart)
    # but never from a browser (it always sends Origin on a POST), nor as text/plain
    assert not guard.is_one_click(
        post({**BROWSER, "Origin": "https://evil.example"}, b"List-Unsubscribe=One-Click")
    )
    assert not guard.is_one_click(post({"Content-Type": "text/plain"}, b"List-Unsubscribe=One-Click"))
    assert not guard.is_one_click(
        post({"Content-Type": FORM, "Sec-Fetch-Site": "cross-site"}, b"List-Unsubscribe=One-Click")
    )
    assert not guard.is_one_click(post({"Content-Type": FORM}, b"List-Unsubscribe=Yes"))


def test_an_unreadable_form_body_is_refused_not_a_crash() -> None:
    assert verdict(post(BROWSER, b"ft=\xff\xfe")) == "not a form post"
    broken = post({**BROWSER, "Content-Type": "multipart/form-data; boundary=x"}, b"\x00garbage")
    assert verdict(broken) in ("not a form post", "no form token")


def test_page_headers_forbid_script_framing_referrer_and_sniffing() -> None:
    h = guard.PAGE_HEADERS
    csp = dict(part.split(" ", 1) for part in h["Content-Security-Policy"].split("; "))
    assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert "script-src" not in csp  # falls back to default-src 'none': no script at all
    assert csp["style-src"] == guard.csp_hash(guard.STYLESHEET)  # the one stylesheet, by hash
    assert (h["X-Frame-Options"], h["Referrer-Policy"], h["X-Content-Type-Options"]) == (
        "DENY",
        "no-referrer",
        "nosniff",
    )
