"""The signup pop-up in headless Chromium: a store page on its own origin embeds boomerang.js with the
publishable key; the pop-up follows its rules (pages, delay, once per visitor), works with the
keyboard alone (Tab order, focus trap, Escape, focus restored), submits, and the welcome email with
the offer arrives. A foreign origin, a filled honeypot and a flood are refused and leave no profile
and no consent in the table."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import chromium
from tests.e2e.conftest import Local, start_local, stop_local

pytestmark = pytest.mark.e2e

EMAIL_TEXT = "Email me new arrivals and offers from the Demo Store. Unsubscribe any time."
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Boots</title></head>
<body><h1>Trail boots</h1><button id="shop-now">Shop now</button>
<script>document.cookie = "ajs_anonymous_id=%22{anon}%22; path=/";</script>
<script src="{api}/v1/forms/boomerang.js" data-key="{key}" async></script></body></html>"""


class StorePage:
    """The store's own site: another origin than Boomerang's API (another port on loopback)."""

    def __init__(self) -> None:
        self.html = ""
        page = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = page.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Local, StorePage, str]]:
    page = StorePage()
    settings = {
        "form": {
            "fields": {"email": "required", "first_name": "optional", "interests": "optional"},
            "interests": ["hiking", "climbing"],
            "consent": {"email": {"en": EMAIL_TEXT}},
            "texts": {"en": {"title": "Join the Demo Store", "offer": "10% off your first order"}},
            "show": {"delay_seconds": 1.5, "pages": ["/products/*"]},
            "allowed_origins": [page.origin],
            # one IP (loopback) for everything here: 2 tries in the browser, the honeypot, 2 of the flood
            "limits": {"per_ip_per_hour": 5},
        }
    }
    path: Path = tmp_path_factory.mktemp("shop") / "store.json"
    path.write_text(json.dumps(settings))
    proc, local = start_local("--store", str(path))
    try:
        from infra.stores_cli import main

        out = io.StringIO()
        assert main(["stores", "form-key", "demo", "--local", local.url], out=out) == 0, out.getvalue()
        key = out.getvalue().split("signup form): ")[1].split()[0]
        assert f'data-key="{key}"' in out.getvalue()  # the embed snippet
        yield local, page, key
    finally:
        stop_local(proc)
        page.close()


