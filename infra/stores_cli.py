"""`boomerang stores add|list|rotate-key|set|remove`: register stores, their write keys and webhook secrets.

    boomerang stores add my-shop --name "My Shop" --url https://my-shop.example \
        --sender-email hello@my-shop.example --address-line "1 Main Street" --city Springfield \
        --region IL --postal-code 62701 --country US             # prints the write key, once
    boomerang stores list
    boomerang stores rotate-key my-shop --grace 24h              # the old key works 24 more hours
    boomerang stores set my-shop --timezone America/Chicago --settings policy.yaml
    boomerang stores set my-shop --shopify-secret -              # the secret from stdin, never argv
    boomerang stores form-key my-shop [--rotate]                # the signup form's publishable key
    boomerang stores remove my-shop --yes

Where: `--local` (a running `boomerang local`, found through its /_local/health), `--stack NAME`
(the deployed stack's `TableName` and `ApiUrl` outputs), or `--table` (with `--endpoint-url` for any
DynamoDB endpoint). Write keys are shown once and stored only as SHA-256 hashes; webhook secrets are
stored for the ingest λ to verify signatures with and are never printed again.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from dataclasses import dataclass
from typing import Any, TextIO

from shared.domain.webhooks import MAX_SECRET_LENGTH, PLATFORMS

DEFAULT_LOCAL = "http://127.0.0.1:8787"
DEFAULT_GRACE = "24h"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class CliError(Exception):
    pass


@dataclass
class Target:
    ddb: Any
    table: str
    api_url: str | None  # where the webhooks go: <api_url>v1/webhooks/<platform>/<store>


def duration(value: str) -> float:
    found = _DURATION.match(value.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration: use e.g. 0s, 30m, 24h, 7d")
    seconds = int(found[1]) * _UNITS[found[2]]
    if seconds > 90 * 86400:
        raise argparse.ArgumentTypeError("a grace period is at most 90d: a leaked key must not live on")
    return float(seconds)


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _connect(args: argparse.Namespace) -> Target:
    import boto3

    if args.local:
        try:
            with urllib.request.urlopen(args.local.rstrip("/") + "/_local/health", timeout=5) as resp:
                health = json.loads(resp.read())
        except OSError as exc:
            raise CliError(
                f"no `boomerang local` at {args.local} ({exc}); start it with `make local`"
            ) from exc
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=health["aws_endpoint"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        return Target(ddb, health["table"], args.local.rstrip("/") + "/")
    if args.stack:
        cfn = boto3.client("cloudformation", endpoint_url=args.endpoint_url)
        stacks = cfn.describe_stacks(StackName=args.stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if "TableName" not in outputs:
            raise CliError(f"stack {args.stack!r} has no TableName output; is it Boomerang's?")
        return Target(
            boto3.client("dynamodb", endpoint_url=args.endpoint_url),
            outputs["TableName"],
            outputs.get("ApiUrl"),
        )
    if args.table:
        return Target(boto3.client("dynamodb", endpoint_url=args.endpoint_url), args.table, args.api_url)
    raise CliError("which stores? --local (the emulator), --stack Boomerang (its outputs) or --table NAME")


def _directory(target: Target) -> Any:
    from shared.adapters.store_directory import StoreDirectory

    return StoreDirectory(target.ddb, target.table, ttl_seconds=0)


# --- settings from flags and files ---------------------------------------------------------------

_FLAGS = {  # flag dest -> Store field
    "name": "name",
    "url": "url",
    "sender_email": "sender_email",
    "sender_name": "sender_name",
    "unsubscribe_email": "unsubscribe_email",
    "cart_url": "cart_url",
    "timezone": "timezone",
    "locale": "locale",
    "sms_sender_id": "sms_sender_id",
}


def _settings_file(path: str) -> dict[str, Any]:
    import yaml

    from shared.domain.stores import Store

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)  # JSON is YAML
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: not JSON or YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path}: expected an object of store settings, got {type(data).__name__}")
    unknown = sorted(set(data) - set(Store.model_fields) | ({"store_id"} & set(data)))
    if unknown:
        allowed = ", ".join(sorted(set(Store.model_fields) - {"store_id"}))
        raise CliError(f"{path}: unknown store setting {', '.join(unknown)} (allowed: {allowed})")
    return data


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = _settings_file(args.settings) if getattr(args, "settings", None) else {}
    for dest, field in _FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "double_opt_in", None) is not None:
        changes["double_opt_in_email"] = args.double_opt_in == "on"
    address = {
        k: v
        for k, v in (
            ("lines", args.address_line),
            ("city", args.city),
            ("postal_code", args.postal_code),
            ("region", args.address_region),
            ("country", args.country),
        )
        if v
    }
    if address:
        changes["address"] = {**(changes.get("address") or {}), **address}
    return changes


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _store(data: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from shared.domain.stores import Store

    try:
        return Store.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(store)'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        )
        raise CliError(f"invalid store settings: {problems}") from exc


def _secret(value: str, platform: str, stdin: TextIO) -> str:
    secret = (stdin.readline() if value == "-" else value).strip()
    if not secret or len(secret) > MAX_SECRET_LENGTH or any(c.isspace() for c in secret):
        raise CliError(
            f"--{platform}-secret: 1 to {MAX_SECRET_LENGTH} characters without spaces "
            f"(Shopify: the app's client secret; WooCommerce: the webhook's secret)"
        )
    return secret


def _webhook_lines(target: Target, store_id: str, platforms: list[str]) -> list[str]:
    base = target.api_url or "<ApiUrl output>"
    return [f"  {p} webhooks: POST {base}v1/webhooks/{p}/{store_id}" for p in platforms]


# --- commands -------------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace, target: Target, out: TextIO, stdin: TextIO) -> int:
    from shared.adapters.store_directory import StoreExists

    store = _store({"store_id": args.store, **_changes(args)})
    try:
        key = _directory(target).create(store)
    except StoreExists as exc:
        raise CliError(
            f"store {args.store!r} exists; change it with `boomerang stores set {args.store}`"
        ) from exc
    print(f"store {store.store_id} added", file=out)
    print(f"write key (shown once; only its hash is stored): {key}", file=out)
    if store.address is None:
        print(
            "note: no postal address yet, so no marketing email (CAN-SPAM): set --address-line ... --country",
            file=out,
        )
    return 0


def cmd_list(args: argparse.Namespace, target: Target, out: TextIO, stdin: TextIO) -> int:
    import time

    directory = _directory(target)
    rows = []
    for store_id in sorted(directory.store_ids()):
        store = directory.get(store_id)
        keys = directory.keys_of(store_id)
        shown = ", ".join(
            k.fingerprint
            + (
                f" (until {time.strftime('%Y-%m-%d %H:%M', time.gmtime(k.expires_at))} UTC)"
                if k.expires_at
                else ""
            )
            for k in keys
        )
        rows.append(
            {
                "store": store_id,
                "name": store.name if store else "?",
                "timezone": store.timezone if store else "?",
                "address": "yes" if store and store.address else "no",
                "keys": shown or "none",
                "webhooks": ", ".join(directory.webhook_platforms(store_id)) or "-",
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
        return 0
    if not rows:
        print("no stores yet: boomerang stores add ...", file=out)
        return 0
    for r in rows:
        print(
            f"{r['store']}  {r['name']}  tz={r['timezone']}  address={r['address']}  keys: {r['keys']}  webhooks: {r['webhooks']}",
            file=out,
        )
    return 0


def cmd_rotate(args: argparse.Namespace, target: Target, out: TextIO, stdin: TextIO) -> int:
    from shared.adapters.store_directory import UnknownStore

    try:
        key = _directory(target).rotate_key(args.store, args.grace)
    except UnknownStore as exc:
        raise CliError(f"no store {args.store!r}; see `boomerang stores list`") from exc
    print(f"new write key for {args.store} (shown once): {key}", file=out)
    print(
        "the previous key(s) stop working within a minute (the API caches a key for up to 60 s)"
        if args.grace == 0
        else f"the previous key(s) keep working for {_human(args.grace)}",
        file=out,
    )
    return 0


def cmd_set(args: argparse.Namespace, target: Target, out: TextIO, stdin: TextIO) -> int:
    directory = _directory(target)
    current = directory.get(args.store)
    if current is None:
        raise CliError(f"no store {args.store!r}; add it with `boomerang stores add {args.store} ...`")
    changes = _changes(args)
    secrets = {p: getattr(args, f"{p}_secret") for p in PLATFORMS if getattr(args, f"{p}_secret") is not None}
    cleared = [p for p in PLATFORMS if getattr(args, f"no_{p}_secret")]
    if not changes and not secrets and not cleared:
        raise CliError("nothing to set: give settings (--timezone, --settings FILE, ...) or --shopify-secret")
    # everything is checked before anything is written
    store = _store(_merge(current.model_dump(mode="json", exclude_unset=True), changes)) if changes else None
    values = {p: _secret(v, p, stdin) for p, v in secrets.items()}
    if store is not None:
        directory.update(store)
        print(f"store {args.store}: {', '.join(sorted(changes))} set", file=out)
    for platform, secret in values.items():
        directory.set_webhook_secret(args.store, platform, secret)
        print(f"store {args.store}: {platform} webhook secret set", file=out)
    for platform in cleared:
        directory.set_webhook_secret(args.store, platform, None)
        print(f"store {args.store}: {platform} webhook secret removed (its webhooks now get 401)", file=out)
    if values:
        print("\n".join(_webhook_lines(target, args.store, sorted(values))), file=out)
    return 0


def cmd_form_key(args: argparse.Namespace, target: Target, out: TextIO, stdin: TextIO) -> int:
    from shared.adapters.form_keys import FormKeys

    store = _directory(target).get(args.store)
    if store is None:
        raise CliError(f"no store {args.store!r}; see `boomerang stores list`")
    key = FormKeys(target.ddb, target.table).issue(args.store, rotate=args.rotate)
    base = target.api_url or "<ApiUrl output>"
    print(f"form key for {args.store} (publishable: it only posts the signup form): {key}", file=out)
    if args.rotate:
        print("the previous form key stops working within a minute: update the embed snippet", file=out)
    if store.form is None:
        print(
            'note: no form configured yet: set `form:` with --settings FILE (README "Signup forms")', file=out
        )
    print(f'embed: <script src="{base}v1/forms/boomerang.js" data-key="{key}" async></script>', file=out)
    return 0


def cmd_remove(args: argparse.Namespace, target: Target, out: TextIO, stdin: TextIO) -> int:
    from shared.adapters.store_directory import UnknownStore

    if not args.yes:
        raise CliError(f"this stops every key and webhook of {args.store!r} at once; add --yes to confirm")
    try:
        deleted = _directory(target).remove(args.store)
    except UnknownStore as exc:
        raise CliError(f"no store {args.store!r}; see `boomerang stores list`") from exc
    print(
        f"store {args.store} removed ({deleted} items: settings, keys, webhook secrets); customer data is kept",
        file=out,
    )
    return 0


def _run(
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    from shared.adapters.store_directory import KeyInUse

    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    try:
        target = _connect(args)
        result: int = args.stores_func(args, target, out, stdin)
        return result
    except (CliError, KeyInUse) as exc:
        print(f"boomerang stores: {exc}", file=err)
    except NoRegionError:
        print("boomerang stores: no AWS region; set AWS_REGION", file=err)
    except NoCredentialsError:
        print("boomerang stores: no AWS credentials", file=err)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            print(f"boomerang stores: table {getattr(args, 'table', None)!r} not found", file=err)
        else:
            print(
                f"boomerang stores: AWS said {code}: {exc.response.get('Error', {}).get('Message', '')}",
                file=err,
            )
    except BotoCoreError as exc:
        print(f"boomerang stores: {exc}", file=err)
    return 1


def _store_id(value: str) -> str:
    from shared.domain.stores import STORE_ID_PATTERN

    if not re.fullmatch(STORE_ID_PATTERN, value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a store id: 2 to 63 lowercase letters, digits or '-', starting with a letter or digit"
        )
    return value


def _grace(value: str) -> float:
    return duration(value)


def add_parser(sub: Any) -> None:
    """Register `stores` on the `boomerang` command's subparsers."""
    stores = sub.add_parser("stores", help="register stores; their write keys and webhook secrets")
    actions = stores.add_subparsers(dest="stores_command", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--local",
        nargs="?",
        const=DEFAULT_LOCAL,
        default=None,
        metavar="URL",
        help=f"a running `boomerang local` (default {DEFAULT_LOCAL})",
    )
    where.add_argument(
        "--stack", default=None, help="a deployed stack's name (its TableName and ApiUrl outputs)"
    )
    where.add_argument("--table", default=None, help="the DynamoDB table (the stack's TableName output)")
    where.add_argument(
        "--api-url", default=None, help="with --table: the ApiUrl output, to print webhook URLs"
    )
    where.add_argument("--endpoint-url", default=None, help="any DynamoDB (and CloudFormation) endpoint")
    settings = argparse.ArgumentParser(add_help=False)
    for flag, help_text in (
        ("--name", "the store's name, as customers see it"),
        ("--url", "the shop's address, https://..."),
        ("--sender-email", "the From address (an SES-verified identity)"),
        ("--sender-name", "the From name"),
        ("--unsubscribe-email", "the mailto: of List-Unsubscribe"),
        ("--cart-url", "where reminders link, {cart_id} filled in (default <url>/cart)"),
        ("--timezone", "IANA zone for customers without their own, e.g. Europe/Warsaw"),
        ("--locale", "default locale, e.g. en, pl"),
        ("--sms-sender-id", "alphanumeric SMS sender id, where the country allows one"),
    ):
        settings.add_argument(flag, default=None, help=help_text)
    settings.add_argument("--double-opt-in", choices=("on", "off"), default=None, help="email double opt-in")
    settings.add_argument(
        "--address-line", action="append", default=None, help="postal address line (repeat, 1-3)"
    )
    settings.add_argument("--city", default=None)
    settings.add_argument("--postal-code", default=None)
    settings.add_argument(
        "--address-region", default=None, help="state, province, county (of the postal address)"
    )
    settings.add_argument("--country", default=None, help="ISO 3166-1 alpha-2, e.g. US, GB, PL")
    settings.add_argument(
        "--settings",
        default=None,
        metavar="FILE",
        help="any store settings as JSON or YAML (delivery, retention, ...)",
    )

    add = actions.add_parser("add", parents=[where, settings], help="a new store; prints its write key once")
    add.add_argument("store", type=_store_id)
    add.set_defaults(func=_run, stores_func=cmd_add)

    listing = actions.add_parser("list", parents=[where], help="stores, key fingerprints, webhooks set")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_run, stores_func=cmd_list)

    rotate = actions.add_parser(
        "rotate-key", parents=[where], help="a new write key; the old one for a grace period"
    )
    rotate.add_argument("store", type=_store_id)
    rotate.add_argument(
        "--grace",
        type=_grace,
        default=_grace(DEFAULT_GRACE),
        help=f"how long the old key keeps working (default {DEFAULT_GRACE}; 0s: stop it now)",
    )
    rotate.set_defaults(func=_run, stores_func=cmd_rotate)

    set_ = actions.add_parser("set", parents=[where, settings], help="change settings or webhook secrets")
    set_.add_argument("store", type=_store_id)
    for platform in PLATFORMS:
        set_.add_argument(
            f"--{platform}-secret",
            default=None,
            metavar="SECRET",
            help="the webhook signing secret ('-' reads it from stdin, out of shell history)",
        )
        set_.add_argument(
            f"--no-{platform}-secret", action="store_true", help=f"remove the {platform} secret"
        )
    set_.set_defaults(func=_run, stores_func=cmd_set)

    form_key = actions.add_parser(
        "form-key", parents=[where], help="the signup form's publishable key and embed snippet"
    )
    form_key.add_argument("store", type=_store_id)
    form_key.add_argument("--rotate", action="store_true", help="a new key; the old one stops at once")
    form_key.set_defaults(func=_run, stores_func=cmd_form_key)

    remove = actions.add_parser("remove", parents=[where], help="the store, its keys and webhook secrets")
    remove.add_argument("store", type=_store_id)
    remove.add_argument("--yes", action="store_true", help="confirm")
    remove.set_defaults(func=_run, stores_func=cmd_remove)


def main(
    argv: list[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog="boomerang")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return _run(args, out, err, stdin)


if __name__ == "__main__":
    sys.exit(main())
