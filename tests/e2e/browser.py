"""Debian's headless Chromium, driven by Selenium through Debian's chromedriver (no downloads).

`make test` installs both (packages chromium and chromium-driver) when they are missing.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1200, 900)


@contextmanager
def chromium(window: tuple[int, int] = WINDOW) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            raise AssertionError(
                f"{path} is missing: run `make test` (it installs chromium and chromium-driver)"
            )
    with tempfile.TemporaryDirectory(prefix="boomerang-browser-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            # nothing but the emulator on loopback: product images on the internet are not fetched
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (and proof that it is a PNG)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
