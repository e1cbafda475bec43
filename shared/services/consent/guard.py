"""What every public page (unsubscribe, confirm, preferences) answers with, and which POSTs it obeys.

The pages are reached with a signed link token in the URL and no login, so the link is the only
credential; these rules keep another site from using it through the customer's browser:

- a state-changing POST is obeyed only when it is a same-origin form post: a form content type
  (never ``text/plain``, which any site can send without a CORS preflight), ``Sec-Fetch-Site:
  same-origin`` when the browser sends it, an ``Origin`` equal to the page's own origin when sent,
  and a form token (signing.form_token) that only the page Boomerang served carries: bound to the
  page, to the link token and to a short lifetime;
- RFC 8058 one-click unsubscribe is the one exception: a mailbox provider POSTs
  ``List-Unsubscribe=One-Click`` server to server, with no Origin, no Sec-Fetch-Site and no form
  token (FACTS.md). A browser always sends Origin on a POST, so a request without both headers is
  not a cross-site browser form, and only the unsubscribe page accepts it;
- every answer carries a strict CSP (no script at all; the one stylesheet by hash), no framing
  (clickjacking the button), no referrer (the URL holds the token) and no caching.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.platform import signing

FORM_TOKEN_FIELD = "ft"
# Long enough to read the page and choose; short enough that a leaked page is soon useless. Wall
# time, not Boomerang's clock: it is a person's time with the page open (the emulator runs x3600).
FORM_TOKEN_LIFETIME_S = 2 * 3600
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058's body

# The pages' only styling: one stylesheet, allowed by its hash (inline style attributes are not).
STYLESHEET = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}"
    "h1{font-size:1.4rem}"
    "button{font-size:1rem;padding:.6rem 1.2rem}"
    "fieldset{border:1px solid #ccc;margin:0 0 1rem;padding:.5rem 1rem}"
    "label{display:block;padding:.4rem 0;font-size:1.05rem}"
    "input[type=checkbox]{width:1.2rem;height:1.2rem;vertical-align:middle;margin-right:.5rem}"
)


def csp_hash(css: str) -> str:
    """A CSP source allowing exactly the inline ``<style>`` or ``<script>`` element holding ``css``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode() + "'"


def security_headers(*style_hashes: str, form_action: bool = True) -> dict[str, str]:
    """The headers of a page with no script, styled only by the stylesheets of these hashes."""
    csp = ["default-src 'none'"]
    if style_hashes:
        csp.append("style-src " + " ".join(style_hashes))
    if form_action:
        csp.append("form-action 'self'")
    csp += ["base-uri 'none'", "frame-ancestors 'none'"]
    return {
        "Content-Security-Policy": "; ".join(csp),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",  # a page shows a customer's choices; no shared cache keeps it
    }


PAGE_HEADERS = security_headers(csp_hash(STYLESHEET))


@dataclass(frozen=True)
class PagePost:
    """A POST to a public page: what the browser (or mailbox provider) said about where it came from."""

    content_type: str  # the media type, lower case, no parameters
    origin: str | None
    fetch_site: str | None
    own_origins: frozenset[str]
    form: dict[str, list[str]] = field(default_factory=dict)
    malformed: bool = False  # a form body that could not be read


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name:
            return v
    return None


def parse_form(body: bytes, content_type: str) -> dict[str, list[str]]:
    """The fields of a urlencoded or multipart/form-data body (file parts are ignored)."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return parse_qs(body.decode("utf-8", "strict"), keep_blank_values=True, strict_parsing=False)
    if media == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise ValueError("multipart body without parts")
        fields: dict[str, list[str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str) and part.get_filename() is None:
                payload = part.get_payload(decode=True)
                value = payload.decode("utf-8", "strict") if isinstance(payload, bytes) else ""
                fields.setdefault(name, []).append(value.strip("\r\n"))
        return fields
    return {}


def page_post(
    headers: Mapping[str, str] | None, body: bytes, request_context: Mapping[str, Any] | None = None
) -> PagePost:
    """The PagePost of an API Gateway request. The page's own origin is the Host the browser asked
    for (or API Gateway's domain name) with the scheme API Gateway forwards."""
    raw_type = _header(headers, "content-type") or ""
    scheme = (_header(headers, "x-forwarded-proto") or "https").split(",")[0].strip().lower()
    hosts = {_header(headers, "host"), (request_context or {}).get("domainName")}
    own = frozenset(f"{scheme}://{h.strip().lower()}" for h in hosts if isinstance(h, str) and h.strip())
    try:
        form, malformed = parse_form(body, raw_type), False
    except (ValueError, UnicodeDecodeError):
        form, malformed = {}, True
    return PagePost(
        content_type=raw_type.split(";")[0].strip().lower(),
        origin=_header(headers, "origin"),
        fetch_site=(_header(headers, "sec-fetch-site") or "").strip().lower() or None,
        own_origins=own,
        form=form,
        malformed=malformed,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def is_one_click(post: PagePost) -> bool:
    """An RFC 8058 one-click POST: the exact body, from a server (no browser's Origin)."""
    return (
        post.origin is None
        and post.fetch_site is None
        and post.content_type in FORM_TYPES
        and post.form.get(ONE_CLICK[0]) == [ONE_CLICK[1]]
    )


def refusal(
    post: PagePost,
    ring: signing.KeyRing,
    purpose: str,
    link_token: str,
    *,
    wall: Callable[[], float] | None = None,
) -> str | None:
    """Why this POST must change nothing (for logs), or None when it is this page's own form post."""
    if post.content_type not in FORM_TYPES or post.malformed:
        return "not a form post"
    if post.fetch_site is not None and post.fetch_site != "same-origin":
        return "cross-site"
    if post.origin is not None and _origin(post.origin) not in post.own_origins:
        return "cross-site"  # also "null": sandboxed frames, data: URLs, some redirects
    token = (post.form.get(FORM_TOKEN_FIELD) or [""])[0]
    try:
        signing.verify_form_token(ring, token, purpose, link_token, (wall or time.time)())
    except signing.InvalidToken as exc:
        return "page expired" if exc.reason == "expired" else "no form token"
    return None


def form_token_input(
    ring: signing.KeyRing, purpose: str, link_token: str, *, wall: Callable[[], float] | None = None
) -> str:
    """The hidden input that proves a POST came from this page."""
    token = signing.form_token(ring, purpose, link_token, (wall or time.time)() + FORM_TOKEN_LIFETIME_S)
    return f'<input type=hidden name={FORM_TOKEN_FIELD} value="{token}">'
