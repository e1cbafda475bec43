"""The marketer's story from the README, against its own `boomerang local`:

list templates, pull the cart email, change its subject, lint, preview as PNG, push, see the next
cart reminder in the outbox page use it, break it on purpose (the old one is still sent and the
error names file and line), and roll back. Every step runs the real `boomerang templates` CLI.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import chromium, png_size
from tests.e2e.conftest import ROOT, Local, start_local, stop_local

pytestmark = pytest.mark.e2e

NEW_SUBJECT = "{{ customer.first_name }}, your {{ store.name }} cart misses you"
BROKEN_SUBJECT = "{{ customer.first_name }, your cart misses you"


@pytest.fixture(scope="module")
def own_local() -> Iterator[Local]:
    # Its own emulator: this story changes the demo store's templates, other tests expect defaults.
    proc, server = start_local()
    try:
        yield server
    finally:
        stop_local(proc)


def boomerang(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.local", "templates", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def abandon_cart(local: Local, first_name: str) -> str:
    user = f"{first_name.lower()}-{uuid.uuid4().hex[:8]}"
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
                        "first_name": first_name,
                        "consent": {"email": "subscribed"},
                    },
                },
                {
                    "type": "track",
                    "event": "Product Added",
                    "userId": user,
                    "messageId": f"add-{user}",
                    "properties": {
                        "cart_id": f"c-{user}",
                        "product_id": "p1",
                        "name": "Tent",
                        "price": 199,
                        "currency": "EUR",
                    },
                },
            ]
        },
    )
    assert status == 200
    return user


def first_email(local: Local, user: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        mails = [m for m in local.outbox() if m["channel"] == "email" and m["to"] == f"{user}@example.com"]
        return mails[0] if mails and mails[0]["journey"] else None

    return dict(local.wait_for(found, 60, f"the cart reminder to {user}"))


def test_marketer_changes_breaks_and_rolls_back_the_cart_email(own_local: Local, tmp_path: Path) -> None:
    local = own_local
    at = ["--local", local.url]

    # 1. List the templates: the shipped cart email is there and active
    listed = boomerang("list", "demo", *at)
    assert listed.returncode == 0, listed.stderr
    assert "templates/_default/cart-abandoned/" in listed.stdout
    assert any(line.split()[:2] == ["subject.txt", "active"] for line in listed.stdout.splitlines())

    # 2. Pull it into a local folder and change the subject
    pulled = boomerang("pull", "demo/cart-abandoned", str(tmp_path), *at)
    assert pulled.returncode == 0, pulled.stderr
    folder = tmp_path / "cart-abandoned"
    assert {"subject.txt", "body.html", "body.txt", "sms.txt"} <= {p.name for p in folder.iterdir()}
    (folder / "subject.txt").write_text(NEW_SUBJECT + "\n", encoding="utf-8")

    # 3. Lint it
    linted = boomerang("lint", str(folder))
    assert (linted.returncode, linted.stdout.strip()) == (0, f"{folder}: ok"), linted.stdout + linted.stderr

    # 4. Preview it as a PNG
    out = tmp_path / "preview"
    previewed = boomerang("preview", str(folder), "--out", str(out), "--offline")
    assert previewed.returncode == 0, previewed.stderr
    assert "Subject: Ada, your Acme Outdoor cart misses you" in previewed.stdout
    assert png_size((out / "email.png").read_bytes()) == (800, 1200)
    assert (out / "email.png").stat().st_size > 10_000

    # 5. Push it: the validator activates it
    pushed = boomerang("push", str(folder), "demo", *at)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "templates/demo/cart-abandoned/subject.txt: active" in pushed.stdout

    # 6. The next cart reminder uses it, in the outbox and on the outbox page
    mail = first_email(local, abandon_cart(local, "Ada"))
    assert mail["subject"] == "Ada, your Boomerang Demo Store cart misses you"
    with chromium() as browser:
        from selenium.webdriver.common.by import By

        browser.get(local.url + "/_local/")
        local.wait_for(
            lambda: any(
                e.text == mail["subject"]
                for e in browser.find_elements(By.CSS_SELECTOR, "article.email .subject")
            ),
            20,
            "the new subject on the outbox page",
        )

    # 7. Break it on purpose: lint says where, the push is refused with the same error
    (folder / "subject.txt").write_text(BROKEN_SUBJECT + "\n", encoding="utf-8")
    linted = boomerang("lint", str(folder))
    assert linted.returncode == 1
    assert f"{folder}/subject.txt:1: syntax error" in linted.stdout
    pushed = boomerang("push", str(folder), "demo", *at)
    assert pushed.returncode == 1
    assert "templates/demo/cart-abandoned/subject.txt: rejected" in pushed.stdout
    assert "subject.txt:1: syntax error: unexpected '}'" in pushed.stdout
    assert "is still sent" in pushed.stdout
    # ... the marketer is notified (the emulator records the SNS notification) ...
    status, body = local.request("GET", "/_local/reports")
    assert status == 200
    assert any("subject.txt:1: syntax error" in r["message"] for r in body["reports"])
    # ... and list shows the rejection with its line
    listed = boomerang("list", "demo", *at)
    assert "subject.txt:1: syntax error" in listed.stdout

    # 8. The next reminder still uses the last good subject
    mail = first_email(local, abandon_cart(local, "Grace"))
    assert mail["subject"] == "Grace, your Boomerang Demo Store cart misses you"

    # 9. Roll back: the version in force is republished, so the bucket's newest is good again
    rolled = boomerang("rollback", "demo/cart-abandoned", *at)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "templates/demo/cart-abandoned/subject.txt: active" in rolled.stdout
    pulled = boomerang("pull", "demo/cart-abandoned", str(tmp_path / "after"), *at)
    assert (tmp_path / "after" / "cart-abandoned" / "subject.txt").read_text().strip() == NEW_SUBJECT
    listed = boomerang("list", "demo", *at)
    assert "syntax error" not in listed.stdout
    mail = first_email(local, abandon_cart(local, "Alan"))
    assert mail["subject"] == "Alan, your Boomerang Demo Store cart misses you"


def test_template_injection_is_refused_by_lint_and_push(own_local: Local, tmp_path: Path) -> None:
    folder = tmp_path / "cart-abandoned"
    assert boomerang("pull", "demo/cart-abandoned", str(tmp_path), "--local", own_local.url).returncode == 0
    (folder / "subject.txt").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    (folder / "body.txt").write_text(
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}", encoding="utf-8"
    )

    linted = boomerang("lint", str(folder))
    assert linted.returncode == 1
    assert "subject.txt:1: unsafe: '__class__'" in linted.stdout
    assert "body.txt:1: unsafe: '__globals__'" in linted.stdout

    started = time.monotonic()
    pushed = boomerang("push", str(folder), "injection-test", "--local", own_local.url)
    assert pushed.returncode == 1
    assert "rejected" in pushed.stdout and "unsafe" in pushed.stdout
    assert time.monotonic() - started < 60
