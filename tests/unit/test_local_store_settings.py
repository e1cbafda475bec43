"""`boomerang local --store FILE`: the demo store with a file's settings over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.cli import main
from infra.local.emulator import DEMO_STORE, load_store_settings


def test_settings_override_the_demo_store_and_keep_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "store.yaml"
    path.write_text("timezone: Europe/Warsaw\nretention:\n  at_risk_min_days: 2\n")
    store = load_store_settings(str(path))
    assert store.timezone == "Europe/Warsaw"
    assert store.retention.at_risk_min_days == 2
    assert store.retention.churn_after_days == DEMO_STORE.retention.churn_after_days
    assert (store.store_id, store.sender_email) == ("demo", DEMO_STORE.sender_email)


def test_json_works_too(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_text('{"locale": "pl"}')
    assert load_store_settings(str(path)).locale == "pl"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "retention:\n  at_risk_min_days: 0\n",
            "retention.at_risk_min_days: Input should be greater than or equal to 1",
        ),
        ("timezon: UTC\n", "unknown store setting timezon (allowed: "),
        ("- a list\n", "expected an object of store settings, got list"),
        ("retention: {at_risk_min_days: [\n", "not JSON or YAML"),
    ],
)
def test_bad_settings_name_the_field_and_what_is_allowed(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "store.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="store.yaml: ") as caught:
        load_store_settings(str(path))
    assert message in str(caught.value)


def test_the_cli_refuses_a_bad_file_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "--store", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: No such file or directory" in capsys.readouterr().err
