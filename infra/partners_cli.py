"""`boomerang partners lint|push|secret` and `boomerang orders show`: fulfilment partners from the CLI.

- lint / push: partner files, like journey and segment files (infra/data_files_cli.py).
- secret: a partner's credentials and signing secret into Secrets Manager
  (``boomerang/partners/<store>/<partner>``), read as JSON from stdin so they never appear in the
  shell history or the process list; only the key names are echoed back.
- orders show: every forward of one order, each attempt and the partner's answer, and shipments.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from infra.data_files_cli import add_lint_and_push, lint_files, push_file
from infra.offers_cli import TABLE_ENV, default_table
from shared.adapters.partner_catalog import parse
from shared.domain.partners import SECRET_FIELDS, Partner, secret_name


def _describe(partner: Partner) -> str:
    m = partner.match
    rules = [
        f"{k}: {', '.join(v)}"
        for k, v in (
            ("skus", m.skus),
            ("sku_prefixes", m.sku_prefixes),
            ("vendors", m.vendors),
            ("tags", m.tags),
        )
        if v
    ]
    return f"{'; '.join(rules)} -> {partner.endpoint.orders} ({partner.auth.type}, payload {partner.payload}); secret needs {', '.join(partner.secret_keys()) or 'nothing'}"


def _lint(args: argparse.Namespace) -> int:
    return lint_files(args.files, parse, "partner", _describe)


def _push(args: argparse.Namespace) -> int:
    return push_file(args, "partners/", parse)


def _client(service: str, args: argparse.Namespace) -> Any:
    """A client for AWS, or for the emulator's moto server (any credentials do there)."""
    import boto3

    local = bool(args.endpoint_url) and urlsplit(args.endpoint_url).hostname in ("127.0.0.1", "localhost")
    kwargs = {"aws_access_key_id": "local", "aws_secret_access_key": "local"} if local else {}
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=args.endpoint_url,
        region_name=args.region or ("us-east-1" if local else None),
        **kwargs,
    )


def _secret(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    raw = sys.stdin.read()
    try:
        values = json.loads(raw)
    except ValueError:
        print(
            'boomerang partners secret: stdin must be a JSON object, e.g. {"signing_secret": "...", "api_key": "..."}',
            file=sys.stderr,
        )
        return 2
    unknown = sorted(set(values) - set(SECRET_FIELDS)) if isinstance(values, dict) else None
    if not isinstance(values, dict) or unknown or not all(isinstance(v, str) and v for v in values.values()):
        print(
            f"boomerang partners secret: give non-empty strings for any of {', '.join(SECRET_FIELDS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            file=sys.stderr,
        )
        return 2
    sm = _client("secretsmanager", args)
    name = secret_name(args.store, args.partner)
    body = json.dumps(values)
    try:
        sm.put_secret_value(SecretId=name, SecretString=body)
        action = "updated"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        sm.create_secret(
            Name=name,
            SecretString=body,
            Description=f"Boomerang fulfilment partner {args.partner} of store {args.store}",
        )
        action = "created"
    print(f"{action} secret {name} with {', '.join(sorted(values))}")
    return 0


def _when(ts: Any) -> str:
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _orders_show(args: argparse.Namespace) -> int:
    from shared.adapters.fulfilment_store import FulfilmentStore

    store = FulfilmentStore(_client("dynamodb", args), args.table)
    order = store.order(args.store, args.order)
    records = store.for_order(args.store, args.order)
    if args.json:
        print(
            json.dumps(
                {
                    "order": order,
                    "forwards": [{k: v for k, v in r.items() if k != "document"} for r in records],
                },
                default=str,
                indent=2,
            )
        )
        return 0 if (order or records) else 1
    if not order and not records:
        print(f"order {args.order} of store {args.store}: not found", file=sys.stderr)
        return 1
    if order:
        print(
            f"order {args.order}: {order.get('status')}, total {order.get('total')} {order.get('currency') or ''}, at {_when(order.get('at'))}"
        )
    if not records:
        print("  no fulfilment partner has items of this order (the store ships it)")
    for r in sorted(records, key=lambda r: (r["partner_id"], r["action"] != "create")):
        print(
            f"  {r['partner_id']} {r['action']}: {r['status']}"
            + (f" ({r['reason']})" if r.get("reason") else "")
            + (f", partner ref {r['partner_reference']}" if r.get("partner_reference") else "")
        )
        for a in r.get("attempts", []):
            answer = (a.get("error") or a.get("answer") or "").replace("\n", " ")[:120]
            print(
                f"    #{a['n']} {a['at']} HTTP {a.get('status_code') or '-'} {a['outcome']} {a.get('ms', 0)} ms {answer}"
            )
        if r.get("next_attempt_at") and r["status"] == "retrying":
            print(f"    next attempt {_when(r['next_attempt_at'])}")
        if r.get("shipped_at"):
            print(
                f"    shipped {_when(r['shipped_at'])} {r.get('carrier') or ''} {r.get('tracking_url') or ''}".rstrip()
            )
        if r.get("delivered_at"):
            print(f"    delivered {_when(r['delivered_at'])}")
    return 0


def add_parser(sub: Any) -> None:
    """Register `partners` and `orders` on the `boomerang` command's subparsers."""
    partners = sub.add_parser("partners", help="fulfilment partner files and secrets")
    actions = partners.add_subparsers(dest="partners_command", required=True)
    add_lint_and_push(actions, "partner", _lint, _push)
    p = actions.add_parser(
        "secret",
        help="set a partner's secret (JSON on stdin: signing_secret, api_key, password, client_secret)",
    )
    p.add_argument("--store", required=True)
    p.add_argument("--partner", required=True)
    p.add_argument(
        "--endpoint-url", default=None, help="Secrets Manager endpoint (the emulator's moto server)"
    )
    p.add_argument("--region", default=None)
    p.set_defaults(func=_secret)

    orders = sub.add_parser("orders", help="what was forwarded to fulfilment partners, and their answers")
    oactions = orders.add_subparsers(dest="orders_command", required=True)
    p = oactions.add_parser("show", help="an order's forwards, every attempt and answer, its shipments")
    p.add_argument("--store", required=True)
    p.add_argument("--order", required=True)
    p.add_argument(
        "--table", default=default_table(), help=f"table name (default ${TABLE_ENV} or the emulator's)"
    )
    p.add_argument("--endpoint-url", default=None, help="DynamoDB endpoint (the emulator's moto server)")
    p.add_argument("--region", default=None)
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(func=_orders_show)
