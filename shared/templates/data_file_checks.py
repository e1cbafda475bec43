"""Checking the marketer's journey, segment and fulfilment partner files as they land in the bucket.

Journey files (``journeys/<store>/<id>.yaml``), segment files (``segments/<store>/<id>.yaml``) and
partner files (``partners/<store>/<id>.yaml``) go through the same validator λ as templates and get
the same report and notification (shared/templates/reports.py). Their catalogs
(shared/adapters/journey_catalog.py, segment_catalog.py, partner_catalog.py) check them and keep the
newest valid version in force, so nothing is activated here.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from shared.templates import lint
from shared.templates.reports import Outcome, notification, now_iso, report_key, write_report
from shared.templates.store import read_object

JOURNEY_KEY = re.compile(r"^journeys/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<id>[^/]+)\.ya?ml$")
SEGMENT_KEY = re.compile(r"^segments/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<id>[^/]+)\.yaml$")
PARTNER_KEY = re.compile(r"^partners/(?P<owner>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<id>[^/]+)\.yaml$")


def validate_journey(
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


def validate_segment(
    s3: Any, bucket: str, key: str, version_id: str | None, notify: Callable[[str, str], None] | None
) -> Outcome:
    from shared.adapters.segment_catalog import problems as segment_file_problems

    if not SEGMENT_KEY.match(key):
        return Outcome(key, "ignored")
    return _validate_data_file(s3, bucket, key, version_id, notify, lambda t: segment_file_problems(t, key))


def validate_partner(
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
    """A journey, segment or partner file: a report next to it, and a notification when rejected (their
    catalogs keep the newest valid version in force, so nothing is activated here)."""
    text = read_object(s3, bucket, key, version_id)
    if text is None:
        return Outcome(key, "removed", version_id)
    file = key.rsplit("/", 1)[1]
    problems = [lint.Problem(file, line, message) for line, message in check(text)]
    outcome = Outcome(key, "rejected" if problems else "checked", version_id, problems, None, report_key(key))
    write_report(s3, bucket, outcome, problems, now_iso())
    if problems and notify:
        notify(f"Boomerang: {key} was rejected", notification(outcome, problems))
    return outcome


def _journey_segment_problems(s3: Any, bucket: str, key: str, text: str) -> list[tuple[int | None, str]]:
    """The segments a journey file names must exist for its store (the defaults, or the store's own)."""
    from shared.adapters.journey_catalog import segment_problems
    from shared.adapters.segment_catalog import SegmentCatalog

    owner = key.split("/")[1]
    return segment_problems(text, lambda: {s.id for s in SegmentCatalog(s3, bucket, 0).segments(owner)})
