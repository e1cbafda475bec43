"""`boomerang journeys push` / `segments push`: a marketer's file goes to the store's folder of the
templates bucket (a new version only when it changed), and the validator's report is printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.cli import main as boomerang
from shared.platform.aws import client
from shared.templates.publish import validate_change
from tests.aws_fixtures import World

SEGMENT = "name: Big spenders\nrevenue: {gte: 500}\n"


def test_segments_push_uploads_once_and_says_unchanged_after(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big-spenders.yaml"
    path.write_text(SEGMENT)
    args = ["segments", "push", str(path), "--store", "shop-1", "--bucket", world.bucket, "--wait", "0"]
    assert boomerang(args) == 0
    assert f"uploaded s3://{world.bucket}/segments/shop-1/big-spenders.yaml" in capsys.readouterr().out
    body = client("s3").get_object(Bucket=world.bucket, Key="segments/shop-1/big-spenders.yaml")["Body"]
    assert body.read().decode() == SEGMENT
    assert boomerang(args) == 0
    assert "unchanged" in capsys.readouterr().out


def test_journeys_push_prints_the_validators_report(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the validator λ runs on the S3 event in AWS and the emulator; here it is called as it would be
    from infra.local import templates_cli

    real_wait = templates_cli.wait_for_reports

    def validated(s3, bucket, uploaded, timeout):  # type: ignore[no-untyped-def]
        for key, version in uploaded.items():
            validate_change(s3, bucket, key, version_id=version)
        return real_wait(s3, bucket, uploaded, timeout)

    monkeypatch.setattr(templates_cli, "wait_for_reports", validated)
    path = tmp_path / "sale.yaml"
    path.write_text(
        "trigger:\n  broadcast: {segment: big-spenders, day: 2026-11-27}\nsteps:\n  - {id: a, template: flash-sale}\n"
    )
    args = ["journeys", "push", str(path), "--store", "shop-1", "--bucket", world.bucket, "--wait", "5"]

    # a segment the store does not have: rejected, with the line and the store's segment ids
    assert boomerang(args) == 1
    out = capsys.readouterr().out
    assert "journeys/shop-1/sale.yaml: rejected" in out
    assert "sale.yaml:2: trigger.broadcast.segment: no segment 'big-spenders' in this store" in out

    # once the segment exists, the same file checks out
    seg = tmp_path / "big-spenders.yaml"
    seg.write_text(SEGMENT)
    assert (
        boomerang(
            ["segments", "push", str(seg), "--store", "shop-1", "--bucket", world.bucket, "--wait", "0"]
        )
        == 0
    )
    path.write_text(path.read_text() + "# now valid\n")
    assert boomerang(args) == 0
    assert "journeys/shop-1/sale.yaml: checked" in capsys.readouterr().out
