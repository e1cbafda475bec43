"""`boomerang templates lint|preview` on local folders (no bucket, no browser)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.local.templates_cli import lint_local, main_for_tests, preview

DEFAULTS = Path(__file__).resolve().parents[2] / "infra" / "templates" / "_default"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(DEFAULTS / "cart-abandoned", tmp_path / "cart-abandoned")
    return tmp_path / "cart-abandoned"


def test_preview_renders_every_channel_with_sample_data(folder: Path, tmp_path: Path) -> None:
    written = preview(folder, tmp_path / "out", png=False)

    names = {p.name for p in written}
    assert names == {"email.html", "email.txt", "sms.txt", "push.json", "webpush.json", "summary.txt"}
    summary = (tmp_path / "out" / "summary.txt").read_text(encoding="utf-8")
    assert summary.startswith("Subject: Ada, you left something in your cart")
    assert "SMS (2/3 segments, GSM-7)" in summary
    assert "Web push: Your cart at " in summary
    assert "Trail Runner 2" in (tmp_path / "out" / "email.html").read_text(encoding="utf-8")


def test_preview_with_a_real_customer_and_a_locale(folder: Path, tmp_path: Path) -> None:
    preview(
        folder, tmp_path / "out", locale="pl", customer={"first_name": "Łucja", "locale": "pl"}, png=False
    )

    text = (tmp_path / "out" / "email.txt").read_text(encoding="utf-8")
    assert text.startswith("Subject: Łucja, w Twoim koszyku coś zostało")
    assert "128,00\xa0€" in text  # Polish money from the pl folder, the default layout's footer below
    assert "Wypisz się: https://" in text


def test_lint_uses_a_sibling_layout(folder: Path) -> None:
    # Given a store layout next to the template that forgot its unsubscribe link
    layout = folder.parent / "_layout"
    layout.mkdir()
    (layout / "layout.mjml").write_text("<mjml><mj-body>{% block content %}{% endblock %}</mj-body></mjml>")
    (layout / "layout.txt").write_text("{% block content %}{% endblock %}")

    problems = [str(p) for p in lint_local(folder)]

    # the Polish MJML body extends it: no unsubscribe link any more
    assert any(p.startswith("pl/body.mjml") and "unsubscribe" in p for p in problems), problems


def test_lint_exit_code_and_lines(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_for_tests(["lint", str(folder)]) == 0
    (folder / "sms.txt").write_text("{{ store.name }}\n{{ cart.totl }}")
    assert main_for_tests(["lint", str(folder)]) == 1
    out = capsys.readouterr().out
    assert (
        f"{folder}/sms.txt:2: unknown variable cart.totl; cart has: currency, item_count, items, value" in out
    )
