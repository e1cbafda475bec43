"""`boomerang customers erase|export` and `boomerang keys rotate`: data-subject requests and the
link-signing key ring, from a terminal.

    boomerang customers erase  --store S (--customer u:<id> | --email E | --phone P) [--local | --table T]
    boomerang customers export --store S (--customer ... ) --out DIR [--local | --table T]
    boomerang keys rotate (--secret ARN | --local)

Against AWS: credentials and region as any AWS CLI would; `--table` (the stack's TableName output,
or $BOOMERANG_TABLE), `--state-machine` (JourneyStateMachineArn: running journeys are stopped),
`--secret` (SigningSecretArn). `--local [URL]` asks a running `boomerang local` for all three.
What is printed is counts and key ids only: never a name, an address, a phone number or a key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any, TextIO

TABLE_ENV = "BOOMERANG_TABLE"
STATE_MACHINE_ENV = "BOOMERANG_STATE_MACHINE"
SECRET_ENV = "BOOMERANG_SIGNING_SECRET"
DEFAULT_LOCAL = "http://127.0.0.1:8787"


class CliError(Exception):
    pass


def _connect(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """boto3 client arguments, and the resources (table, state machine, secret)."""
    found = {
        "table": getattr(args, "table", None) or os.environ.get(TABLE_ENV, ""),
        "state_machine_arn": getattr(args, "state_machine", None) or os.environ.get(STATE_MACHINE_ENV, ""),
        "signing_secret_arn": getattr(args, "secret", None) or os.environ.get(SECRET_ENV, ""),
    }
    kwargs: dict[str, Any] = {"endpoint_url": args.endpoint_url}
    if args.local:
        try:
            with urllib.request.urlopen(args.local.rstrip("/") + "/_local/health", timeout=5) as resp:
                health = json.loads(resp.read())
        except OSError as exc:
            raise CliError(
                f"no `boomerang local` at {args.local} ({exc}); start it with `make local`"
            ) from exc
        kwargs = {
            "endpoint_url": args.endpoint_url or health["aws_endpoint"],
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
        found = {k: v or str(health.get(k, "")) for k, v in found.items()}
    return kwargs, found


def _who(args: argparse.Namespace) -> Any:
    from shared.services.privacy.collect import Who

    return Who(store_id=args.store, customer=args.customer, email=args.email, phone=args.phone).check()


def _store(kwargs: dict[str, Any], table: str) -> Any:
    import boto3

    from shared.adapters.privacy_store import PrivacyStore

    if not table:
        raise CliError(
            f"which table? --table <TableName output> (or ${TABLE_ENV}), or --local for the emulator"
        )
    return PrivacyStore(boto3.client("dynamodb", **kwargs), table)


def _erase(args: argparse.Namespace, out: TextIO) -> int:
    import boto3

    from shared.services.privacy.erase import Eraser

    kwargs, res = _connect(args)
    who = _who(args)
    sfn = boto3.client("stepfunctions", **kwargs) if res["state_machine_arn"] else None
    if sfn is None:
        print(
            f"boomerang customers: no state machine (--state-machine or ${STATE_MACHINE_ENV}): running journeys are "
            "not stopped; their next step finds no profile and sends nothing",
            file=sys.stderr,
        )
    result = Eraser(_store(kwargs, res["table"]), sfn, res["state_machine_arn"] or None).erase(who)
    print(f"store {args.store!r}: {result.status}", file=out)
    for kind, n in sorted(result.removed.items()):
        print(f"  {kind:<20} {n:>6} removed", file=out)
    print(f"  {'orders':<20} {result.pseudonymised_orders:>6} kept, no longer linked to anyone", file=out)
    print(f"  {'journeys stopped':<20} {result.executions_stopped:>6}", file=out)
    print(
        f"  {'tombstones':<20} {result.tombstones:>6} (hashed identifiers: old events are dropped)", file=out
    )
    print(
        f"  table exports in the analytics bucket expire within {result.exports_expire_within_days} days",
        file=out,
    )
    return 0


def _export(args: argparse.Namespace, out: TextIO) -> int:
    from shared.services.privacy import export as exporting

    kwargs, res = _connect(args)
    document = exporting.export(_store(kwargs, res["table"]), _who(args))
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export.json").write_text(exporting.to_json(document), encoding="utf-8")
    (folder / "export.html").write_text(exporting.to_html(document), encoding="utf-8")
    counts = ", ".join(f"{k} {n}" for k, n in exporting.counts(document).items())
    print(f"{folder}/export.json and export.html written: {counts}", file=out)
    return 0


def _rotate(args: argparse.Namespace, out: TextIO) -> int:
    import boto3

    from shared.services.privacy.keys import rotate_now

    kwargs, res = _connect(args)
    if not res["signing_secret_arn"]:
        raise CliError(f"which secret? --secret <SigningSecretArn output> (or ${SECRET_ENV}), or --local")
    ring = rotate_now(boto3.client("secretsmanager", **kwargs), res["signing_secret_arn"])
    kept = ", ".join(sorted(ring.keys, key=lambda k: int(k[1:])))
    print(
        f"signing key rotated: new links are signed with {ring.current}; links verify with {kept}", file=out
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    from shared.services.privacy.collect import BadRequest

    name = f"boomerang {args.command}"
    try:
        result: int = args.privacy_func(args, sys.stdout)
        return result
    except (CliError, BadRequest) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except NoRegionError:
        print(f"{name}: no AWS region; set AWS_REGION", file=sys.stderr)
    except NoCredentialsError:
        print(f"{name}: no AWS credentials", file=sys.stderr)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        print(f"{name}: AWS said {code}", file=sys.stderr)  # the message may quote a key or an address
    except BotoCoreError as exc:
        print(f"{name}: {type(exc).__name__}", file=sys.stderr)
    return 1


def add_parser(sub: Any) -> None:
    """Register `customers` and `keys` on the `boomerang` command's subparsers."""
    connect = argparse.ArgumentParser(add_help=False)
    connect.add_argument("--local", nargs="?", const=DEFAULT_LOCAL, default=None, metavar="URL")
    connect.add_argument("--endpoint-url", default=None, help="any AWS endpoint (e.g. moto)")
    who = argparse.ArgumentParser(add_help=False, parents=[connect])
    who.add_argument("--store", required=True, help="store id")
    one = who.add_mutually_exclusive_group(required=True)
    one.add_argument("--customer", help="u:<userId> or a:<anonymousId>")
    one.add_argument("--email")
    one.add_argument("--phone", help="international, e.g. +44 20 7946 0018")
    who.add_argument("--table", default=None, help=f"DynamoDB table (TableName output; ${TABLE_ENV})")

    customers = sub.add_parser("customers", help="answer data-subject requests: erase or export a customer")
    actions = customers.add_subparsers(dest="customers_command", required=True)
    erase = actions.add_parser(
        "erase", parents=[who], help="remove everything held about the customer (counts only)"
    )
    erase.add_argument("--state-machine", default=None, help=f"JourneyStateMachineArn (${STATE_MACHINE_ENV})")
    erase.set_defaults(func=_run, privacy_func=_erase)
    export = actions.add_parser(
        "export", parents=[who], help="everything held about them: export.json + export.html"
    )
    export.add_argument("--out", required=True, metavar="DIR", help="folder for export.json and export.html")
    export.set_defaults(func=_run, privacy_func=_export)

    keys = sub.add_parser("keys", help="the key ring that signs unsubscribe and preferences links")
    key_actions = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_actions.add_parser(
        "rotate", parents=[connect], help="a new signing key; old links keep working"
    )
    rotate.add_argument("--secret", default=None, help=f"SigningSecretArn output (${SECRET_ENV})")
    rotate.set_defaults(func=_run, privacy_func=_rotate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boomerang")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
