"""Journey files in the templates bucket: parsed, validated with line numbers, last good version kept.

Layout: ``journeys/<store_id>/<journey>.yaml`` overrides ``journeys/_default/<journey>.yaml`` (the
shipped defaults, deployed from infra/journeys/). A store turns a default off with a file holding
``enabled: false``.

A marketer's typo must never stop running journeys: when the newest version of a file does not
validate, the newest older version that does stays in force (the bucket is versioned), and the
problems are logged with their line numbers (and reported by the validator on upload).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.domain.journeys import BUILT_IN, Journey
from shared.platform.data_files import (
    DEFAULT_STORE,
    MAX_FILE_BYTES,
    MAX_VERSIONS_TRIED,
    DataFileError,
    Loaded,
    Problem,
    VersionedFiles,
    line_for,
    line_map,
    read_mapping,
    validation_problems,
    where,
)

PREFIX = "journeys/"
__all__ = [  # the file limits and types come from shared.platform.data_files (one reader for journeys and segments)
    "DEFAULT_STORE",
    "MAX_FILE_BYTES",
    "MAX_VERSIONS_TRIED",
    "PREFIX",
    "JourneyCatalog",
    "JourneyFileError",
    "Loaded",
    "Problem",
    "parse",
    "problems",
    "segment_problems",
]


class JourneyFileError(DataFileError):
    pass


def _special(at: str, err: dict[str, Any]) -> str | None:
    if at == "re_entry":
        return "use once, every-time, or once_per_days: N"
    if err["type"] == "string_pattern_mismatch":
        return "use lowercase letters, digits and dashes (e.g. email-1)"
    return None


def parse(text: str | bytes, source: str = "journey file", expected_id: str | None = None) -> Journey:
    """A journey file -> Journey, or JourneyFileError listing every problem with its line."""
    text, data = read_mapping(
        text,
        source,
        JourneyFileError,
        shape="a journey file is a mapping (id:, trigger:, steps: ...)",
        expected_id=expected_id,
        default_id="journey",
    )
    if data.get("enabled", True) is False:
        # a store turning a default journey off needs nothing else in the file
        data = {
            "id": data["id"],
            "enabled": False,
            "trigger": {"event": "Signed Up"},
            "steps": [{"id": "off", "template": "off"}],
        }
    try:
        journey = Journey.model_validate(data)
    except ValidationError as exc:
        raise JourneyFileError(source, validation_problems(exc, line_map(text), "journey", _special)) from exc
    if journey.id in BUILT_IN:
        raise JourneyFileError(source, [(None, f"{journey.id} is built in and cannot be replaced")])
    return journey


def problems(text: str | bytes, key: str | None = None) -> list[Problem]:
    """What the upload validator reports for a journey file: [] when it is good. With the object's
    key (journeys/<store>/<id>.yaml) the id is checked against the file name too."""
    name = key.rsplit("/", 1)[-1].removesuffix(".yaml") if key else None
    try:
        parse(text, key or "journey file", expected_id=name)
    except JourneyFileError as exc:
        return exc.problems
    return []


def segment_problems(text: str | bytes, known: Callable[[], set[str]]) -> list[Problem]:
    """A valid journey file naming a segment its store does not have (`known()`: the store's enabled
    segment ids): an entry no one can pass, or a broadcast to no one. [] when all exist."""
    source = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    try:
        journey = parse(source)
    except JourneyFileError:
        return []  # reported by problems()
    named: list[tuple[tuple[Any, ...], str]] = []
    if journey.entry.segment:
        named.append((("entry", "segment"), journey.entry.segment))
    named += [(("entry", "segments_any", i), s) for i, s in enumerate(journey.entry.segments_any)]
    if journey.trigger.broadcast is not None:
        named.append((("trigger", "broadcast", "segment"), journey.trigger.broadcast.segment))
    if not named:
        return []
    have = known()
    lines = line_map(source)
    found = [
        (
            line_for(lines, loc),
            f"{where(loc)}: no segment {sid!r} in this store (segments: {', '.join(sorted(have)) or 'none'})",
        )
        for loc, sid in named
        if sid not in have
    ]
    return sorted(found, key=lambda p: p[0] or 0)


class JourneyCatalog:
    """A store's journeys from S3 (shared.data_files.VersionedFiles), cached briefly (a marketer's
    edit shows within the TTL)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        ttl_seconds: float = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._files: VersionedFiles[Journey] = VersionedFiles(
            s3,
            bucket,
            PREFIX,
            lambda body, source, name: parse(body, source, expected_id=name),
            lambda journey: journey.enabled,
            "journey",
            ttl_seconds,
            clock=clock,
        )

    def journeys(self, store_id: str) -> list[Journey]:
        """Every enabled journey of a store (defaults overridden or turned off by the store's files)."""
        return [entry.item for entry in self._files.load(store_id).values() if entry.item is not None]

    def get(self, store_id: str, journey_id: str) -> Journey | None:
        if journey_id in BUILT_IN:
            return BUILT_IN[journey_id]
        entry = self._files.load(store_id).get(journey_id)
        return entry.item if entry else None

    def loaded(self, store_id: str) -> dict[str, Loaded[Journey]]:
        return dict(self._files.load(store_id))

    def forget(self) -> None:
        self._files.forget()
