"""The outbox page in a real browser: a message sent while the page is open shows up by itself."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.browser import chromium, png_size
from tests.e2e.conftest import Local

pytestmark = pytest.mark.e2e

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def test_outbox_page_shows_a_message_as_it_arrives(local: Local) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    user = f"page-{uuid.uuid4().hex[:8]}"
    with chromium() as browser:
        # Given the outbox page is open
        browser.get(local.url + "/_local/")
        assert browser.title == "Boomerang local outbox"
        assert not browser.find_elements(By.CSS_SELECTOR, f"article.msg[data-to='{user}']")

        # When a shopper abandons a cart (the first reminder is due 1 h later: 1 s at x3600)
        status, _ = local.post(
            "/v1/batch",
            {
                "batch": [
                    {
                        "type": "identify",
                        "userId": user,
                        "messageId": f"id-{user}",
                        "traits": {
                            "email": f"{user}@example.com",
                            "first_name": "Grace",
                            "consent": {"email": "subscribed"},
                        },
                    },
                    {
                        "type": "track",
                        "event": "Product Added",
                        "userId": user,
                        "messageId": f"add-{user}",
                        "properties": {
                            "cart_id": f"cart-{user}",
                            "product_id": "p1",
                            "name": "Compass",
                            "price": 25,
                            "currency": "EUR",
                        },
                    },
                ]
            },
        )
        assert status == 200

        # Then, without reloading, the page shows the email, and its journey once recorded (just
        # after the send: the page redraws the card, so it may first read "? / ?")
        deadline = time.monotonic() + 60
        card = None
        while time.monotonic() < deadline:
            try:
                cards = [
                    c
                    for c in browser.find_elements(By.CSS_SELECTOR, "article.msg.email")
                    if f"{user}@example.com" in c.find_element(By.CSS_SELECTOR, ".to").text
                ]
                card = cards[0] if cards else None
                if card is not None and "?" not in card.find_element(By.CSS_SELECTOR, ".journey").text:
                    break
            except StaleElementReferenceException:
                card = None  # redrawn while we read it
            time.sleep(0.3)
        assert card is not None, "the email never appeared on the page"
        assert "Grace" in card.find_element(By.CSS_SELECTOR, ".subject").text
        assert "cart-abandonment / email-1" in card.find_element(By.CSS_SELECTOR, ".journey").text
        frame = card.find_element(By.CSS_SELECTOR, "iframe.mail")
        assert frame.get_attribute("sandbox") == ""  # the email cannot run scripts or reach the page
        assert "Compass" in (frame.get_attribute("srcdoc") or "")
        browser.switch_to.frame(frame)
        assert "Compass" in browser.find_element(By.TAG_NAME, "body").text  # rendered, not just present
        browser.switch_to.default_content()

        # And a screenshot of the page is a PNG of the browser's viewport
        browser.execute_script("arguments[0].scrollIntoView()", card)
        png = browser.get_screenshot_as_png()
        viewport = browser.execute_script(
            "return [window.innerWidth * devicePixelRatio, window.innerHeight * devicePixelRatio]"
        )
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    (SCREENSHOT_DIR / "outbox.png").write_bytes(png)
    assert len(png) > 10_000
    assert png_size(png) == tuple(int(v) for v in viewport)
