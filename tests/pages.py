"""Helpers for tests of the public pages: a browser's same-origin form post, and the page's form token."""

from __future__ import annotations

import re
from urllib.parse import quote

from tests.aws_fixtures import UNSUBSCRIBE_BASE_URL

ORIGIN = "/".join(UNSUBSCRIBE_BASE_URL.split("/")[:3])  # https://api.shop.example.com
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# What a browser sends when the customer presses the page's own button
SAME_ORIGIN = {
    **FORM,
    "Host": ORIGIN.split("://")[1],
    "X-Forwarded-Proto": "https",
    "Origin": ORIGIN,
    "Sec-Fetch-Site": "same-origin",
}


def form_token(page: str) -> str | None:
    """The hidden form token of a served page (None on a page without a form)."""
    found = re.search(r'<input type=hidden name=ft value="([^"]+)">', page)
    return found.group(1) if found else None


def with_form_token(body: bytes | None, page: str) -> bytes:
    """The body a browser posts from ``page``: its fields plus the page's form token."""
    token = form_token(page)
    if token is None:
        return body or b""
    return (body + b"&" if body else b"") + f"ft={quote(token)}".encode()
