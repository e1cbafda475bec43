"""`boomerang segments lint|push|members`: check segment files, upload one, list a segment's members.

lint reads local files (no AWS needed) and prints every problem with its line, exiting 1 if any.
members pages the table's `by-segment` index (`--endpoint-url` for the local emulator's moto
server): customer ids only, never addresses.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infra.data_files_cli import add_lint_and_push, lint_files, push_file
from infra.offers_cli import TABLE_ENV, default_table
from shared.adapters.segment_catalog import parse
from shared.domain.segments import Segment


def _describe(segment: Segment) -> str:
    given = sorted(
        k for k, v in segment.model_dump(exclude={"id", "name", "description", "enabled"}).items() if v
    )
    return f"conditions: {', '.join(given)}"


def _push(args: argparse.Namespace) -> int:
    return push_file(args, "segments/", parse)


def _lint(args: argparse.Namespace) -> int:
    return lint_files(args.files, parse, "segment", _describe)


def _members(args: argparse.Namespace) -> int:
    import boto3

    from shared.adapters.segment_store import SegmentStore

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
    """Register `segments` on the `boomerang` command's subparsers."""
    segments = sub.add_parser("segments", help="lint segment files; list a segment's members")
    actions = segments.add_subparsers(dest="segments_command", required=True)
    add_lint_and_push(actions, "segment", _lint, _push)
    members = actions.add_parser("members", help="the customer ids in a segment (from the by-segment index)")
    members.add_argument("--store", required=True)
    members.add_argument("--segment", required=True)
    members.add_argument("--limit", type=int, default=1000)
    members.add_argument(
        "--table", default=default_table(), help=f"DynamoDB table (default: ${TABLE_ENV} or the emulator's)"
    )
    members.add_argument("--endpoint-url", default=None, help="e.g. the local emulator's moto server URL")
    members.set_defaults(func=_members)
