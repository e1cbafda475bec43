"""The emulator's S3 forgets what S3 forgets (issue 16.8): moto stores a bucket's lifecycle rules but
never runs them, and keeps the body of every key it ever made. The sweeper runs the rules the stack
states (infra/description.py), on Boomerang's clock, and closes the keys nothing holds any more."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import FakeKey, s3_backends

from infra import description as d
from infra.local import retention
from infra.local.emulator import _set_lifecycle
from shared.platform import clock
from tests.aws_fixtures import ACCOUNT, FAKE_CREDENTIALS, REGION, FixedClock

DAY = 86400
MIDNIGHT = 1_790_208_000.0  # 2026-09-23 00:00 UTC
ANALYTICS, TEMPLATES = "analytics-bucket", "templates-bucket"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=ANALYTICS)
        _set_lifecycle(client, ANALYTICS, d.ANALYTICS_LIFECYCLE)
        client.create_bucket(Bucket=TEMPLATES)
        client.put_bucket_versioning(Bucket=TEMPLATES, VersioningConfiguration={"Status": "Enabled"})
        _set_lifecycle(client, TEMPLATES, d.TEMPLATES_LIFECYCLE)
        yield client
    clock.reset_clock()


def _made(bucket: str, key: str, boomerang_at: float, now: float, version: int = -1) -> None:
    """Date a key's version as if written at `boomerang_at` (the sweeper reads moto's wall-clock
    stamps as that long before Boomerang's now)."""
    wall_now = datetime.now(tz=UTC).replace(tzinfo=None)
    versions = s3_backends[ACCOUNT]["aws"].buckets[bucket].keys.getlist(key)
    versions[version].last_modified = wall_now - timedelta(seconds=now - boomerang_at)


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_an_export_goes_at_the_first_midnight_after_its_days_and_reports_stay(s3: Any) -> None:
    now = MIDNIGHT + 30 * DAY + 10 * 3600  # 30 days and 10 hours after the day the export began
    c = FixedClock(now)
    clock.set_clock(c)
    for key in ("exports/2026-09-22/data.json.gz", "metrics/shop/2026-09-22.json"):
        s3.put_object(Bucket=ANALYTICS, Key=key, Body=b"{}")
        _made(ANALYTICS, key, MIDNIGHT - 3600, now)  # written at 23:00 the day before
    sweeper = retention.Sweeper(ACCOUNT, REGION, "none", "expires_at")
    # 23:00 + 30 days is 22:00 yesterday... rounded up to today's midnight: due
    assert sweeper.sweep()["objects"] == 1
    assert _keys(s3, ANALYTICS) == ["metrics/shop/2026-09-22.json"]  # reports are kept

    s3.put_object(Bucket=ANALYTICS, Key="exports/2026-09-23/data.json.gz", Body=b"{}")
    _made(ANALYTICS, "exports/2026-09-23/data.json.gz", MIDNIGHT + 3600, now)  # 01:00 on the 23rd
    assert sweeper.sweep()["objects"] == 0  # due at tomorrow's midnight, not 01:00 today
    c.advance(14 * 3600 - 1)
    assert sweeper.sweep()["objects"] == 0
    c.advance(1)
    assert sweeper.sweep()["objects"] == 1
    assert _keys(s3, ANALYTICS) == ["metrics/shop/2026-09-22.json"]


def test_a_replaced_template_version_goes_a_year_after_its_replacement_and_the_current_one_stays(
    s3: Any,
) -> None:
    now = MIDNIGHT + 400 * DAY
    clock.set_clock(FixedClock(now))
    key = "templates/shop/cart/email.html"
    ids = [s3.put_object(Bucket=TEMPLATES, Key=key, Body=f"v{n}".encode())["VersionId"] for n in range(3)]
    _made(TEMPLATES, key, now - 500 * DAY, now, 0)
    _made(TEMPLATES, key, now - 366 * DAY, now, 1)  # replaced v0 366 days ago
    _made(TEMPLATES, key, now - 100 * DAY, now, 2)  # replaced v1 100 days ago
    assert retention.Sweeper(ACCOUNT, REGION, "none", "expires_at").sweep()["objects"] == 1
    kept = [v["VersionId"] for v in s3.list_object_versions(Bucket=TEMPLATES, Prefix=key)["Versions"]]
    assert sorted(kept) == sorted(ids[1:])
    assert s3.get_object(Bucket=TEMPLATES, Key=key)["Body"].read() == b"v2"


def test_an_unfinished_upload_is_aborted_a_day_after_it_began(s3: Any) -> None:
    c = FixedClock(MIDNIGHT + 3600)
    clock.set_clock(c)
    upload = s3.create_multipart_upload(Bucket=ANALYTICS, Key="exports/2026-09-23/part.gz")["UploadId"]
    other = s3.create_multipart_upload(Bucket=ANALYTICS, Key="metrics/shop/big.json")["UploadId"]
    sweeper = retention.Sweeper(ACCOUNT, REGION, "none", "expires_at")
    sweeper.sweep()  # first seen at 01:00 on the 23rd: due at midnight after the 24th's 01:00
    c.advance(DAY + 23 * 3600 - 1)
    assert sweeper.sweep()["objects"] == 0
    c.advance(1)
    assert sweeper.sweep()["objects"] == 1
    left = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=ANALYTICS).get("Uploads", [])]
    assert left == [other]  # the rule covers exports/ only
    assert upload not in sweeper._uploads_seen


def test_keys_nothing_holds_are_closed_and_forgotten(s3: Any) -> None:
    clock.set_clock(FixedClock(MIDNIGHT))
    sweeper = retention.Sweeper(ACCOUNT, REGION, "none", "expires_at")
    sweeper.sweep()
    tracked = FakeKey.instances_tracked  # type: ignore[attr-defined]
    base = len(tracked)
    body = os.urandom(50_000)
    s3.put_object(Bucket=ANALYTICS, Key="metrics/shop/latest.json", Body=body)
    s3.put_object(Bucket=ANALYTICS, Key="metrics/shop/latest.json", Body=body)  # replaces the first
    s3.put_object(Bucket=ANALYTICS, Key="metrics/shop/gone.json", Body=body)
    s3.delete_object(Bucket=ANALYTICS, Key="metrics/shop/gone.json")
    for n in range(2):
        s3.put_object(Bucket=TEMPLATES, Key="templates/shop/a.html", Body=f"v{n}".encode())
    s3.delete_object(Bucket=TEMPLATES, Key="templates/shop/a.html")  # a delete marker over two versions
    for _ in range(5):  # moto copies every version of the bucket at each call, bodies included
        s3.list_object_versions(Bucket=TEMPLATES, Prefix="templates/")
    assert len(tracked) - base == 3 + 2 + 5 * 2
    held = tracked[-1]  # a copy a response still being written would hold

    assert sweeper.sweep()["s3_keys_closed"] == 2 + 5 * 2 - 1  # the replaced, the deleted, the copies
    assert len(tracked) - base == 4 and held in tracked  # the bucket's three, and the one held
    assert not held.disposed and held.value == b"v1"  # a key still referenced stays readable
    del held
    assert sweeper.sweep()["s3_keys_closed"] == 1
    assert s3.get_object(Bucket=ANALYTICS, Key="metrics/shop/latest.json")["Body"].read() == body
    versions = s3.list_object_versions(Bucket=TEMPLATES, Prefix="templates/shop/a.html")["Versions"]
    bodies = [
        s3.get_object(Bucket=TEMPLATES, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        for v in versions
    ]
    assert sorted(bodies) == [b"v0", b"v1"]  # the versions under the delete marker stay readable
