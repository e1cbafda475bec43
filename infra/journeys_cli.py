"""`boomerang journeys lint|push|history`: check journey files, upload one, read a customer's history.

lint reads local files (no AWS needed) and prints every problem with its line, exiting 1 if any.
history reads the table (`--endpoint-url` for the local emulator's moto server, as for `offers`)
and answers "why did I get this?" for one customer: every journey entered, step sent or skipped
and why, exit and why, oldest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.offers_cli import TABLE_ENV, default_table
from shared.journey_catalog import JourneyFileError, parse
from shared.journeys import format_duration


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
    except JourneyFileError as exc:
        print("lint found problems (the validator refuses them; pushing anyway so you get its report):")
        for line, message in exc.problems:
            print(f"  {path}:{line or 1}: {message}")
    return push_data_file(args, f"journeys/{args.store}/{path.stem}.yaml", text)


def _lint(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            journey = parse(path.read_bytes(), str(path), expected_id=path.stem)
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror})", file=sys.stderr)
            failed += 1
            continue
        except JourneyFileError as exc:
            failed += 1
            for line, message in exc.problems:
                print(f"{path}:{line or 1}: {message}", file=sys.stderr)
            continue
        if not journey.enabled:
            print(f"{path}: ok (turns the journey off)")
            continue
        steps = ", ".join(f"{s.id} +{format_duration(s.after)}" if s.after else s.id for s in journey.steps)
        start = journey.trigger.describe()
        print(f"{path}: ok ({journey.kind}, one per {journey.per}, on {start}; steps {steps})")
    return 1 if failed else 0


def _history(args: argparse.Namespace) -> int:
    import boto3

    from shared.journey_store import JourneyStore
    from shared.profile_store import ProfileStore

    ddb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    profile = ProfileStore(ddb, args.table).load_profile(args.store, args.customer)
    ids = [args.customer, *(f"a:{a}" for a in (profile.anonymous_ids if profile else []))]
    entries = JourneyStore(ddb, args.table).customer_history(args.store, ids)
    if args.json:
        print(json.dumps(entries, default=str, indent=2))
        return 0
    if not entries:
        print(f"no journey history for {args.customer} in store {args.store}")
    for e in entries:
        when = datetime.fromtimestamp(float(e["at"]), tz=UTC).strftime("%Y-%m-%d %H:%M")
        what = " ".join(str(x) for x in (e.get("step_id"), e.get("channel"), e.get("variant")) if x)
        why = e.get("reason") or e.get("group") or ""
        print(f"{when}  {e['journey']:<22} {e['type']:<8} {what:<24} {why}")
    return 0


def add_parser(sub: Any) -> None:
    from infra.local.templates_cli import remote

    """Register `journeys` on the `boomerang` command's subparsers."""
    journeys = sub.add_parser("journeys", help="lint journey files; show a customer's journey history")
    actions = journeys.add_subparsers(dest="journeys_command", required=True)
    lint = actions.add_parser("lint", help="check journey YAML files (line-level errors)")
    lint.add_argument("files", nargs="+", metavar="FILE")
    lint.set_defaults(func=_lint)
    push = actions.add_parser(
        "push", help="upload a journey file for a store and show the validator's report (AWS or --local)"
    )
    push.add_argument("file", metavar="FILE", help="<id>.yaml: the file name is the journey's id")
    push.add_argument("--store", required=True, help="store id, or _default for every store")
    push.add_argument("--wait", type=float, default=120, help="seconds to wait for the validator (0: don't)")
    remote(push)
    push.set_defaults(func=_push)
    history = actions.add_parser("history", help="everything journeys did for one customer, and why")
    history.add_argument("--store", required=True)
    history.add_argument("--customer", required=True, help="customer id, e.g. u:<userId> or a:<anonymousId>")
    history.add_argument(
        "--table", default=default_table(), help=f"DynamoDB table (default: ${TABLE_ENV} or the emulator's)"
    )
    history.add_argument("--endpoint-url", default=None, help="e.g. the local emulator's moto server URL")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=_history)
