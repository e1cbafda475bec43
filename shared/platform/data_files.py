"""Marketer-edited YAML files in the templates bucket (journeys/, segments/): one reader for both.

- `read_mapping` + `validation_problems`: a file's text to a mapping, and pydantic's errors to
  (line, "field: problem") pairs a marketer can act on.
- `VersionedFiles`: a store's files from S3, ``<prefix>_default/<id>.yaml`` overridden by
  ``<prefix><store>/<id>.yaml``, each at its newest version that parses. A marketer's typo never
  stops what runs: the bucket is versioned, so the last good version stays in force, and the
  rejected ones are logged once with their lines (and reported by the validator on upload).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import yaml
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from shared.platform.lru import Lru

DEFAULT_STORE = "_default"
MAX_FILE_BYTES = 256 * 1024
MAX_VERSIONS_TRIED = 20
log = logging.getLogger("boomerang")

Problem = tuple[int | None, str]  # (line, message)
T = TypeVar("T")


class DataFileError(Exception):
    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(f"line {ln}: {m}" if ln else m for ln, m in problems))


def line_map(text: str) -> dict[tuple[Any, ...], int]:
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


def line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    # pydantic adds union/tag names to a location; drop trailing parts until a real node is found
    path = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-", "literal[")))
    path = tuple("from" if p == "from_" else p for p in path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def where(loc: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def validation_problems(
    exc: ValidationError,
    lines: dict[tuple[Any, ...], int],
    kind: str,
    special: Callable[[str, dict[str, Any]], str | None] = lambda where_, err: None,
) -> list[Problem]:
    """pydantic's errors as (line, "field: problem"), sorted by line; `special(where, error)` may
    word a message better for a given field or error type."""
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
        at = where(tuple(path)) or "file"
        if err["type"] == "extra_forbidden":
            msg = f"unknown field (check the spelling; see the README for the {kind} file format)"
        else:
            msg = special(at, dict(err)) or err["msg"].removeprefix("Value error, ")
        found.setdefault(at + msg, (line_for(lines, tuple(path)), f"{at}: {msg}"))
    return sorted(found.values(), key=lambda p: (p[0] or 0, p[1]))


def read_mapping(
    text: str | bytes,
    source: str,
    error: type[DataFileError],
    *,
    shape: str,
    expected_id: str | None,
    default_id: str,
) -> tuple[str, dict[str, Any]]:
    """A file's text and its YAML mapping, with `id` set from the file name (its id)."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise error(source, [(None, f"larger than {MAX_FILE_BYTES} bytes")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(source, [(None, "not UTF-8 text")]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error(source, [(line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    if not isinstance(data, dict):
        raise error(source, [(1, shape)])
    if expected_id is not None and data.get("id") not in (None, expected_id):
        raise error(
            source,
            [
                (
                    line_map(text).get(("id",)),
                    f"id is {data.get('id')!r} but the file is named {expected_id}.yaml",
                )
            ],
        )
    # the file's name is its id; a file checked on its own (the upload validator) may not know it
    data.setdefault("id", expected_id or default_id)
    return text, data


@dataclass
class Loaded(Generic[T]):
    item: T | None  # None: turned off for this store
    key: str
    version_id: str | None
    rejected: list[tuple[str | None, list[Problem]]] = field(default_factory=list)  # newer, invalid


class VersionedFiles(Generic[T]):
    """A store's files under `prefix` from S3, cached for `ttl_seconds` (an edit shows within it)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str,
        parse: Callable[[bytes, str, str], T],
        enabled: Callable[[T], bool],
        kind: str,
        ttl_seconds: float = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._parse = parse  # (body, source, expected id) -> item, or raises DataFileError
        self._enabled = enabled
        self._kind = kind
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: Lru[str, tuple[float, dict[str, Loaded[T]]]] = Lru(256)  # stores
        # key -> (ETag, what it held): a reload whose listing shows the same ETag reads nothing more
        self._files: Lru[str, tuple[str, Loaded[T] | None]] = Lru(4096)  # files by key, across stores
        self._reported: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()

    def load(self, store_id: str) -> dict[str, Loaded[T]]:
        """id -> the file in force for the store (the store's own file wins over the default)."""
        now = self._clock()
        with self._lock:
            hit = self._cache.get(store_id)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        found: dict[str, Loaded[T]] = {}
        for owner in (DEFAULT_STORE, store_id):
            for key, etag in self._keys(f"{self._prefix}{owner}/"):
                name = key.rsplit("/", 1)[-1].removesuffix(".yaml")
                with self._lock:
                    known = self._files.get(key)
                if known is not None and known[0] == etag:
                    if known[1] is not None:
                        found[name] = known[1]
                    continue
                try:
                    loaded = self._load_file(key, name)
                except (BotoCoreError, ClientError):
                    # S3 unavailable: fail so the caller is retried; never read as "no such file",
                    # which would end running journeys or empty segments
                    raise
                except Exception:  # one unreadable file never takes the store's others down
                    log.exception(f"{self._kind} file could not be loaded; skipped", extra={"key": key})
                    continue
                with self._lock:
                    self._files[key] = (etag, loaded)
                if loaded is not None:
                    found[name] = loaded
        with self._lock:
            self._cache[store_id] = (now, found)
        return found

    def forget(self) -> None:
        """Drop what is cached: the next read sees the bucket as it is now."""
        with self._lock:
            self._cache.clear()
            self._files.clear()

    def _keys(self, prefix: str) -> list[tuple[str, str]]:
        """(key, ETag) of the files directly under `prefix`."""
        keys: list[tuple[str, str]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys += [
                (o["Key"], str(o.get("ETag", "")))
                for o in page.get("Contents", [])
                if o["Key"].endswith(".yaml") and "/" not in o["Key"][len(prefix) :]
            ]
        return sorted(keys)

    def _load_file(self, key: str, name: str) -> Loaded[T] | None:
        """The newest version of the file that parses; newer broken ones are reported, not used."""
        rejected: list[tuple[str | None, list[Problem]]] = []
        for version_id, body in self._versions(key):
            try:
                item = self._parse(body, f"s3://{self._bucket}/{key}", name)
            except DataFileError as exc:
                rejected.append((version_id, exc.problems))
                self._report(key, version_id, exc)
                continue
            return Loaded(item if self._enabled(item) else None, key, version_id, rejected)
        if rejected:
            log.error(f"{self._kind} file has no valid version; not using it", extra={"key": key})
        return None

    def _versions(self, key: str) -> Iterator[tuple[str | None, bytes]]:
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

    def _report(self, key: str, version_id: str | None, exc: DataFileError) -> None:
        with self._lock:
            if (key, version_id) in self._reported:
                return
            self._reported.add((key, version_id))
        log.error(
            f"{self._kind} file rejected; the last valid version stays in force",
            extra={"key": key, "version_id": version_id, "problems": [list(p) for p in exc.problems]},
        )