def _table(local: Local) -> tuple[Any, str]:
    import boto3

    health = local.request("GET", "/_local/health")[1]
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=health["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return ddb, health["table"]


def _profile(local: Local, email: str) -> Any:
    from shared.adapters.profile_store import ProfileStore
    from shared.domain.webhooks import email_key

    ddb, table = _table(local)
    return ProfileStore(ddb, table).load_profile("demo", "u:guest-" + email_key(email))


def _post(local: Local, key: str, body: dict[str, Any], origin: str) -> int:
    req = urllib.request.Request(
        f"{local.url}/v1/forms/{key}/submit",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": origin},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_the_pop_up_by_keyboard_to_the_welcome_email_and_abuse_refused(
    shop: tuple[Local, StorePage, str],
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    local, page, key = shop
    anon = f"anon-{uuid.uuid4().hex[:8]}"
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    page.html = PAGE.format(api=local.url, key=key, anon=anon)

    def dialogs(browser: Any) -> list[Any]:
        return browser.find_elements(By.CSS_SELECTOR, "[role=dialog]")

    def wait(what: str, predicate: Any, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def active_id(browser: Any) -> str:
        return str(browser.switch_to.active_element.get_attribute("id"))

    with chromium(window=(390, 844)) as browser:  # a phone: mobile first
        # Given a page the form is not configured for, nothing shows
        browser.get(page.origin + "/cart")
        time.sleep(2.5)
        assert not dialogs(browser)

        # When a product page opens, the pop-up waits for its delay
        browser.get(page.origin + "/products/boots")
        browser.find_element(By.ID, "shop-now").click()  # what had focus before it opened
        assert not dialogs(browser)
        opened = time.monotonic()
        [dialog] = wait("the pop-up", lambda: dialogs(browser))
        assert time.monotonic() - opened > 0.5
        assert dialog.get_attribute("aria-modal") == "true"
        title = browser.find_element(By.ID, dialog.get_attribute("aria-labelledby"))
        assert title.text == "Join the Demo Store" and "10% off your first order" in dialog.text
        # every input has its label; the consent wording is the configured one
        for field in dialog.find_elements(By.CSS_SELECTOR, "input:not([tabindex='-1']), select"):
            assert dialog.find_elements(By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"), field
        assert EMAIL_TEXT in dialog.text
        # nothing but Boomerang's API and the store's own page was requested
        hosts = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(h.startswith((local.url, page.origin)) for h in hosts), hosts

        # Keyboard: focus starts inside, Tab walks the fields in order and wraps (focus trap)
        expected = [
            "bmr-email",
            "bmr-first_name",
            "bmr-interests-hiking",
            "bmr-interests-climbing",
            "bmr-consent-email",
            "",  # the submit button
            "",  # close
        ]
        assert active_id(browser) == "bmr-email"
        seen = [active_id(browser)]
        for _ in range(len(expected)):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            seen.append(active_id(browser))
        assert seen == [*expected, "bmr-email"]
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        assert browser.switch_to.active_element.get_attribute("aria-label") == "Close"
        # Escape closes it and gives focus back
        ActionChains(browser).send_keys(Keys.ESCAPE).perform()
        assert not dialogs(browser)
        assert active_id(browser) == "shop-now"

        # Once per visitor: not again on the next page view
        browser.get(page.origin + "/products/boots")
        time.sleep(2.5)
        assert not dialogs(browser)

        # A new visitor signs up with the keyboard only
        browser.execute_script("localStorage.clear()")
        browser.get(page.origin + "/products/boots")
        wait("the pop-up again", lambda: dialogs(browser))
        keys = ActionChains(browser)
        keys.send_keys("ada@").send_keys(Keys.TAB).send_keys("Ada").send_keys(Keys.TAB)
        keys.send_keys(Keys.SPACE).send_keys(Keys.TAB).send_keys(Keys.TAB).send_keys(Keys.SPACE)
        keys.send_keys(Keys.TAB).send_keys(Keys.ENTER).perform()
        # a wrong address is named next to its field, and focus goes there
        error = wait("the field error", lambda: browser.find_element(By.ID, "bmr-e-email").text)
        assert "name@example.com" in error
        assert active_id(browser) == "bmr-email"
        assert browser.find_element(By.ID, "bmr-email").get_attribute("aria-invalid") == "true"
        field = browser.switch_to.active_element
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(email)
        ActionChains(browser).send_keys(Keys.ENTER).perform()  # Enter in a field submits the form
        done = wait("the thank-you", lambda: browser.find_elements(By.ID, "bmr-done"))
        assert done[0].text == "Thank you! Check your inbox."
        assert active_id(browser) == "bmr-done"

    # Then the welcome email with the offer arrives
    mail = local.wait_for(
        # the journey is recorded a moment after the send itself
        lambda: next(
            (m for m in local.outbox() if email in m["to"] and m["channel"] == "email" and m["journey"]), None
        ),
        60,
        "the welcome email",
    )
    assert mail["journey"] == "welcome"
    assert "WELCOME10" in mail["text"] and "10% off your first order" in mail["text"]
    # And the table holds the traits, the consent with its proof, and the browsing visitor
    profile = _profile(local, email)
    assert profile.traits["first_name"] == "Ada" and profile.traits["interests"] == ["hiking"]
    consent = profile.consent["email"]
    assert (consent.status, consent.source, consent.text, consent.url) == (
        "subscribed",
        "form:welcome",
        EMAIL_TEXT,
        page.origin + "/products/boots",
    )
    assert anon in profile.anonymous_ids

    # Abuse: a foreign origin, a filled honeypot and a flood are refused
    def body(who: str, **over: Any) -> dict[str, Any]:
        return {
            "email": who,
            "consent": {"email": True},
            "page_url": page.origin + "/products/boots",
            "anonymous_id": "anon-" + uuid.uuid4().hex,
            "submission_id": str(uuid.uuid4()),
            **over,
        }

    foreign, bot = f"foreign-{uuid.uuid4().hex[:6]}@example.com", f"bot-{uuid.uuid4().hex[:6]}@example.com"
    assert _post(local, key, body(foreign, page_url="https://evil.example/"), "https://evil.example") == 403
    assert _post(local, key, body(bot, website="https://spam.example"), page.origin) == 200  # looks fine
    flood = [f"flood-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(6)]
    answers = [_post(local, key, body(who), page.origin) for who in flood]
    assert answers == [200, 200, 429, 429, 429, 429]
    # the flood's accepted two are folded; by then the refused would have been too
    local.wait_for(
        lambda: _profile(local, flood[1]) and _profile(local, flood[0]), 30, "the accepted signups"
    )
    time.sleep(1.0)
    for who in (foreign, bot, *flood[2:]):
        assert _profile(local, who) is None, who
    ddb, table = _table(local)
    items = ddb.scan(TableName=table)["Items"]
    written = json.dumps(items)
    assert all(who not in written for who in (foreign, bot, *flood[2:]))  # no profile, alias or consent
