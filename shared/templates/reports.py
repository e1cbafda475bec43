"""What a marketer is told about an upload: its report, the notification, the CLI's view of a folder.

Every checked file gets ``reports/<key>.json``: its status (an :class:`Outcome`), every problem with
file and line, and the version still sent. A rejected file is also announced (`notification`, sent
through shared/templates/bucket_events.py's `sns_notifier`). `describe_folder` puts a folder's
versions, the one in force and each file's last report side by side for ``boomerang templates list``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.templates import lint
from shared.templates.manifests import TEMPLATE_KEY, read_manifest
from shared.templates.store import folder_prefix, manifest_key, read_object

REPORTS_PREFIX = "reports/"


@dataclass
class Outcome:
    """What a check concluded about one key, as its report and the validator λ carry it."""

    key: str
    status: str  # active | rejected | pending | superseded | removed | ignored | checked
    version_id: str | None = None
    problems: list[lint.Problem] = field(default_factory=list)
    active_version_id: str | None = None
    report_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "version_id": self.version_id,
            "active_version_id": self.active_version_id,
            "problems": [p.as_dict() for p in self.problems],
            "report": self.report_key,
        }


def report_key(key: str) -> str:
    return f"{REPORTS_PREFIX}{key}.json"


def now_iso() -> str:
    """When a check ran, as its reports and the manifest it writes record it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_report(s3: Any, bucket: str, outcome: Outcome, mine: list[lint.Problem], now: str) -> None:
    body = {
        **outcome.as_dict(),
        "checked_at": now,
        "summary": _summary(outcome, mine),
    }
    body.pop("report", None)
    s3.put_object(
        Bucket=bucket,
        Key=report_key(outcome.key),
        Body=json.dumps(body, indent=2).encode(),
        ContentType="application/json",
    )


def _summary(outcome: Outcome, mine: list[lint.Problem]) -> str:
    if outcome.status == "active":
        return "valid: this version is now sent"
    if outcome.status == "rejected":
        still = (
            f"version {outcome.active_version_id} is still sent"
            if outcome.active_version_id
            else "no version of this file is active: the next locale/the default template is sent"
        )
        return f"rejected ({len(mine)} problem{'s' if len(mine) != 1 else ''}): {still}"
    if outcome.status == "pending":
        return "waiting for the channel's other files (see problems); until then the previous version is sent"
    if outcome.status == "removed":
        return "removed: the next locale or the default template is sent"
    return outcome.status


def notification(outcome: Outcome, mine: list[lint.Problem]) -> str:
    lines = [f"{outcome.key} (version {outcome.version_id}) was not activated.", ""]
    folder = outcome.key.rsplit("/", 1)[0] + "/"
    if TEMPLATE_KEY.match(outcome.key):
        m = TEMPLATE_KEY.match(outcome.key)
        folder = folder_prefix(m["owner"], m["name"]) if m else folder
    lines += [f"  {folder}{p}" for p in mine]
    lines += ["", _summary(outcome, mine), f"Report: {outcome.report_key}"]
    return "\n".join(lines)


def read_report(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    text = read_object(s3, bucket, report_key(key))
    return json.loads(text) if text else None


def describe_folder(s3: Any, bucket: str, owner: str, name: str) -> list[dict[str, Any]]:
    """Per file: its versions (newest first), which one is active, and the last report."""
    prefix = folder_prefix(owner, name)
    manifest, _ = read_manifest(s3, bucket, manifest_key(owner, name))
    versions: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            versions.setdefault(v["Key"], []).append(
                {
                    "version_id": v.get("VersionId"),
                    "at": v["LastModified"],
                    "latest": v.get("IsLatest", False),
                }
            )
    out = []
    for key in sorted(versions):
        rel = key[len(prefix) :]
        report_text = read_object(s3, bucket, report_key(key))
        out.append(
            {
                "file": rel,
                "key": key,
                "versions": sorted(versions[key], key=lambda v: v["at"], reverse=True),
                "active": manifest.get("files", {}).get(rel, {}).get("version_id"),
                "report": json.loads(report_text) if report_text else None,
            }
        )
    return out
