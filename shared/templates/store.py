"""Message templates in S3: where they live and which version of each file is in force.

Storage (S3, versioned bucket)
    ``templates/<store_id>/<name>/`` holds a template in the store's default locale:
    email ``subject.txt``, ``body.html`` (or ``body.mjml``), ``body.txt``; SMS ``sms.txt`` (optional
    ``sms.json`` ``{"max_segments": N}``); push ``push_title.txt``, ``push_body.txt`` (optional
    ``push_link.txt``). ``templates/<store_id>/<name>/<locale>/`` (``pl``, ``pt-BR``, ``zh-CN``...)
    holds translations with the same file names. ``templates/<store_id>/_layout/`` holds the optional
    shared layout (``layout.html`` or ``layout.mjml``, ``layout.txt``) that bodies extend with
    ``{% extends "layout.html" %}``. ``templates/_default/`` ships with Boomerang.

Which version is sent
    Only *active* versions. The validator (shared/templates/publish.py) checks each upload and
    records the versions in force in ``active/templates/<store_id>/<name>.json``; an upload that
    fails its checks never becomes active, so the previous version keeps being sent. Each channel
    resolves on its own: the customer's locale, then its language (``pt`` for ``pt-BR``), then the
    folder root (the store's default locale); first the store's folder, then ``_default``.

How a template renders is shared/templates/render.py; what a folder holds, shared/templates/model.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from shared.platform.lru import Lru
from shared.templates.model import (
    CHANNEL_FILES,
    DEFAULT_STORE,
    LAYOUT,
    LAYOUT_FILES,
    MJML_BODY,
    EmailTemplate,
    PushTemplate,
    SmsTemplate,
    TemplateError,
    WebPushTemplate,
    locale_chain,
    sms_segments_budget,
)

ACTIVE_PREFIX = "active/"  # active/templates/<store>/<name>.json

_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # keeps store ids and names inside their prefix
_MAX_TEMPLATE_BYTES = 512 * 1024
_VERSIONS_MAX = 512


def _check_id(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise ValueError(f"invalid template {kind}: {value!r}")


def folder_prefix(owner: str, name: str) -> str:
    return f"templates/{owner}/{name}/"


def manifest_key(owner: str, name: str) -> str:
    return f"{ACTIVE_PREFIX}templates/{owner}/{name}.json"


class TemplateStore:
    """Reads the active versions of templates from S3.

    The record of which versions are active is cached for ``ttl_seconds`` (how long a marketer's
    validated edit takes to show up); a version's text never changes, so it is cached by version id.
    ``active_only=False`` reads the newest object of each file instead (tests and tools that put
    files straight into a bucket without the validator).
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        ttl_seconds: float = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
        active_only: bool = True,
    ) -> None:
        self._s3 = s3_client
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._clock = clock
        self.active_only = active_only
        # per (store, template): a few hundred templates across stores stay warm
        self._manifests: Lru[tuple[str, str], tuple[float, dict[str, Any] | None]] = Lru(1024)
        self._latest: Lru[str, tuple[float, str | None]] = Lru(1024)
        self._versions: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()  # the local emulator calls handlers from several threads

    def clear(self) -> None:
        with self._lock:
            self._manifests.clear()
            self._latest.clear()

    # -- public: one channel's template ------------------------------------------------------------
    def email(self, store_id: str, name: str, *, locale: str | None = None) -> EmailTemplate:
        files, origin, loc = self._resolve(store_id, name, "email", locale)
        mjml = files.get(MJML_BODY) is not None
        return EmailTemplate(
            name=name,
            subject=files["subject.txt"] or "",
            html=(files[MJML_BODY] if mjml else files.get("body.html")) or "",
            text=files["body.txt"] or "",
            origin=origin,
            locale=loc,
            layouts=self.layouts(store_id, locale=loc or locale),
            mjml=mjml,
        )

    def sms(self, store_id: str, name: str, *, locale: str | None = None) -> SmsTemplate:
        files, origin, loc = self._resolve(store_id, name, "sms", locale)
        return SmsTemplate(
            name=name,
            body=files["sms.txt"] or "",
            max_segments=sms_segments_budget(files.get("sms.json"), name),
            origin=origin,
            locale=loc,
        )

    def push(self, store_id: str, name: str, *, locale: str | None = None) -> PushTemplate:
        files, origin, loc = self._resolve(store_id, name, "push", locale)
        return PushTemplate(
            name=name,
            title=files["push_title.txt"] or "",
            body=files["push_body.txt"] or "",
            link=files.get("push_link.txt"),
            origin=origin,
            locale=loc,
        )

    def webpush(self, store_id: str, name: str, *, locale: str | None = None) -> WebPushTemplate:
        files, origin, loc = self._resolve(store_id, name, "webpush", locale)
        return WebPushTemplate(
            name=name,
            title=files["webpush_title.txt"] or "",
            body=files["webpush_body.txt"] or "",
            link=files.get("webpush_link.txt"),
            icon=files.get("webpush_icon.txt"),
            image=files.get("webpush_image.txt"),
            origin=origin,
            locale=loc,
        )

    def layouts(self, store_id: str, *, locale: str | None = None) -> dict[str, str]:
        """The shared layout files (store's, else the default's), each resolved by locale."""
        out: dict[str, str] = {}
        for file in LAYOUT_FILES:
            for owner, sub in self._candidates(store_id, locale):
                body = self._file(owner, LAYOUT, sub + file)
                if body is not None:
                    out[file] = body
                    break
        return out

    # -- resolution --------------------------------------------------------------------------------
    @staticmethod
    def _candidates(store_id: str, locale: str | None) -> Iterator[tuple[str, str]]:
        for owner in dict.fromkeys((store_id, DEFAULT_STORE)):
            for loc in locale_chain(locale):
                yield owner, f"{loc}/" if loc else ""

    def _resolve(
        self, store_id: str, name: str, channel: str, locale: str | None
    ) -> tuple[dict[str, str | None], str, str | None]:
        _check_id("store id", store_id)
        _check_id("name", name)
        required, optional = CHANNEL_FILES[channel]
        for owner, sub in self._candidates(store_id, locale):
            found = {f: self._file(owner, name, sub + f) for f in (*required, *optional)}
            present = [f for f, v in found.items() if v is not None and f in required]
            if not present and not (channel == "email" and (found["body.html"] or found[MJML_BODY])):
                continue
            missing = [f for f in required if found[f] is None]
            if channel == "email" and found["body.html"] is None and found[MJML_BODY] is None:
                missing.append("body.html")
            if missing:
                # Only reachable without the validator (it never activates half a channel).
                raise TemplateError(
                    f"incomplete template in s3://{self._bucket}/{folder_prefix(owner, name)}{sub}: "
                    f"missing {', '.join(missing)}",
                    template=name,
                )
            origin = f"s3://{self._bucket}/{folder_prefix(owner, name)}{sub}"
            return found, origin, sub.rstrip("/") or None
        what = "active " if self.active_only else ""
        raise TemplateError(
            f"no {what}{channel} template in s3://{self._bucket}/templates/{store_id}/{name}/ "
            f"nor templates/{DEFAULT_STORE}/{name}/",
            template=name,
        )

    def _file(self, owner: str, name: str, relpath: str) -> str | None:
        key = folder_prefix(owner, name) + relpath
        if not self.active_only:
            return self._latest_text(key)
        manifest = self.manifest(owner, name)
        entry = (manifest or {}).get("files", {}).get(relpath)
        if not entry:
            return None
        return self._version_text(key, entry.get("version_id"))

    def manifest(self, owner: str, name: str) -> dict[str, Any] | None:
        """The active-versions record of a template folder (None: nothing validated there yet)."""
        cache_key = (owner, name)
        now = self._clock()
        with self._lock:
            hit = self._manifests.get(cache_key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        raw = self._get(manifest_key(owner, name))
        manifest = json.loads(raw) if raw else None
        with self._lock:
            self._manifests[cache_key] = (now, manifest)
        return manifest

    def _latest_text(self, key: str) -> str | None:
        now = self._clock()
        with self._lock:
            hit = self._latest.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        text = self._get(key)
        with self._lock:
            self._latest[key] = (now, text)
        return text

    def _version_text(self, key: str, version_id: str | None) -> str | None:
        if not version_id or version_id == "null":  # an unversioned bucket has one version
            return self._latest_text(key)
        cache_key = (key, version_id)
        with self._lock:
            if cache_key in self._versions:
                self._versions.move_to_end(cache_key)
                return self._versions[cache_key]
        text = self._get(key, version_id)
        if text is None:
            raise TemplateError(f"active version {version_id} of s3://{self._bucket}/{key} is gone")
        with self._lock:
            self._versions[cache_key] = text
            while len(self._versions) > _VERSIONS_MAX:
                self._versions.popitem(last=False)
        return text

    def _get(self, key: str, version_id: str | None = None) -> str | None:
        return read_object(self._s3, self._bucket, key, version_id)


def read_object(s3: Any, bucket: str, key: str, version_id: str | None = None) -> str | None:
    """An object's text (UTF-8, at most 512 KB); None when it does not exist."""
    args = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    try:
        response = s3.get_object(**args)
    except s3.exceptions.NoSuchKey:
        return None
    except Exception as exc:
        # Without s3:ListBucket a missing key answers 403, which we must not read as "absent".
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("404", "NotFound", "NoSuchVersion"):
            return None
        raise
    body: bytes = response["Body"].read(_MAX_TEMPLATE_BYTES + 1)
    if len(body) > _MAX_TEMPLATE_BYTES:
        raise TemplateError(f"s3://{bucket}/{key} is larger than {_MAX_TEMPLATE_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"s3://{bucket}/{key} is not UTF-8") from exc
