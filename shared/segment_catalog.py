"""Segment files in the templates bucket: parsed, validated with line numbers, last good version kept.

Layout as for journeys: ``segments/<store_id>/<segment>.yaml`` overrides
``segments/_default/<segment>.yaml`` (the shipped defaults, deployed from infra/segments/); a file
holding ``enabled: false`` turns a default off. A broken newer version never replaces the last one
that validated (the bucket is versioned); its problems are logged with their lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from shared.journey_catalog import MAX_FILE_BYTES, MAX_VERSIONS_TRIED, Problem, _line_for, _line_map
from shared.segments import MAX_SEGMENTS, Segment

PREFIX = "segments/"
DEFAULT_STORE = "_default"
log = logging.getLogger("boomerang")


class SegmentFileError(Exception):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(f"line {ln}: {m}" if ln else m for ln, m in problems))


def _problems(exc: ValidationError, lines: dict[tuple[Any, ...], int]) -> list[Problem]:
    found: dict[str, Problem] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        path: list[Any] = []
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(part, int) or (*path, part) in lines or (last and err["type"] == "missing"):
                path.append(part)
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
        where = where or "file"
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see the README for the segment file format)"
        elif err["type"] == "literal_error":
            msg = err["msg"]
        else:
            msg = err["msg"].removeprefix("Value error, ")
        found.setdefault(where + msg, (_line_for(lines, tuple(path)), f"{where}: {msg}"))
    return sorted(found.values(), key=lambda p: (p[0] or 0, p[1]))


def parse(text: str | bytes, source: str = "segment file", expected_id: str | None = None) -> Segment:
    """A segment file -> Segment, or SegmentFileError listing every problem with its line."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise SegmentFileError(source, [(None, f"larger than {MAX_FILE_BYTES} bytes")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SegmentFileError(source, [(None, "not UTF-8 text")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise SegmentFileError(source, [(line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    if not isinstance(data, dict):
        raise SegmentFileError(source, [(1, "a segment file is a mapping (name:, lifecycle:, ...)")])
    if expected_id is not None and data.get("id") not in (None, expected_id):
        lines = _line_map(text)
        raise SegmentFileError(
            source,
            [(lines.get(("id",)), f"id is {data.get('id')!r} but the file is named {expected_id}.yaml")],
        )
    data.setdefault("id", expected_id or "segment")
    if data.get("enabled", True) is False:
        data = {"id": data["id"], "enabled": False}
    try:
        return Segment.model_validate(data)
    except ValidationError as exc:
        raise SegmentFileError(source, _problems(exc, _line_map(text))) from exc


def problems(text: str | bytes, key: str | None = None) -> list[Problem]:
    """What a linter reports for a segment file: [] when it is good."""
    name = key.rsplit("/", 1)[-1].removesuffix(".yaml") if key else None
    try:
        parse(text, key or "segment file", expected_id=name)
    except SegmentFileError as exc:
        return exc.problems
    return []


class SegmentCatalog:
    """A store's segment definitions from S3, cached briefly (an edit shows within the TTL)."""

    def __init__(
        self, s3: Any, bucket: str, ttl_seconds: float = 60, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, list[Segment]]] = {}
        self._reported: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()

    def segments(self, store_id: str) -> list[Segment]:
        """Every enabled segment of a store (at most MAX_SEGMENTS, by id)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(store_id)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        found: dict[str, Segment | None] = {}
        for owner in (DEFAULT_STORE, store_id):  # the store's own files win
            for key in self._keys(f"{PREFIX}{owner}/"):
                name = key.rsplit("/", 1)[-1].removesuffix(".yaml")
                try:
                    found[name] = self._load_file(key, name)
                except (BotoCoreError, ClientError):
                    # S3 unavailable: fail (the fold or step is retried); never read as "no segment",
                    # which would take every customer out of it
                    raise
                except Exception:  # one unreadable file never takes the store's other segments down
                    log.exception("segment file could not be loaded; skipped", extra={"key": key})
        enabled = sorted((s for s in found.values() if s is not None and s.enabled), key=lambda s: s.id)
        if len(enabled) > MAX_SEGMENTS:
            log.error(
                "too many segments; the first ones by id are used",
                extra={"store": store_id, "count": len(enabled), "max": MAX_SEGMENTS},
            )
            enabled = enabled[:MAX_SEGMENTS]
        with self._lock:
            self._cache[store_id] = (now, enabled)
        return enabled

    def get(self, store_id: str, segment_id: str) -> Segment | None:
        return next((s for s in self.segments(store_id) if s.id == segment_id), None)

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys += [
                o["Key"]
                for o in page.get("Contents", [])
                if o["Key"].endswith(".yaml") and "/" not in o["Key"][len(prefix) :]
            ]
        return sorted(keys)

    def _load_file(self, key: str, name: str) -> Segment | None:
        for version_id, body in self._versions(key):
            try:
                return parse(body, f"s3://{self._bucket}/{key}", expected_id=name)
            except SegmentFileError as exc:
                self._report(key, version_id, exc)
        log.error("segment file has no valid version; not using it", extra={"key": key})
        return None

    def _versions(self, key: str) -> Iterator[tuple[str | None, bytes]]:
        resp = self._s3.get_object(Bucket=self._bucket, Key=key)
        latest = resp.get("VersionId")
        yield latest, resp["Body"].read()
        if latest in (None, "null"):
            return
        tried = 1
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=key):
            for v in page.get("Versions", []):
                if v["Key"] != key or v["VersionId"] == latest:
                    continue
                if tried >= MAX_VERSIONS_TRIED:
                    return
                tried += 1
                body = self._s3.get_object(Bucket=self._bucket, Key=key, VersionId=v["VersionId"])["Body"]
                yield v["VersionId"], body.read()

    def _report(self, key: str, version_id: str | None, exc: SegmentFileError) -> None:
        with self._lock:
            if (key, version_id) in self._reported:
                return
            self._reported.add((key, version_id))
        log.error(
            "segment file rejected; the last valid version stays in force",
            extra={"key": key, "version_id": version_id, "problems": [list(p) for p in exc.problems]},
        )
