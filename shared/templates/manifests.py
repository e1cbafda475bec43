"""Which version of each template file is in force: the manifests, and what the CLI lists and undoes.

The bucket is versioned. ``active/templates/<store>/<name>.json`` (the *manifest*, which
TemplateStore reads) names, per file of a template folder, the version in force and the versions
active before it (``HISTORY`` of them, for rollback). It is written with an S3 conditional write
(If-Match on its ETag), so two validations of the same folder at once cannot lose each other's
activation: the loser reads again and retries (shared/templates/publish.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.templates.store import folder_prefix, manifest_key

TEMPLATE_KEY = re.compile(
    r"^templates/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<rel>.+)$"
)
HISTORY = 10  # earlier active versions remembered per file, for rollback


def current_versions(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """Key -> version id of every file now present under the prefix (deleted ones left out)."""
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            if v.get("IsLatest"):
                out[v["Key"]] = v.get("VersionId") or "null"
    return out


def read_manifest(s3: Any, bucket: str, key: str) -> tuple[dict[str, Any], str | None]:
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return {"files": {}}, None
    return json.loads(response["Body"].read()), response["ETag"]


def write_manifest(s3: Any, bucket: str, key: str, manifest: dict[str, Any], etag: str | None) -> bool:
    """Conditional write; False when someone else wrote the manifest since we read it."""
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
            **condition,
        )
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
            return False
        raise
    return True


def list_folders(s3: Any, bucket: str, owner: str | None = None) -> list[tuple[str, str]]:
    """(owner, name) of every template folder, optionally of one store."""
    prefix = f"templates/{owner}/" if owner else "templates/"
    out: set[tuple[str, str]] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            m = TEMPLATE_KEY.match(obj["Key"])
            if m:
                out.add((m["owner"], m["name"]))
    return sorted(out)


def rollback(
    s3: Any, bucket: str, owner: str, name: str, *, file: str | None = None, to: str | None = None
) -> tuple[str, str, str]:
    """Publish an earlier version of a file again: a copy becomes the newest version and is
    validated like any upload, so the bucket's newest version is the one in force again.

    Default file: one whose newest upload was not activated (a rejected edit), else the file
    activated last. Default version: for a rejected edit, the version still in force (the broken
    upload is undone); otherwise the version that was active before the current one.
    Returns (key, restored version id, new version id).
    """
    prefix = folder_prefix(owner, name)
    manifest, _ = read_manifest(s3, bucket, manifest_key(owner, name))
    files = manifest.get("files", {})
    latest: dict[str, tuple[str, Any]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            if v.get("IsLatest"):
                latest[v["Key"][len(prefix) :]] = (v.get("VersionId") or "null", v["LastModified"])
    if file is None:
        not_active = [f for f, (vid, _) in latest.items() if files.get(f, {}).get("version_id") != vid]
        if not_active:
            file = max(not_active, key=lambda f: (latest[f][1], f))
        elif files:
            file = max(files, key=lambda f: (files[f].get("seq", 0), files[f].get("activated_at", "")))
        else:
            raise ValueError(f"{prefix} has no files to roll back")
    entry = files.get(file) or {}
    if to is None:
        newest = latest.get(file, (None, None))[0]
        if entry.get("version_id") and entry["version_id"] != newest:
            to = entry["version_id"]  # undo the rejected upload: the version in force becomes newest
        elif entry.get("previous"):
            to = entry["previous"][-1]
        else:
            raise ValueError(
                f"{prefix}{file}: no earlier active version to go back to; give --to VERSION_ID "
                f"(see `boomerang templates list`) or delete the file to use the default template"
            )
    key = prefix + file
    copied = s3.copy_object(
        Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": to}
    )
    return key, to, copied.get("VersionId") or "null"
