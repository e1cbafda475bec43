"""`boomerang journeys lint|push|history`: check journey files, upload one, read a customer's history.

lint reads local files (no AWS needed) and prints every problem with its line, exiting 1 if any.
history reads the table (`--endpoint-url` for the local emulator's moto server, as for `offers`)
and answers "why did I get this?" for one customer: every journey entered, step sent or skipped
and why, exit and why, oldest first.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from infra.data_files_cli import add_lint_and_push, lint_files, push_file
from infra.offers_cli import TABLE_ENV, default_table
from shared.adapters.journey_catalog import parse
from shared.domain.journeys import Journey, format_duration


def _describe(journey: Journey) -> str:
    steps = ", ".join(f"{s.id} +{format_duration(s.after)}" if s.after else s.id for s in journey.steps)
    return f"{journey.kind}, one per {journey.per}, on {journey.trigger.describe()}; steps {steps}"


def _push(args: argparse.Namespace) -> int:
    return push_file(args, "journeys/", parse)


def _lint(args: argparse.Namespace) -> int:
    return lint_files(args.files, parse, "journey", _describe)


def _history(args: argparse.Namespace) -> int:
    import boto3

    from shared.adapters.journey_store import JourneyStore
    from shared.adapters.profile_store import ProfileStore

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
    """Register `journeys` on the `boomerang` command's subparsers."""
    journeys = sub.add_parser("journeys", help="lint journey files; show a customer's journey history")
    actions = journeys.add_subparsers(dest="journeys_command", required=True)
    add_lint_and_push(actions, "journey", _lint, _push)
    history = actions.add_parser("history", help="everything journeys did for one customer, and why")
    history.add_argument("--store", required=True)
    history.add_argument("--customer", required=True, help="customer id, e.g. u:<userId> or a:<anonymousId>")
    history.add_argument(
        "--table", default=default_table(), help=f"DynamoDB table (default: ${TABLE_ENV} or the emulator's)"
    )
    history.add_argument("--endpoint-url", default=None, help="e.g. the local emulator's moto server URL")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=_history)
