"""Publishing templates safely: validate what lands in the bucket, activate only what passes.

When a file under ``templates/`` changes, :func:`validate_change` checks the whole template folder
as it now stands (shared/templates/lint.py) and records the versions in force in its manifest
(shared/templates/manifests.py):

- each (locale, channel) unit — e.g. the ``pl/`` email: subject, body, text — becomes active as a
  whole when all its files pass; when one fails, the unit's previous active versions stay in force;
- a report for the changed file goes to ``reports/<key>.json`` and a rejected file is announced
  (shared/templates/reports.py).

Each run re-reads the folder, so the outcome does not depend on the order events arrive in, and a
manifest write that lost a race is retried from a fresh read. Running it twice changes nothing.
A new layout is refused when it would break an active template, and its activation re-checks the
folders waiting on it (shared/templates/layout_checks.py). Journey, segment and fulfilment partner
files are checked by shared/templates/data_file_checks.py.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from shared.domain.template_variables import LAYOUT_NAME
from shared.templates import lint
from shared.templates.data_file_checks import validate_journey, validate_partner, validate_segment
from shared.templates.layout_checks import layout_problems, layouts, waiting_folders
from shared.templates.manifests import HISTORY, TEMPLATE_KEY, current_versions, read_manifest, write_manifest
from shared.templates.model import TemplateError
from shared.templates.reports import Outcome, notification, now_iso, report_key, write_report
from shared.templates.store import TemplateStore, folder_prefix, manifest_key, read_object

log = logging.getLogger(__name__)

_ATTEMPTS = 6  # concurrent manifest writes tolerated before a check gives up


def validate_change(
    s3: Any,
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    notify: Callable[[str, str], None] | None = None,
    recheck: bool = True,
) -> Outcome:
    """Validate the folder a changed key belongs to, activate what passes, report on the key."""
    return validate_changes(s3, bucket, [(key, version_id)], notify=notify, recheck=recheck)[key]


def validate_changes(
    s3: Any,
    bucket: str,
    changes: list[tuple[str, str | None]],
    *,
    notify: Callable[[str, str], None] | None = None,
    recheck: bool = True,
) -> dict[str, Outcome]:
    """Several changed keys (e.g. one SQS batch): each template folder is checked once, however
    many of its files changed (a push uploads a whole folder, one event per file).

    ``recheck``: after a layout is activated, re-validate the folders waiting on a rejected upload
    (off when every folder is validated anyway, as on the first seed)."""
    out: dict[str, Outcome] = {}
    folders: dict[tuple[str, str], dict[str, str | None]] = {}
    for key, version_id in changes:
        match = TEMPLATE_KEY.match(key)
        if key.startswith("journeys/"):
            out[key] = validate_journey(s3, bucket, key, version_id, notify)
        elif key.startswith("segments/"):
            out[key] = validate_segment(s3, bucket, key, version_id, notify)
        elif key.startswith("partners/"):
            out[key] = validate_partner(s3, bucket, key, version_id, notify)
        elif match:
            folders.setdefault((match["owner"], match["name"]), {})[key] = version_id
        else:
            out[key] = Outcome(key, "ignored")
    # layouts first: the folders that extend them are checked against the layout in force
    for (owner, name), triggers in sorted(folders.items(), key=lambda f: (f[0][1] != LAYOUT_NAME, f[0])):
        out.update(_validate_folder(s3, bucket, owner, name, triggers, notify, recheck=recheck))
    return out


def _validate_folder(
    s3: Any,
    bucket: str,
    owner: str,
    name: str,
    triggers: dict[str, str | None],
    notify: Callable[[str, str], None] | None,
    *,
    recheck: bool = True,
) -> dict[str, Outcome]:
    """Check one template folder as it now stands, activate each unit that passes (in the manifest),
    rewrite every file's report and tell the outcome of each of ``triggers`` (the changed keys)."""
    prefix = folder_prefix(owner, name)
    for _ in range(_ATTEMPTS):
        current = current_versions(s3, bucket, prefix)
        texts: dict[str, str] = {}
        unreadable: list[lint.Problem] = []
        for k, vid in current.items():
            try:
                texts[k[len(prefix) :]] = read_object(s3, bucket, k, None if vid == "null" else vid) or ""
            except TemplateError as exc:
                unreadable.append(lint.Problem(k[len(prefix) :], None, exc.problem))
        store = TemplateStore(s3, bucket, ttl_seconds=0)
        general, per_unit = lint.lint_folder(
            name,
            {k: v for k, v in texts.items() if k not in {p.file for p in unreadable}},
            layouts_for=None if name == LAYOUT_NAME else functools.partial(layouts, store, owner),
        )
        general = unreadable + general
        present_units = lint.units(texts, name)
        if name == LAYOUT_NAME:
            for (locale, channel), problems in per_unit.items():
                if not problems:
                    layout_unit = {
                        lint.split_locale(r)[1]: texts[r] for r in present_units[(locale, channel)]
                    }
                    problems += layout_problems(s3, bucket, owner, locale, layout_unit)
        mkey = manifest_key(owner, name)
        manifest, etag = read_manifest(s3, bucket, mkey)
        files = dict(manifest.get("files", {}))
        now = now_iso()
        seq = int(manifest.get("seq", 0)) + 1
        kept: dict[tuple[str, str], list[lint.Problem]] = {}  # deleted layout units still needed
        if name == LAYOUT_NAME:
            for (locale, channel), rels in lint.units(list(files), name).items():
                if (locale, channel) not in present_units:  # every file of this layout unit deleted
                    problems = layout_problems(s3, bucket, owner, locale, {}, where=min(rels))
                    if problems:
                        kept[(locale, channel)] = problems
        for (locale, channel), problems in per_unit.items():
            if problems:
                continue  # the unit's previous active versions stay in force
            unit_files = set(present_units[(locale, channel)])
            for rel in [r for r in files if lint.units([r], name).get((locale, channel))]:
                if rel not in unit_files:
                    del files[rel]  # e.g. body.html replaced by body.mjml
            for rel in unit_files:
                vid = current[prefix + rel]
                old = files.get(rel)
                if old and old.get("version_id") == vid:
                    continue
                previous = ([*old.get("previous", []), old["version_id"]] if old else [])[-HISTORY:]
                files[rel] = {"version_id": vid, "activated_at": now, "seq": seq, "previous": previous}
        for rel in list(files):
            unit = next(iter(lint.units([rel], name)), None)
            if (unit is None or unit not in present_units) and unit not in kept:
                del files[rel]  # the whole unit was deleted: the next locale (or the default) applies
        new_manifest = {"folder": prefix, "files": files, "seq": seq}
        changed = files != manifest.get("files", {})
        if not changed or write_manifest(s3, bucket, mkey, {**new_manifest, "updated_at": now}, etag):
            break
    else:
        raise RuntimeError(f"{mkey}: gave up after {_ATTEMPTS} concurrent updates")
    if name == LAYOUT_NAME and changed and recheck:
        # the folders waiting on a refused upload: the new layout may be what they needed
        for dep_owner, dep_name in waiting_folders(s3, bucket, owner):
            _validate_folder(s3, bucket, dep_owner, dep_name, {}, notify)

    all_problems = general + [p for problems in (*per_unit.values(), *kept.values()) for p in problems]

    def status_of(rel: str, latest: str) -> tuple[str, list[lint.Problem]]:
        locale, file = lint.split_locale(rel)
        mine = [p for p in general if p.file == rel] + per_unit.get((locale, lint.unit_of(file) or ""), [])
        if files.get(rel, {}).get("version_id") == latest and not mine:
            return "active", mine
        if mine and all(p.message.startswith("missing:") for p in mine):
            return "pending", mine  # waiting for the channel's other files (a push uploads one by one)
        return ("rejected" if mine else "pending"), mine

    # Every file's report is rewritten: a later upload can activate (or block) an earlier one.
    by_key: dict[str, tuple[Outcome, list[lint.Problem]]] = {}
    for k, latest in sorted(current.items()):
        rel = k[len(prefix) :]
        status, mine = status_of(rel, latest)
        file_outcome = Outcome(k, status, latest, mine, files.get(rel, {}).get("version_id"), report_key(k))
        write_report(s3, bucket, file_outcome, mine, now)
        by_key[k] = (file_outcome, mine)
    for key in triggers:
        rel = key[len(prefix) :]
        if key not in by_key and rel in files:  # deleted, yet still in force: what extends it needs it
            locale, file = lint.split_locale(rel)
            unit = (locale, lint.unit_of(file) or "")
            mine = per_unit.get(unit, []) + kept.get(unit, [])
            refused = Outcome(key, "rejected", None, mine, files[rel].get("version_id"), report_key(key))
            write_report(s3, bucket, refused, mine, now)
            by_key[key] = (refused, mine)
        elif key not in by_key:  # deleted: its last report would otherwise still say "active"
            write_report(s3, bucket, Outcome(key, "removed", triggers[key]), [], now)
    out: dict[str, Outcome] = {}
    for key, version_id in triggers.items():
        found, trigger_problems = by_key.get(key, (Outcome(key, "removed", version_id), []))
        outcome = Outcome(
            key,
            found.status,
            version_id or found.version_id,
            all_problems,
            found.active_version_id,
            report_key(key),
        )
        if version_id and found.version_id and version_id != found.version_id:
            outcome.status = "superseded"  # a newer upload of this file was checked above
        if outcome.status == "rejected" and notify:
            notify(f"Boomerang: {key} was rejected", notification(outcome, trigger_problems))
        log.info(
            "template checked", extra={"key": key, "status": outcome.status, "problems": len(all_problems)}
        )
        out[key] = outcome
    return out


def validate_prefix(s3: Any, bucket: str, prefix: str = "templates/") -> list[Outcome]:
    """Validate every template folder under a prefix once (first deploy, the local emulator's seed)."""
    seen: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            m = TEMPLATE_KEY.match(obj["Key"])
            if m:
                seen.setdefault(folder_prefix(m["owner"], m["name"]), obj["Key"])
    # layouts first: the folders that extend them are checked against the active layout
    keys = sorted(seen.values(), key=lambda k: (f"/{LAYOUT_NAME}/" not in k, k))
    return [validate_change(s3, bucket, key, recheck=False) for key in keys]
