"""The HTML report in Debian's headless Chromium: it renders, to the expected size, with no console
message at all (the page has no script; a blocked resource or a CSP violation would log one).

Chromium is driven from its command line (--screenshot, console lines on stderr), so the test needs
only /usr/bin/chromium (`make test` installs it with apt-get when missing).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from shared.services.analytics.report import build
from shared.services.analytics.report_html import render_html
from tests.report_sample import END, START, sample_data

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "build" / "screenshots"
SIZE = (1200, 2600)


def render(page: Path, png: Path, size: tuple[int, int] = SIZE) -> list[str]:
    """Screenshot `page`; return the console messages Chromium logged."""
    if not shutil.which(CHROMIUM):
        raise AssertionError(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium)")
    with tempfile.TemporaryDirectory(prefix="boomerang-report-") as profile:
        done = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={size[0]},{size[1]}",
                "--enable-logging=stderr",
                "--v=0",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanlines of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return int(width), int(height), zlib.decompress(idat)


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    # the check below would fail on a page that logs: prove it on one that does
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><body><script>console.error("boom"); missing()</script></body>')
    console = render(page, tmp_path / "bad.png", (400, 300))
    assert any('"boom"' in line for line in console)
    assert any("Uncaught ReferenceError" in line for line in console)


def test_the_report_renders_in_headless_chromium_without_console_messages(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(build(sample_data(), START, END)), encoding="utf-8")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOT_DIR / "report.png"
    png.unlink(missing_ok=True)
    console = render(page, png)
    assert console == []
    width, height, pixels = png_pixels(png.read_bytes())
    assert (width, height) == SIZE
    # not a blank page: the charts and tables put many different colours on it
    assert len(set(pixels)) > 50
    assert pixels.count(0xFF) < len(pixels) * 0.95
