"""`boomerang offers upload|status`: load a store's unique offer codes into a pool, and watch what is left.

    boomerang offers upload --store S --pool P FILE     # one code per line, or a CSV with a `code` column
    boomerang offers status --store S [--pool P]

DynamoDB is reached as any AWS CLI would (credentials and region from the environment or
~/.aws/config); `--endpoint-url` points at the local emulator's moto server instead. The table is
`--table`, else $BOOMERANG_TABLE, else the local emulator's table name; a deployed stack names its
table in the `TableName` output.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

TABLE_ENV = "BOOMERANG_TABLE"


def default_table() -> str:
    from infra.local.emulator import resource_name

    return os.environ.get(TABLE_ENV) or resource_name("table", "main")  # what `boomerang local` creates


@dataclass(frozen=True)
class CodeLine:
    line: int  # 1-based line number in the file
    code: str


class CodeFileError(ValueError):
    pass


def read_codes(path: Path) -> list[CodeLine]:
    """Codes from a file: one per line, or a CSV whose header has a `code` column. Blank lines and the
    header are ignored; surrounding spaces are trimmed."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheet exports often start with a BOM
    except FileNotFoundError:
        raise CodeFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CodeFileError(f"{path}: is a directory, not a file of codes") from None
    except UnicodeDecodeError as exc:
        raise CodeFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CodeFileError(f"{path}: {exc.strerror}") from None
    rows = csv.reader(text.splitlines())
    column = 0
    is_csv = False
    header_seen = False
    out: list[CodeLine] = []
    for row in rows:
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if not header_seen:
            header_seen = True
            names = [c.lower() for c in cells]
            if "code" in names:
                column, is_csv = names.index("code"), True
                continue
            if len(cells) > 1:
                raise CodeFileError(
                    f"{path}: line {rows.line_num} has several columns but there is no `code` column header"
                )
        if is_csv:
            code = cells[column] if column < len(cells) else ""
        else:  # one code per line: the whole line, so a stray comma is reported, not split away
            code = ",".join(row).strip()
        out.append(CodeLine(line=rows.line_num, code=code))
    return out


def _client(args: argparse.Namespace) -> Any:
    import boto3

    return boto3.client("dynamodb", endpoint_url=args.endpoint_url)


def _upload(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from shared.adapters.offer_store import OfferStore
    from shared.domain.offers import code_problem

    codes = read_codes(Path(args.file))
    problems = [(c, p) for c in codes if (p := code_problem(c.code))]
    if problems:
        print(f"{args.file}: {len(problems)} invalid code(s); nothing uploaded:", file=err)
        for c, p in problems[:50]:
            shown = c.code if len(c.code) <= 40 else c.code[:40] + "..."
            print(f"  line {c.line}: {shown!r} {p}", file=err)
        if len(problems) > 50:
            print(f"  ... and {len(problems) - 50} more", file=err)
        return 1
    if not codes:
        print(f"{args.file}: no codes in the file; nothing uploaded", file=err)
        return 1
    result = OfferStore(_client(args), args.table).upload(args.store, args.pool, (c.code for c in codes))
    print(
        f"pool {args.pool!r} (store {args.store!r}): {result.added} added, "
        f"{result.duplicates} already there or repeated",
        file=out,
    )
    return _status(args, out, err)


def _status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from shared.adapters.offer_store import OfferStore, UnknownPool
    from shared.platform.clock import iso

    offers = OfferStore(_client(args), args.table)
    if args.pool:
        try:
            found = [offers.status(args.store, args.pool)]
        except UnknownPool:
            print(f"no pool {args.pool!r} in store {args.store!r} (table {args.table})", file=err)
            return 1
    else:
        found = offers.pools(args.store)
        if not found:
            print(f"store {args.store!r} has no offer pools (table {args.table})", file=out)
            return 0
    print(f"{'pool':<24} {'total':>8} {'given':>8} {'remaining':>10}  state", file=out)
    for s in found:
        state = "EXHAUSTED" if s.remaining == 0 else "low" if s.low else "ok"
        if s.exhausted_at is not None:
            state += f" (ran out {iso(s.exhausted_at)})"
        print(f"{s.pool:<24} {s.total:>8} {s.given:>8} {s.remaining:>10}  {state}", file=out)
    return 0


def _run(args: argparse.Namespace) -> int:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    out, err = sys.stdout, sys.stderr
    try:
        result: int = args.offers_func(args, out, err)
        return result
    except CodeFileError as exc:
        print(f"boomerang offers: {exc}", file=err)
    except NoRegionError:
        print("boomerang offers: no AWS region; set AWS_REGION (the local emulator uses us-east-1)", file=err)
    except NoCredentialsError:
        print("boomerang offers: no AWS credentials (for the local emulator any values do)", file=err)
    except EndpointConnectionError as exc:
        print(f"boomerang offers: cannot reach DynamoDB at {exc.kwargs.get('endpoint_url')}", file=err)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            print(
                f"boomerang offers: table {args.table!r} not found; pass --table or set {TABLE_ENV}",
                file=err,
            )
        else:
            print(f"boomerang offers: DynamoDB said {code}: {exc}", file=err)
    except BotoCoreError as exc:
        print(f"boomerang offers: {exc}", file=err)
    return 1


def _pool_id(value: str) -> str:
    from shared.domain.offers import POOL_PATTERN

    if not POOL_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a pool id: 1 to 63 lowercase letters, digits or '-', starting with a letter or digit"
        )
    return value


def add_parser(sub: Any) -> None:
    """Register `offers` on the `boomerang` command's subparsers."""
    offers = sub.add_parser("offers", help="upload unique offer codes to a pool; show what is left")
    actions = offers.add_subparsers(dest="offers_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", required=True, help="store id")
    common.add_argument(
        "--table", default=default_table(), help=f"DynamoDB table (default: ${TABLE_ENV} or the emulator's)"
    )
    common.add_argument("--endpoint-url", default=None, help="e.g. the local emulator's moto server URL")
    upload = actions.add_parser(
        "upload", parents=[common], help="add codes from FILE (one per line, or CSV with a `code` column)"
    )
    upload.add_argument("--pool", required=True, type=_pool_id, help="pool id, e.g. welcome-10")
    upload.add_argument("file", metavar="FILE")
    upload.set_defaults(func=_run, offers_func=_upload)
    status = actions.add_parser("status", parents=[common], help="codes total, given and remaining")
    status.add_argument(
        "--pool", default=None, type=_pool_id, help="one pool (default: every pool of the store)"
    )
    status.set_defaults(func=_run, offers_func=_status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boomerang")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
