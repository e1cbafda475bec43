"""`boomerang segments lint|push|members`: check segment files, upload one, list a segment's members.

lint reads local files (no AWS needed) and prints every problem with its line, exiting 1 if any.
members pages the table's `by-segment` index (`--endpoint-url` for the local emulator's moto
server): customer ids only, never addresses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from infra.offers_cli import TABLE_ENV, default_table
from shared.segment_catalog import SegmentFileError, parse


def _push(args: argparse.Namespace) -> int:
    from infra.local.templates_cli import push_data_file

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read ({exc})", file=sys.stderr)
        return 2
    try:
        parse(text, str(path), expected_id=path.stem)
    except SegmentFileError as exc:
        print("lint found problems (the validator refuses them; pushing anyway so you get its report):")
        for line, message in exc.problems:
            print(f"  {path}:{line or 1}: {message}")
    return push_data_file(args, f"segments/{args.store}/{path.stem}.yaml", text)


def _lint(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            segment = parse(path.read_bytes(), str(path), expected_id=path.stem)
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror})", file=sys.stderr)
            failed += 1
            continue
        except SegmentFileError as exc:
            failed += 1
            for line, message in exc.problems:
                print(f"{path}:{line or 1}: {message}", file=sys.stderr)
            continue
        if not segment.enabled:
            print(f"{path}: ok (turns the segment off)")
            continue
        given = sorted(
            k for k, v in segment.model_dump(exclude={"id", "name", "description", "enabled"}).items() if v
        )
        print(f"{path}: ok (conditions: {', '.join(given)})")
    return 1 if failed else 0


def _members(args: argparse.Namespace) -> int:
    import boto3

    from shared.segment_store import SegmentStore

    store = SegmentStore(boto3.client("dynamodb", endpoint_url=args.endpoint_url), args.table)
    cursor, shown = None, 0
    while True:
        page, cursor = store.members(args.store, args.segment, min(1000, args.limit - shown), cursor)
        for customer_id in page:
            print(customer_id)
        shown += len(page)
        if cursor is None or shown >= args.limit:
            break
    if cursor is not None:
        print(f"... more (showing the first {shown})", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    from infra.local.templates_cli import remote

    """Register `segments` on the `boomerang` command's subparsers."""
    segments = sub.add_parser("segments", help="lint segment files; list a segment's members")
    actions = segments.add_subparsers(dest="segments_command", required=True)
    lint = actions.add_parser("lint", help="check segment YAML files (line-level errors)")
    lint.add_argument("files", nargs="+", metavar="FILE")
    lint.set_defaults(func=_lint)
    push = actions.add_parser(
        "push", help="upload a segment file for a store and show the validator's report (AWS or --local)"
    )
    push.add_argument("file", metavar="FILE", help="<id>.yaml: the file name is the segment's id")
    push.add_argument("--store", required=True, help="store id, or _default for every store")
    push.add_argument("--wait", type=float, default=120, help="seconds to wait for the validator (0: don't)")
    remote(push)
    push.set_defaults(func=_push)
    members = actions.add_parser("members", help="the customer ids in a segment (from the by-segment index)")
    members.add_argument("--store", required=True)
    members.add_argument("--segment", required=True)
    members.add_argument("--limit", type=int, default=1000)
    members.add_argument(
        "--table", default=default_table(), help=f"DynamoDB table (default: ${TABLE_ENV} or the emulator's)"
    )
    members.add_argument("--endpoint-url", default=None, help="e.g. the local emulator's moto server URL")
    members.set_defaults(func=_members)
