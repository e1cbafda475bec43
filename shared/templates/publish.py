"""Publishing templates safely: validate what lands in the bucket, activate only what passes.

The bucket is versioned. When a file under ``templates/`` changes, :func:`validate_change` checks the
whole template folder as it now stands (shared/templates/lint.py) and records the versions in force
in ``active/templates/<store>/<name>.json`` (the *manifest*, which TemplateStore reads):

- each (locale, channel) unit — e.g. the ``pl/`` email: subject, body, text — becomes active as a
  whole when all its files pass; when one fails, the unit's previous active versions stay in force;
- a report for the changed file goes to ``reports/<key>.json`` (status, every problem with file and
  line, the version still sent), and a rejected file is announced on the reports SNS topic.

The manifest is written with an S3 conditional write (If-Match on its ETag), so two validations of
the same folder at once cannot lose each other's activation; each run re-reads the folder, so the
outcome does not depend on the order events arrive in. Running it twice changes nothing.

A layout (``templates/<store>/_layout/``) is shared: before a new layout becomes active, every
active template it would be rendered with (the store's folders and the defaults; for ``_default``,
every store's) is re-checked against it. One it would break keeps the previous layout in force, and
the layout's report names each broken template, file and line. Once a layout is activated, the
folders still waiting on an upload that was rejected are checked again (the new layout may be what
they needed).

Journey files (``journeys/<store>/<id>.yaml``) get the same report and notification, checked by
``shared.journey_catalog.problems`` when that exists; which journey file is in force is decided there.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.template_variables import LAYOUT_NAME
from shared.templates import lint
from shared.templates.model import DEFAULT_STORE, LAYOUT_FILES, TemplateError
from shared.templates.store import ACTIVE_PREFIX, TemplateStore, folder_prefix, manifest_key, read_object

log = logging.getLogger(__name__)

REPORTS_PREFIX = "reports/"
TEMPLATE_KEY = re.compile(
    r"^templates/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<rel>.+)$"
)
JOURNEY_KEY = re.compile(r"^journeys/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<id>[^/]+)\.ya?ml$")
HISTORY = 10  # earlier active versions remembered per file, for rollback
_ONE_CHECK = 300.0  # the stores below live for one check: each manifest is read once, not per file
_ATTEMPTS = 6


@dataclass
class Outcome:
    key: str
    status: str  # active | rejected | pending | superseded | removed | ignored | checked
    version_id: str | None = None
    problems: list[lint.Problem] = field(default_factory=list)
    active_version_id: str | None = None
    report_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "version_id": self.version_id,
            "active_version_id": self.active_version_id,
            "problems": [p.as_dict() for p in self.problems],
            "report": self.report_key,
        }


@dataclass(frozen=True)
class S3Change:
    bucket: str
    key: str
    version_id: str | None
    reason: str  # e.g. PutObject, CopyObject, DeleteObject


def parse_s3_event(body: str | dict[str, Any]) -> S3Change:
    """An S3 event as EventBridge delivers it (detail-type "Object Created" / "Object Deleted")."""
    event = json.loads(body) if isinstance(body, str) else body
    if event.get("source") != "aws.s3" or not isinstance(event.get("detail"), dict):
        raise ValueError(f"not an S3 event: source={event.get('source')!r}")
    detail = event["detail"]
    try:
        return S3Change(
            bucket=detail["bucket"]["name"],
            key=detail["object"]["key"],
            version_id=detail["object"].get("version-id"),
            reason=str(detail.get("reason", "")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"S3 event without bucket/object: {exc}") from exc


def sns_notifier(sns: Any, topic_arn: str) -> Callable[[str, str], None]:
    """Publish a report to the topic marketers subscribe to (SNS subjects: ASCII, at most 100)."""

    def notify(subject: str, message: str) -> None:
        safe = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:100]
        sns.publish(TopicArn=topic_arn, Subject=safe, Message=message)

    return notify


def report_key(key: str) -> str:
    return f"{REPORTS_PREFIX}{key}.json"


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _current_versions(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """Key -> version id of every file now present under the prefix (deleted ones left out)."""
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            if v.get("IsLatest"):
                out[v["Key"]] = v.get("VersionId") or "null"
    return out


def _read_manifest(s3: Any, bucket: str, key: str) -> tuple[dict[str, Any], str | None]:
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return {"files": {}}, None
    return json.loads(response["Body"].read()), response["ETag"]


def _write_manifest(s3: Any, bucket: str, key: str, manifest: dict[str, Any], etag: str | None) -> bool:
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


def _layouts(store: TemplateStore, owner: str, locale: str) -> dict[str, str]:
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
                name, dep_locale, channel, unit, _layouts(candidate, layout_owner, dep_locale)
            )
            if not with_new:
                continue
            before = lint.lint_unit(
                name, dep_locale, channel, unit, _layouts(current, layout_owner, dep_locale)
            )
            where = folder_prefix(dep_owner, name) + (f"{dep_locale}/" if dep_locale else "")
            broken += [(f"{channel} template {where}", p) for p in with_new if p not in before]
    return broken


def _layout_problems(
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


def _recheck_waiting(s3: Any, bucket: str, owner: str, notify: Callable[[str, str], None] | None) -> None:
    """After a layout change is activated: re-validate the folders whose newest upload is not
    active (rejected or pending), in case the new layout was what they needed."""
    for dep_owner, name in _dependent_folders(s3, bucket, owner):
        manifest, _ = _read_manifest(s3, bucket, manifest_key(dep_owner, name))
        prefix = folder_prefix(dep_owner, name)
        active = {prefix + rel: f.get("version_id") for rel, f in manifest["files"].items()}
        if any(active.get(k) != v for k, v in _current_versions(s3, bucket, prefix).items()):
            _validate_folder(s3, bucket, dep_owner, name, {}, notify)


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
            out[key] = _validate_journey(s3, bucket, key, version_id, notify)
        elif key.startswith("segments/"):
            out[key] = _validate_segment(s3, bucket, key, version_id, notify)
        elif key.startswith("partners/"):
            out[key] = _validate_partner(s3, bucket, key, version_id, notify)
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
    prefix = folder_prefix(owner, name)
    for _ in range(_ATTEMPTS):
        current = _current_versions(s3, bucket, prefix)
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
            layouts_for=None if name == LAYOUT_NAME else functools.partial(_layouts, store, owner),
        )
        general = unreadable + general
        present_units = lint.units(texts, name)
        if name == LAYOUT_NAME:
            for (locale, channel), problems in per_unit.items():
                if not problems:
                    layout_unit = {
                        lint.split_locale(r)[1]: texts[r] for r in present_units[(locale, channel)]
                    }
                    problems += _layout_problems(s3, bucket, owner, locale, layout_unit)
        mkey = manifest_key(owner, name)
        manifest, etag = _read_manifest(s3, bucket, mkey)
        files = dict(manifest.get("files", {}))
        now = _now_iso()
        seq = int(manifest.get("seq", 0)) + 1
        kept: dict[tuple[str, str], list[lint.Problem]] = {}  # deleted layout units still needed
        if name == LAYOUT_NAME:
            for (locale, channel), rels in lint.units(list(files), name).items():
                if (locale, channel) not in present_units:  # every file of this layout unit deleted
                    problems = _layout_problems(s3, bucket, owner, locale, {}, where=min(rels))
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
        if not changed or _write_manifest(s3, bucket, mkey, {**new_manifest, "updated_at": now}, etag):
            break
    else:
        raise RuntimeError(f"{mkey}: gave up after {_ATTEMPTS} concurrent updates")
    if name == LAYOUT_NAME and changed and recheck:
        _recheck_waiting(s3, bucket, owner, notify)

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
        _write_report(s3, bucket, file_outcome, mine, now)
        by_key[k] = (file_outcome, mine)
    for key in triggers:
        rel = key[len(prefix) :]
        if key not in by_key and rel in files:  # deleted, yet still in force: what extends it needs it
            locale, file = lint.split_locale(rel)
            unit = (locale, lint.unit_of(file) or "")
            mine = per_unit.get(unit, []) + kept.get(unit, [])
            refused = Outcome(key, "rejected", None, mine, files[rel].get("version_id"), report_key(key))
            _write_report(s3, bucket, refused, mine, now)
            by_key[key] = (refused, mine)
        elif key not in by_key:  # deleted: its last report would otherwise still say "active"
            _write_report(s3, bucket, Outcome(key, "removed", triggers[key]), [], now)
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
            notify(f"Boomerang: {key} was rejected", _notification(outcome, trigger_problems))
        log.info(
            "template checked", extra={"key": key, "status": outcome.status, "problems": len(all_problems)}
        )
        out[key] = outcome
    return out


def _write_report(s3: Any, bucket: str, outcome: Outcome, mine: list[lint.Problem], now: str) -> None:
    body = {
        **outcome.as_dict(),
        "checked_at": now,
        "summary": _summary(outcome, mine),
    }
    body.pop("report", None)
    s3.put_object(
        Bucket=bucket,
        Key=report_key(outcome.key),
        Body=json.dumps(body, indent=2).encode(),
        ContentType="application/json",
    )


def _summary(outcome: Outcome, mine: list[lint.Problem]) -> str:
    if outcome.status == "active":
        return "valid: this version is now sent"
    if outcome.status == "rejected":
        still = (
            f"version {outcome.active_version_id} is still sent"
            if outcome.active_version_id
            else "no version of this file is active: the next locale/the default template is sent"
        )
        return f"rejected ({len(mine)} problem{'s' if len(mine) != 1 else ''}): {still}"
    if outcome.status == "pending":
        return "waiting for the channel's other files (see problems); until then the previous version is sent"
    if outcome.status == "removed":
        return "removed: the next locale or the default template is sent"
    return outcome.status


def _notification(outcome: Outcome, mine: list[lint.Problem]) -> str:
    lines = [f"{outcome.key} (version {outcome.version_id}) was not activated.", ""]
    folder = outcome.key.rsplit("/", 1)[0] + "/"
    if TEMPLATE_KEY.match(outcome.key):
        m = TEMPLATE_KEY.match(outcome.key)
        folder = folder_prefix(m["owner"], m["name"]) if m else folder
    lines += [f"  {folder}{p}" for p in mine]
    lines += ["", _summary(outcome, mine), f"Report: {outcome.report_key}"]
    return "\n".join(lines)


def _validate_journey(
    s3: Any, bucket: str, key: str, version_id: str | None, notify: Callable[[str, str], None] | None
) -> Outcome:
    if not JOURNEY_KEY.match(key):
        return Outcome(key, "ignored")
    try:
        checker = importlib.import_module("shared.adapters.journey_catalog").problems
    except (ImportError, AttributeError):
        return Outcome(key, "ignored")  # journeys as data are not part of this build

    def check(text: str) -> list[tuple[int | None, str]]:
        return checker(text) or _journey_segment_problems(s3, bucket, key, text)

    return _validate_data_file(s3, bucket, key, version_id, notify, check)


SEGMENT_KEY = re.compile(r"^segments/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<id>[^/]+)\.yaml$")


def _validate_segment(
    s3: Any, bucket: str, key: str, version_id: str | None, notify: Callable[[str, str], None] | None
) -> Outcome:
    from shared.adapters.segment_catalog import problems as segment_file_problems

    if not SEGMENT_KEY.match(key):
        return Outcome(key, "ignored")
    return _validate_data_file(s3, bucket, key, version_id, notify, lambda t: segment_file_problems(t, key))


PARTNER_KEY = re.compile(r"^partners/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<id>[^/]+)\.yaml$")


def _validate_partner(
    s3: Any, bucket: str, key: str, version_id: str | None, notify: Callable[[str, str], None] | None
) -> Outcome:
    """A fulfilment partner file: its schema and, for a templated body, that it compiles in the
    message sandbox (the forwarder renders it there)."""
    from shared.adapters.partner_catalog import PartnerFileError, parse

    if not PARTNER_KEY.match(key):
        return Outcome(key, "ignored")

    def check(text: str) -> list[tuple[int | None, str]]:
        try:
            partner = parse(text, key, expected_id=key.rsplit("/", 1)[1].removesuffix(".yaml"))
        except PartnerFileError as exc:
            return exc.problems
        if partner.template:
            from shared.templates.sandbox import compile_template

            try:
                compile_template(partner.template, file="template", html=False, template_name=key)
            except Exception as exc:  # the sandbox refused it (an unsafe attribute, an unknown filter)
                return [(None, f"template: {exc}")]
        return []

    return _validate_data_file(s3, bucket, key, version_id, notify, check)


def _validate_data_file(
    s3: Any,
    bucket: str,
    key: str,
    version_id: str | None,
    notify: Callable[[str, str], None] | None,
    check: Callable[[str], list[tuple[int | None, str]]],
) -> Outcome:
    """A journey or segment file: a report next to it, and a notification when rejected (their
    catalogs keep the newest valid version in force, so nothing is activated here)."""
    text = read_object(s3, bucket, key, version_id)
    if text is None:
        return Outcome(key, "removed", version_id)
    file = key.rsplit("/", 1)[1]
    problems = [lint.Problem(file, line, message) for line, message in check(text)]
    outcome = Outcome(key, "rejected" if problems else "checked", version_id, problems, None, report_key(key))
    _write_report(s3, bucket, outcome, problems, _now_iso())
    if problems and notify:
        notify(f"Boomerang: {key} was rejected", _notification(outcome, problems))
    return outcome


def _journey_segment_problems(s3: Any, bucket: str, key: str, text: str) -> list[tuple[int | None, str]]:
    """The segments a journey file names must exist for its store (the defaults, or the store's own)."""
    from shared.adapters.journey_catalog import segment_problems
    from shared.adapters.segment_catalog import SegmentCatalog

    owner = key.split("/")[1]
    return segment_problems(text, lambda: {s.id for s in SegmentCatalog(s3, bucket, 0).segments(owner)})


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


# --- what the CLI shows and does ------------------------------------------------------------------


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


def describe_folder(s3: Any, bucket: str, owner: str, name: str) -> list[dict[str, Any]]:
    """Per file: its versions (newest first), which one is active, and the last report."""
    prefix = folder_prefix(owner, name)
    manifest, _ = _read_manifest(s3, bucket, manifest_key(owner, name))
    versions: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            versions.setdefault(v["Key"], []).append(
                {
                    "version_id": v.get("VersionId"),
                    "at": v["LastModified"],
                    "latest": v.get("IsLatest", False),
                }
            )
    out = []
    for key in sorted(versions):
        rel = key[len(prefix) :]
        report_text = read_object(s3, bucket, report_key(key))
        out.append(
            {
                "file": rel,
                "key": key,
                "versions": sorted(versions[key], key=lambda v: v["at"], reverse=True),
                "active": manifest.get("files", {}).get(rel, {}).get("version_id"),
                "report": json.loads(report_text) if report_text else None,
            }
        )
    return out


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
    manifest, _ = _read_manifest(s3, bucket, manifest_key(owner, name))
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


def read_report(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    text = read_object(s3, bucket, report_key(key))
    return json.loads(text) if text else None


__all__ = [
    "ACTIVE_PREFIX",
    "REPORTS_PREFIX",
    "Outcome",
    "describe_folder",
    "list_folders",
    "read_report",
    "report_key",
    "rollback",
    "validate_change",
    "validate_prefix",
]
