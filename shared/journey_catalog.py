"""Journey files in the templates bucket: parsed, validated with line numbers, last good version kept.

Layout: ``journeys/<store_id>/<journey>.yaml`` overrides ``journeys/_default/<journey>.yaml`` (the
shipped defaults, deployed from infra/journeys/). A store turns a default off with a file holding
``enabled: false``.

A marketer's typo must never stop running journeys: when the newest version of a file does not
validate, the newest older version that does stays in force (the bucket is versioned), and the
problems are logged with their line numbers (and reported by the validator on upload).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from shared.journeys import BUILT_IN, Journey

PREFIX = "journeys/"
DEFAULT_STORE = "_default"
MAX_FILE_BYTES = 256 * 1024
MAX_VERSIONS_TRIED = 20
log = logging.getLogger("boomerang")

Problem = tuple[int | None, str]  # (line, message)


class JourneyFileError(Exception):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(f"line {ln}: {m}" if ln else m for ln, m in problems))


def _line_map(text: str) -> dict[tuple[Any, ...], int]:
    """Path of every node (mapping keys and list indexes) -> its 1-based line."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                name = k.value
                lines[(*path, name)] = k.start_mark.line + 1
                walk(v, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, i))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    # pydantic adds union/tag names to a location; drop trailing parts until a real node is found
    path = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-", "literal[")))
    path = tuple("from" if p == "from_" else p for p in path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _problems(exc: ValidationError, lines: dict[tuple[Any, ...], int]) -> list[Problem]:
    found: dict[str, Problem] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        # keep the parts that are places in the file; drop pydantic's union-branch names
        path: list[Any] = []
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(part, int) or (*path, part) in lines or (last and err["type"] == "missing"):
                path.append(part)
            elif (*path, "from") in lines and part == "from_":
                path.append("from")
        where = _where(tuple(path)) or "file"
        if where == "re_entry":
            msg = "use once, every-time, or once_per_days: N"
        elif err["type"] == "string_pattern_mismatch":
            msg = "use lowercase letters, digits and dashes (e.g. email-1)"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see the README for the journey file format)"
        found.setdefault(where + msg, (_line_for(lines, tuple(path)), f"{where}: {msg}"))
    return sorted(found.values(), key=lambda p: (p[0] or 0, p[1]))


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def parse(text: str | bytes, source: str = "journey file", expected_id: str | None = None) -> Journey:
    """A journey file -> Journey, or JourneyFileError listing every problem with its line."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise JourneyFileError(source, [(None, f"larger than {MAX_FILE_BYTES} bytes")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JourneyFileError(source, [(None, "not UTF-8 text")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise JourneyFileError(source, [(line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    if not isinstance(data, dict):
        raise JourneyFileError(source, [(1, "a journey file is a mapping (id:, trigger:, steps: ...)")])
    if expected_id is not None and data.get("id") not in (None, expected_id):
        lines = _line_map(text)
        raise JourneyFileError(
            source,
            [(lines.get(("id",)), f"id is {data.get('id')!r} but the file is named {expected_id}.yaml")],
        )
    # the file's name is its id; a file checked on its own (the upload validator) may not know it
    data.setdefault("id", expected_id or "journey")
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
        raise JourneyFileError(source, _problems(exc, _line_map(text))) from exc
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
    lines = _line_map(source)
    found = [
        (
            _line_for(lines, loc),
            f"{_where(loc)}: no segment {sid!r} in this store (segments: {', '.join(sorted(have)) or 'none'})",
        )
        for loc, sid in named
        if sid not in have
    ]
    return sorted(found, key=lambda p: p[0] or 0)


@dataclass
class Loaded:
    journey: Journey | None  # None: turned off for this store
    key: str
    version_id: str | None
    rejected: list[tuple[str | None, list[Problem]]] = field(default_factory=list)  # newer, invalid


class JourneyCatalog:
    """A store's journeys from S3, cached briefly (a marketer's edit shows within the TTL)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        ttl_seconds: float = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Loaded]]] = {}
        self._reported: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()

    def journeys(self, store_id: str) -> list[Journey]:
        """Every enabled journey of a store (defaults overridden or turned off by the store's files)."""
        return [entry.journey for entry in self._load(store_id).values() if entry.journey is not None]

    def get(self, store_id: str, journey_id: str) -> Journey | None:
        if journey_id in BUILT_IN:
            return BUILT_IN[journey_id]
        entry = self._load(store_id).get(journey_id)
        return entry.journey if entry else None

    def loaded(self, store_id: str) -> dict[str, Loaded]:
        return dict(self._load(store_id))

    def _load(self, store_id: str) -> dict[str, Loaded]:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(store_id)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        found: dict[str, Loaded] = {}
        for owner in (DEFAULT_STORE, store_id):  # the store's own files win
            for key in self._keys(f"{PREFIX}{owner}/"):
                name = key.rsplit("/", 1)[-1].removesuffix(".yaml")
                try:
                    loaded = self._load_file(key, name)
                except (BotoCoreError, ClientError):
                    raise  # S3 unavailable: fail the step so it is retried; never read as "no journey"
                except Exception:  # one unreadable file never takes the store's other journeys down
                    log.exception("journey file could not be loaded; skipped", extra={"key": key})
                    continue
                if loaded is not None:
                    found[name] = loaded
        with self._lock:
            self._cache[store_id] = (now, found)
        return found

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys += [
                o["Key"]
                for o in page.get("Contents", [])
                if o["Key"].endswith(".yaml") and "/" not in o["Key"][len(prefix) :]
            ]
        return sorted(keys)

    def _load_file(self, key: str, name: str) -> Loaded | None:
        """The newest version of the file that validates; newer broken ones are reported, not used."""
        rejected: list[tuple[str | None, list[Problem]]] = []
        for version_id, body in self._versions(key):
            try:
                journey = parse(body, f"s3://{self._bucket}/{key}", expected_id=name)
            except JourneyFileError as exc:
                rejected.append((version_id, exc.problems))
                self._report(key, version_id, exc)
                continue
            return Loaded(journey if journey.enabled else None, key, version_id, rejected)
        if rejected:
            log.error("journey file has no valid version; not running it", extra={"key": key})
        return None

    def _versions(self, key: str) -> Any:
        resp = self._s3.get_object(Bucket=self._bucket, Key=key)
        latest = resp.get("VersionId")
        yield latest, resp["Body"].read()
        if latest in (None, "null"):
            return  # an unversioned bucket keeps no history to fall back to
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

    def _report(self, key: str, version_id: str | None, exc: JourneyFileError) -> None:
        with self._lock:
            if (key, version_id) in self._reported:
                return
            self._reported.add((key, version_id))
        log.error(
            "journey file rejected; the last valid version stays in force",
            extra={"key": key, "version_id": version_id, "problems": [list(p) for p in exc.problems]},
        )
