"""Whether a layout change would break a template that extends it, and who waits on one.

A layout (``templates/<store>/_layout/``) is shared: before a new layout becomes active, every
active template it would be rendered with (the store's folders and the defaults; for ``_default``,
every store's) is re-checked against it (`layout_problems`). One it would break keeps the previous
layout in force, and the layout's report names each broken template, file and line. Once a layout
is activated, the folders still waiting on an upload that was not activated (`waiting_folders`)
are checked again by shared/templates/publish.py: the new layout may be what they needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.domain.template_variables import LAYOUT_NAME
from shared.templates import lint
from shared.templates.manifests import current_versions, list_folders, read_manifest
from shared.templates.model import DEFAULT_STORE, LAYOUT_FILES
from shared.templates.store import TemplateStore, folder_prefix, manifest_key

_ONE_CHECK = 300.0  # the stores below live for one check: each manifest is read once, not per file


def layouts(store: TemplateStore, owner: str, locale: str) -> dict[str, str]:
    """The layout files a template of ``owner`` in ``locale`` ("" for the default) extends."""
    return store.layouts(owner, locale=locale or None)


class _WithCandidateLayout(TemplateStore):
    """The active templates, as they would resolve if one layout unit (a locale's layout files)
    were replaced by the candidate: its files, and none of the unit's others."""

    def __init__(self, s3: Any, bucket: str, owner: str, locale: str, files: dict[str, str]) -> None:
        super().__init__(s3, bucket, ttl_seconds=_ONE_CHECK)
        prefix = f"{locale}/" if locale else ""
        self._candidate = {prefix + f: files.get(f) for f in LAYOUT_FILES}
        self._owner = owner

    def _file(self, owner: str, name: str, relpath: str) -> str | None:
        if owner == self._owner and name == LAYOUT_NAME and relpath in self._candidate:
            return self._candidate[relpath]
        return super()._file(owner, name, relpath)


def _dependent_folders(s3: Any, bucket: str, owner: str) -> list[tuple[str, str]]:
    """Folders whose sends may render with ``owner``'s layout: a store's own and the defaults (a
    store's sends of a default template use the store's layout); for ``_default``, every folder."""
    folders = list_folders(s3, bucket, None if owner == DEFAULT_STORE else owner)
    if owner != DEFAULT_STORE:
        folders += list_folders(s3, bucket, DEFAULT_STORE)
    return [(o, n) for o, n in folders if n != LAYOUT_NAME]


def _active_texts(store: TemplateStore, owner: str, name: str) -> dict[str, str]:
    """The files in force of a template folder (relative path -> text); {} when none."""
    manifest = store.manifest(owner, name) or {}
    out = {}
    for rel in manifest.get("files", {}):
        text = store._file(owner, name, rel)
        if text is not None:
            out[rel] = text
    return out


def _broken_by_layout(
    s3: Any, bucket: str, owner: str, locale: str, files: dict[str, str]
) -> list[tuple[str, lint.Problem]]:
    """(folder, problem) for each active template unit that extends a layout and passes with the
    layout in force but fails with the candidate layout unit ``files`` of ``owner``/``locale``."""
    current = TemplateStore(s3, bucket, ttl_seconds=_ONE_CHECK)
    candidate = _WithCandidateLayout(s3, bucket, owner, locale, files)
    broken: list[tuple[str, lint.Problem]] = []
    for dep_owner, name in _dependent_folders(s3, bucket, owner):
        texts = _active_texts(current, dep_owner, name)
        layout_owner = owner if dep_owner == DEFAULT_STORE else dep_owner
        for (dep_locale, channel), rels in lint.units(texts, name).items():
            if not any("extends" in texts[r] for r in rels):
                continue  # a standalone template never sees the layout
            unit = {lint.split_locale(r)[1]: texts[r] for r in rels}
            with_new = lint.lint_unit(
                name, dep_locale, channel, unit, layouts(candidate, layout_owner, dep_locale)
            )
            if not with_new:
                continue
            before = lint.lint_unit(
                name, dep_locale, channel, unit, layouts(current, layout_owner, dep_locale)
            )
            where = folder_prefix(dep_owner, name) + (f"{dep_locale}/" if dep_locale else "")
            broken += [(f"{channel} template {where}", p) for p in with_new if p not in before]
    return broken


def layout_problems(
    s3: Any, bucket: str, owner: str, locale: str, files: dict[str, str], where: str = ""
) -> list[lint.Problem]:
    """Problems for a layout unit about to change to ``files`` ({}: deleted), one per broken template.
    The unit's first file (or ``where``) carries them: all its files share them."""
    where = where or (f"{locale}/" if locale else "") + min(files)
    return [
        lint.Problem(
            where,
            None,
            f"would break the active {unit}: {p}; the current layout stays in force "
            f"until the layout (or that template) is fixed",
        )
        for unit, p in _broken_by_layout(s3, bucket, owner, locale, files)
    ]


def waiting_folders(s3: Any, bucket: str, owner: str) -> Iterator[tuple[str, str]]:
    """The folders that may render with ``owner``'s layout whose newest upload is not active
    (rejected or pending). One at a time: the caller re-validates each before the next is read."""
    for dep_owner, name in _dependent_folders(s3, bucket, owner):
        manifest, _ = read_manifest(s3, bucket, manifest_key(dep_owner, name))
        prefix = folder_prefix(dep_owner, name)
        active = {prefix + rel: f.get("version_id") for rel, f in manifest["files"].items()}
        if any(active.get(k) != v for k, v in current_versions(s3, bucket, prefix).items()):
            yield dep_owner, name
