"""`python -m tests.bench pages`: what the public pages' hardening and log scrubbing cost.

Per request, without AWS: verifying a hostile link token (refused before any MAC over it), serving
the unsubscribe page with its form token, judging a same-origin POST (parse the form, check Origin
and Sec-Fetch-Site, verify the form token), and summarising an exception for a log line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel


def _per_call_us(fn: Callable[[], Any], n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e6 / n


def print_pages(n: int = 5000) -> None:
    from shared.platform import log_safe, signing
    from shared.services.consent import guard
    from shared.services.consent.unsubscribe import Unsubscriber

    ring = signing.KeyRing("v1", {"v1": b"k" * 32}, {"v1": 0.0})

    class Keys:
        def ring(self) -> signing.KeyRing:
            return ring

    now = time.time()
    link = signing.sign(ring, "shop-1", "u:42", "email", now + 3600)
    page = Unsubscriber(Keys(), None, "bus")
    html = page.page({"t": link}).html
    token = html.split('name=ft value="', 1)[1].split('"', 1)[0]
    headers = {
        "Host": "api.shop.example.com",
        "X-Forwarded-Proto": "https",
        "Origin": "https://api.shop.example.com",
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    body = f"confirm=yes&ft={token}".encode()

    def hostile() -> None:
        try:
            signing.verify(ring, "v1.\u00e9.AAAA", now)
        except signing.InvalidToken:
            pass

    def judged() -> None:
        assert guard.refusal(guard.page_post(headers, body), ring, "unsubscribe", link) is None

    class M(BaseModel):
        email: int
        name: int

    try:
        M.model_validate({"email": "ada@example.com", "name": "Ada"})
    except Exception as exc:  # noqa: BLE001
        error: BaseException = exc

    print(f"\nPublic pages and log scrubbing ({n} calls each, no AWS):")
    print(f"  hostile link token refused:          {_per_call_us(hostile, n):7.1f} us")
    print(
        f"  valid link verified:                 {_per_call_us(lambda: signing.verify(ring, link, now), n):7.1f} us"
    )
    print(f"  unsubscribe page with form token:    {_per_call_us(lambda: page.page({'t': link}), n):7.1f} us")
    print(f"  same-origin POST judged (form+token): {_per_call_us(judged, n):6.1f} us")
    print(
        f"  log-safe summary of a ValidationError:{_per_call_us(lambda: log_safe.summary_text(error), n):6.1f} us"
    )
    print(f"  (str() of it, for comparison):       {_per_call_us(lambda: str(error), n):7.1f} us")
    print(
        f"  page headers: {sum(len(k) + len(v) + 4 for k, v in guard.PAGE_HEADERS.items())} bytes per answer"
    )
