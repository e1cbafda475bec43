"""Every shipped journey step names templates that ship for each channel it may send on."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.adapters.journey_catalog import parse
from shared.templates.model import PUSH_FILES, SMS_FILES, TEMPLATE_FILES, WEBPUSH_FILES

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = sorted((ROOT / "infra/journeys").glob("*.yaml"))
DEFAULTS = ROOT / "infra/templates/_default"
FILES = {"email": TEMPLATE_FILES, "sms": SMS_FILES, "push": PUSH_FILES, "webpush": WEBPUSH_FILES}


@pytest.mark.parametrize("path", JOURNEYS, ids=lambda p: p.stem)
def test_each_step_has_a_default_template_for_every_channel(path: Path) -> None:
    journey = parse(path.read_text(), str(path), expected_id=path.stem)
    for step in journey.steps:
        names = {step.template, *(v.template for v in step.variants if v.template)}
        for name in names:
            for channel in step.channels:
                missing = [f for f in FILES[channel] if not (DEFAULTS / name / f).is_file()]
                assert not missing, f"{path.name} step {step.id}: {name}/{', '.join(missing)} for {channel}"


def test_every_shipped_push_template_has_a_web_push_version() -> None:
    for folder in sorted(DEFAULTS.iterdir()):
        if (folder / "push_title.txt").is_file():
            assert all((folder / f).is_file() for f in WEBPUSH_FILES), folder.name
