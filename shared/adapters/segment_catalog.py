"""Segment files in the templates bucket: parsed, validated with line numbers, last good version kept.

Layout as for journeys: ``segments/<store_id>/<segment>.yaml`` overrides
``segments/_default/<segment>.yaml`` (the shipped defaults, deployed from infra/segments/); a file
holding ``enabled: false`` turns a default off. A broken newer version never replaces the last one
that validated (the bucket is versioned); its problems are logged with their lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.domain.segments import MAX_SEGMENTS, Segment
from shared.platform.data_files import (
    DEFAULT_STORE,
    DataFileError,
    Problem,
    VersionedFiles,
    line_map,
    read_mapping,
    validation_problems,
)
from shared.platform.lru import Lru

PREFIX = "segments/"
__all__ = ["DEFAULT_STORE", "PREFIX", "SegmentCatalog", "SegmentFileError", "parse", "problems"]
log = logging.getLogger("boomerang")


class SegmentFileError(DataFileError):
    pass


def parse(text: str | bytes, source: str = "segment file", expected_id: str | None = None) -> Segment:
    """A segment file -> Segment, or SegmentFileError listing every problem with its line."""
    text, data = read_mapping(
        text,
        source,
        SegmentFileError,
        shape="a segment file is a mapping (name:, lifecycle:, ...)",
        expected_id=expected_id,
        default_id="segment",
    )
    if data.get("enabled", True) is False:
        data = {"id": data["id"], "enabled": False}
    try:
        return Segment.model_validate(data)
    except ValidationError as exc:
        raise SegmentFileError(source, validation_problems(exc, line_map(text), "segment")) from exc


def problems(text: str | bytes, key: str | None = None) -> list[Problem]:
    """What a linter reports for a segment file: [] when it is good."""
    name = key.rsplit("/", 1)[-1].removesuffix(".yaml") if key else None
    try:
        parse(text, key or "segment file", expected_id=name)
    except SegmentFileError as exc:
        return exc.problems
    return []


class SegmentCatalog:
    """A store's segment definitions from S3 (shared.data_files.VersionedFiles), cached briefly."""

    def __init__(
        self, s3: Any, bucket: str, ttl_seconds: float = 60, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._files: VersionedFiles[Segment] = VersionedFiles(
            s3,
            bucket,
            PREFIX,
            lambda body, source, name: parse(body, source, expected_id=name),
            lambda segment: segment.enabled,
            "segment",
            ttl_seconds,
            clock=clock,
        )
        self._lists: Lru[str, tuple[dict[str, Any], list[Segment]]] = Lru(256)  # stores

    def segments(self, store_id: str) -> list[Segment]:
        """Every enabled segment of a store (at most MAX_SEGMENTS, by id)."""
        loaded = self._files.load(store_id)
        cached = self._lists.get(store_id)
        if cached is not None and cached[0] is loaded:  # the same load: sorted and logged once
            return cached[1]
        enabled = sorted((e.item for e in loaded.values() if e.item is not None), key=lambda s: s.id)
        if len(enabled) > MAX_SEGMENTS:
            log.error(
                "too many segments; the first ones by id are used",
                extra={"store": store_id, "count": len(enabled), "max": MAX_SEGMENTS},
            )
            enabled = enabled[:MAX_SEGMENTS]
        self._lists[store_id] = (loaded, enabled)
        return enabled

    def get(self, store_id: str, segment_id: str) -> Segment | None:
        return next((s for s in self.segments(store_id) if s.id == segment_id), None)
