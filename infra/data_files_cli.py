"""What `boomerang journeys` and `boomerang segments` share: lint local files, push one file.

lint reads local files (no AWS needed) and prints every problem with its line, exiting 1 if any.
push uploads `<id>.yaml` to `<prefix><store>/` of the templates bucket (the local emulator with
`--local`, AWS with `--bucket`) and prints the validator's report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.platform.data_files import DataFileError

Parse = Callable[..., Any]  # (text, source, expected_id=...) -> the parsed file, or DataFileError


def lint_files(files: list[str], parse: Parse, kind: str, describe: Callable[[Any], str]) -> int:
    failed = 0
    for name in files:
        path = Path(name)
        try:
            parsed = parse(path.read_bytes(), str(path), expected_id=path.stem)
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror})", file=sys.stderr)
            failed += 1
            continue
        except DataFileError as exc:
            failed += 1
            for line, message in exc.problems:
                print(f"{path}:{line or 1}: {message}", file=sys.stderr)
            continue
        print(f"{path}: ok ({describe(parsed) if parsed.enabled else f'turns the {kind} off'})")
    return 1 if failed else 0


def push_file(args: argparse.Namespace, prefix: str, parse: Parse) -> int:
    from infra.local.templates_cli import push_data_file

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read ({exc})", file=sys.stderr)
        return 2
    try:
        parse(text, str(path), expected_id=path.stem)
    except DataFileError as exc:
        print("lint found problems (the validator refuses them; pushing anyway so you get its report):")
        for line, message in exc.problems:
            print(f"  {path}:{line or 1}: {message}")
    return push_data_file(args, f"{prefix}{args.store}/{path.stem}.yaml", text)


def add_lint_and_push(
    actions: Any,
    kind: str,
    lint: Callable[[argparse.Namespace], int],
    push: Callable[[argparse.Namespace], int],
) -> None:
    from infra.local.templates_cli import remote

    p = actions.add_parser("lint", help=f"check {kind} YAML files (line-level errors)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=lint)
    p = actions.add_parser("push", help=f"upload a {kind} file for a store and show the validator's report")
    p.add_argument("file", metavar="FILE", help=f"<id>.yaml: the file name is the {kind}'s id")
    p.add_argument("--store", required=True, help="store id, or _default for every store")
    p.add_argument("--wait", type=float, default=120, help="seconds to wait for the validator (0: don't)")
    remote(p)
    p.set_defaults(func=push)
