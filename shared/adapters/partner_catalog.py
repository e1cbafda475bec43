"""Partner files in the templates bucket: ``partners/<store>/<id>.yaml``, validated with line numbers.

The same machinery as journey and segment files (shared/platform/data_files.py): the newest version
that validates stays in force, a broken upload is reported with its lines and never used. There are
no shipped defaults: a partner is always a store's own. A file holding a secret (an API key, a
password) is rejected with where the secret belongs instead: the bucket is versioned, so a secret
uploaded once would stay readable in its history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shared.domain.partners import SECRET_FIELDS, Partner, secret_name
from shared.platform.data_files import (
    DataFileError,
    Problem,
    VersionedFiles,
    line_map,
    read_mapping,
    validation_problems,
)

PREFIX = "partners/"


class PartnerFileError(DataFileError):
    pass


def _secret_problems(
    data: Any, lines: dict[tuple[Any, ...], int], path: tuple[Any, ...] = ()
) -> list[Problem]:
    found: list[Problem] = []
    if isinstance(data, dict):
        for k, v in data.items():
            here = (*path, k)
            if str(k).lower() in SECRET_FIELDS and not isinstance(v, dict | list):
                where = ".".join(str(p) for p in here)
                found.append(
                    (
                        lines.get(here),
                        f"{where}: secrets do not belong in the file (the bucket keeps every version); "
                        f"remove it and set it with `boomerang partners secret --store <store> --partner "
                        f"<id>` (Secrets Manager {secret_name('<store>', '<id>')})",
                    )
                )
            else:
                found += _secret_problems(v, lines, here)
    return found


def parse(text: str | bytes, source: str = "partner file", expected_id: str | None = None) -> Partner:
    """A partner file -> Partner, or PartnerFileError listing every problem with its line."""
    text, data = read_mapping(
        text,
        source,
        PartnerFileError,
        shape="a partner file is a mapping (name:, match:, endpoint:, ...)",
        expected_id=expected_id,
        default_id="partner",
    )
    lines = line_map(text)
    secrets = _secret_problems(data, lines)
    if secrets:
        raise PartnerFileError(source, secrets)
    if data.get("enabled", True) is False:
        data = {
            "id": data["id"],
            "enabled": False,
            "match": {"skus": ["-"]},
            "endpoint": {"orders": "https://disabled.invalid/"},
        }
    try:
        partner = Partner.model_validate(data)
    except ValidationError as exc:
        raise PartnerFileError(source, validation_problems(exc, lines, "partner")) from exc
    if partner.payload == "template":
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        # a syntax check only (the forwarder renders in the message sandbox); adapters may not
        # import the templates layer, and parsing needs none of its filters
        try:
            ImmutableSandboxedEnvironment().parse(partner.template or "")
        except TemplateSyntaxError as exc:
            line = (lines.get(("template",)) or 0) + exc.lineno
            raise PartnerFileError(source, [(line, f"template: {exc.message}")]) from exc
    return partner


def problems(text: str | bytes, key: str | None = None) -> list[Problem]:
    """What a linter reports for a partner file: [] when it is good."""
    name = key.rsplit("/", 1)[-1].removesuffix(".yaml") if key else None
    try:
        parse(text, key or "partner file", expected_id=name)
    except PartnerFileError as exc:
        return exc.problems
    return []


class PartnerCatalog:
    """A store's partners from S3, cached for `ttl_seconds`."""

    def __init__(
        self, s3: Any, bucket: str, ttl_seconds: float = 60, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._files: VersionedFiles[Partner] = VersionedFiles(
            s3,
            bucket,
            PREFIX,
            lambda body, source, name: parse(body, source, expected_id=name),
            lambda partner: partner.enabled,
            "partner",
            ttl_seconds,
            clock=clock,
        )

    def partners(self, store_id: str) -> list[Partner]:
        loaded = self._files.load(store_id)
        return sorted((e.item for e in loaded.values() if e.item is not None), key=lambda p: p.id)

    def get(self, store_id: str, partner_id: str) -> Partner | None:
        return next((p for p in self.partners(store_id) if p.id == partner_id), None)

    def forget(self) -> None:
        self._files.forget()
