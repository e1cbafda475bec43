"""`boomerang templates list|pull|lint|preview|push|rollback`: the marketer's side of templates.

Against the local emulator (``--local``, which asks a running ``boomerang local`` for its S3
endpoint and bucket) or AWS (``--bucket <TemplatesBucketName output>``, your usual AWS credentials;
``--endpoint-url`` for any other S3 endpoint). lint and preview work on a local folder only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from shared.domain.template_variables import LAYOUT_NAME, sample_variables
from shared.templates.lint import Problem, lint_folder, split_locale
from shared.templates.manifests import list_folders, rollback
from shared.templates.model import (
    LAYOUT_FILES,
    MJML_BODY,
    EmailTemplate,
    PushTemplate,
    SmsTemplate,
    TemplateError,
    WebPushTemplate,
    sms_segments_budget,
)
from shared.templates.render import render_email, render_push, render_sms, render_webpush
from shared.templates.reports import describe_folder, read_report
from shared.templates.store import TemplateStore, folder_prefix, read_object

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LOCAL = "http://127.0.0.1:8787"
CHROMIUM = os.environ.get("BOOMERANG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


class CliError(Exception):
    pass


def remote(p: argparse.ArgumentParser) -> None:
    """Where the templates bucket is: the local emulator or AWS (also `journeys|segments push`)."""
    p.add_argument(
        "--local",
        nargs="?",
        const=DEFAULT_LOCAL,
        default=None,
        metavar="URL",
        help=f"a running `boomerang local` (default {DEFAULT_LOCAL})",
    )
    p.add_argument("--bucket", default=os.environ.get("BOOMERANG_TEMPLATES_BUCKET"), help="templates bucket")
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (e.g. the emulator's moto server)")
    p.add_argument("--region", default=None)


def push_data_file(args: argparse.Namespace, key: str, text: str) -> int:
    """Upload a journey or segment file (`journeys|segments push`) and print the validator's report.
    A rejected version never replaces the one in force: the report says why."""
    try:
        s3, bucket = _connect(args)
    except CliError as exc:
        print(f"boomerang: {exc}", file=sys.stderr)
        return 2
    if read_object(s3, bucket, key) == text:
        print(f"s3://{bucket}/{key}: unchanged")
        return 0
    version = s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8")).get("VersionId") or "null"
    print(f"uploaded s3://{bucket}/{key} ({_short(version)})")
    if args.wait <= 0:
        return 0
    return _print_reports(wait_for_reports(s3, bucket, {key: version}, args.wait))


def add_parser(sub: Any) -> None:
    templates = sub.add_parser("templates", help="list, pull, lint, preview, push and roll back templates")
    tsub = templates.add_subparsers(dest="templates_command", required=True)

    p = tsub.add_parser("list", help="templates, their versions, which is active, the last report")
    p.add_argument("store", nargs="?", default=None, help="only this store's (and the default) templates")
    remote(p)
    p.set_defaults(func=cmd_list)

    p = tsub.add_parser("pull", help="download a template's active files into a local folder")
    p.add_argument(
        "template", help="STORE/NAME, e.g. demo/cart-abandoned (the default's if the store has none)"
    )
    p.add_argument("folder", type=Path, help="where to put them (creates FOLDER/NAME/)")
    remote(p)
    p.set_defaults(func=cmd_pull)

    p = tsub.add_parser("lint", help="check a local template folder: line-level errors")
    p.add_argument("folder", type=Path)
    p.add_argument("--name", default=None, help="template name (default: the folder's name)")
    p.set_defaults(func=cmd_lint)

    p = tsub.add_parser("preview", help="render a local template with sample data: HTML, text and a PNG")
    p.add_argument("folder", type=Path)
    p.add_argument("--name", default=None, help="template name (default: the folder's name)")
    p.add_argument("--out", type=Path, default=Path("preview"), help="output folder (default ./preview)")
    p.add_argument("--locale", default=None, help="render this locale's folder (e.g. pl) and formats")
    p.add_argument("--customer", default=None, help="a real profile's customer id, e.g. u:ada-1 (--local)")
    p.add_argument("--store", default="demo", help="store of --customer (default demo)")
    p.add_argument("--local", nargs="?", const=DEFAULT_LOCAL, default=None, metavar="URL")
    p.add_argument("--no-png", action="store_true", help="skip the Chromium screenshot")
    p.add_argument("--width", type=int, default=800)
    p.add_argument("--height", type=int, default=1200)
    p.add_argument("--offline", action="store_true", help="Chromium loads nothing from the network")
    p.set_defaults(func=cmd_preview)

    p = tsub.add_parser("push", help="upload a local template folder; prints what the validator said")
    p.add_argument("folder", type=Path)
    p.add_argument("store", help="store id (templates/<store>/<name>/)")
    p.add_argument("--name", default=None, help="template name (default: the folder's name)")
    p.add_argument("--wait", type=float, default=120, help="seconds to wait for the validator (0: don't)")
    remote(p)
    p.set_defaults(func=cmd_push)

    p = tsub.add_parser("rollback", help="publish an earlier version again")
    p.add_argument("template", help="STORE/NAME")
    p.add_argument("--file", default=None, help="e.g. subject.txt (default: the file changed last)")
    p.add_argument("--to", default=None, help="version id (default: the previous active version)")
    p.add_argument("--wait", type=float, default=120)
    remote(p)
    p.set_defaults(func=cmd_rollback)


def main_for_tests(argv: list[str]) -> int:
    """`boomerang templates <argv>` without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="boomerang")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["templates", *argv]))


def run(args: argparse.Namespace) -> int:
    try:
        result: int = args.func(args)
        return result
    except CliError as exc:
        print(f"boomerang templates: {exc}", file=sys.stderr)
        return 2


# --- connecting -----------------------------------------------------------------------------------


def _connect(args: argparse.Namespace) -> tuple[Any, str]:
    import boto3

    endpoint, bucket, region = args.endpoint_url, args.bucket, args.region
    kwargs: dict[str, Any] = {}
    if args.local:
        try:
            with urllib.request.urlopen(args.local.rstrip("/") + "/_local/health", timeout=5) as resp:
                health = json.loads(resp.read())
        except OSError as exc:
            raise CliError(
                f"no `boomerang local` at {args.local} ({exc}); start it with `make local`"
            ) from exc
        endpoint = endpoint or health["aws_endpoint"]
        bucket = bucket or health["templates_bucket"]
        region = region or "us-east-1"
        kwargs = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    if not bucket:
        raise CliError("which bucket? --bucket <TemplatesBucketName output>, or --local for the emulator")
    client = boto3.client("s3", endpoint_url=endpoint, region_name=region, **kwargs)
    return client, bucket


def _split(template: str) -> tuple[str, str]:
    store, _, name = template.strip("/").partition("/")
    if not store or not name or "/" in name:
        raise CliError(f"{template!r}: expected STORE/NAME, e.g. demo/cart-abandoned")
    return store, name


def _short(version: str | None) -> str:
    return (version or "-")[:8]


# --- list -----------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    s3, bucket = _connect(args)
    owners = [args.store, "_default"] if args.store else [None]
    folders = sorted({f for owner in owners for f in list_folders(s3, bucket, owner)})
    if not folders:
        print(f"no templates in s3://{bucket}/templates/")
        return 0
    for owner, name in folders:
        print(f"{folder_prefix(owner, name)}")
        for f in describe_folder(s3, bucket, owner, name):
            latest = f["versions"][0]["version_id"] if f["versions"] else None
            report = f["report"] or {}
            status = (
                "active" if f["active"] and f["active"] == latest else (report.get("status") or "not checked")
            )
            line = f"  {f['file']:<22} {status:<9} active {_short(f['active'])}  latest {_short(latest)}"
            line += f"  ({len(f['versions'])} version{'s' if len(f['versions']) != 1 else ''})"
            print(line)
            if status == "rejected":
                for p in report.get("problems", []):
                    print(f"      {_problem_text(p)}")
    return 0


def _problem_text(p: dict[str, Any]) -> str:
    return str(Problem(p["file"], p.get("line"), p["message"]))


# --- pull -----------------------------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    s3, bucket = _connect(args)
    store_id, name = _split(args.template)
    target = args.folder / name
    for owner in dict.fromkeys((store_id, "_default")):
        manifest = TemplateStore(s3, bucket, ttl_seconds=0).manifest(owner, name)
        if manifest and manifest.get("files"):
            break
    else:
        raise CliError(f"no active template {name} for {store_id} or _default")
    prefix = folder_prefix(owner, name)
    for rel, entry in sorted(manifest["files"].items()):
        text = read_object(s3, bucket, prefix + rel, entry.get("version_id"))
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text or "", encoding="utf-8")
        print(f"{path}  <- s3://{bucket}/{prefix}{rel} ({_short(entry.get('version_id'))})")
    return 0


# --- lint -----------------------------------------------------------------------------------------


def _read_folder(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder")
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _local_layouts(folder: Path, locale: str) -> dict[str, str]:
    """A sibling _layout/ folder (with its locale subfolders), else the shipped default layout."""
    for layout_dir in (folder.parent / LAYOUT_NAME, REPO_ROOT / "infra/templates/_default" / LAYOUT_NAME):
        out: dict[str, str] = {}
        for file in LAYOUT_FILES:
            for sub in ([locale] if locale else []) + [locale.split("-")[0] if locale else "", ""]:
                path = layout_dir / sub / file if sub else layout_dir / file
                if path.is_file():
                    out[file] = path.read_text(encoding="utf-8")
                    break
        if out:
            return out
    return {}


def lint_local(folder: Path, name: str | None = None) -> list[Problem]:
    name = name or folder.resolve().name
    files = _read_folder(folder)
    general, per_unit = lint_folder(name, files, layouts_for=lambda loc: _local_layouts(folder, loc))
    return general + [p for problems in per_unit.values() for p in problems]


def cmd_lint(args: argparse.Namespace) -> int:
    problems = lint_local(args.folder, args.name)
    for p in problems:
        print(
            f"{args.folder / p.file if p.file else args.folder}{':' + str(p.line) if p.line else ''}: {p.message}"
        )
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)
        return 1
    print(f"{args.folder}: ok")
    return 0


# --- preview --------------------------------------------------------------------------------------


def _customer_from_profile(local: str, store: str, customer: str) -> dict[str, Any]:
    url = f"{local.rstrip('/')}/_local/profile?store={store}&customer={customer}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            profile = json.loads(resp.read())
    except OSError as exc:
        raise CliError(f"cannot read profile {customer} from {local}: {exc}") from exc
    traits = profile.get("traits") or {}
    return {k: traits.get(k) for k in ("first_name", "last_name", "locale")}


def preview(
    folder: Path,
    out: Path,
    *,
    name: str | None = None,
    locale: str | None = None,
    customer: dict[str, Any] | None = None,
    png: bool = True,
    size: tuple[int, int] = (800, 1200),
    offline: bool = False,
) -> list[Path]:
    name = name or folder.resolve().name
    files = _read_folder(folder)
    loc = locale or ""
    here = {split_locale(r)[1]: t for r, t in files.items() if split_locale(r)[0] == loc}
    if loc and not here:
        raise CliError(f"{folder} has no {loc}/ folder")
    variables = sample_variables(name, locale)
    if customer:
        variables["customer"] = {**variables.get("customer", {}), **{k: v for k, v in customer.items() if v}}
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    summary: list[str] = []
    if "subject.txt" in here:
        mjml = MJML_BODY in here
        email = EmailTemplate(
            name=name,
            subject=here["subject.txt"],
            html=here.get(MJML_BODY if mjml else "body.html", ""),
            text=here.get("body.txt", ""),
            locale=locale,
            layouts=_local_layouts(folder, loc),
            mjml=mjml,
        )
        rendered = render_email(email, variables)
        (out / "email.html").write_text(rendered.html, encoding="utf-8")
        (out / "email.txt").write_text(f"Subject: {rendered.subject}\n\n{rendered.text}", encoding="utf-8")
        written += [out / "email.html", out / "email.txt"]
        summary.append(f"Subject: {rendered.subject}")
        if png:
            written.append(screenshot(out / "email.html", out / "email.png", size=size, offline=offline))
    if "sms.txt" in here:
        from shared.domain.contacts import segments

        sms = SmsTemplate(
            name, here["sms.txt"], sms_segments_budget(here.get("sms.json"), name), locale=locale
        )
        body = render_sms(sms, variables)
        count = segments(body)
        (out / "sms.txt").write_text(body + "\n", encoding="utf-8")
        written.append(out / "sms.txt")
        summary.append(f"SMS ({count.segments}/{sms.max_segments} segments, {count.encoding}): {body}")
    if "push_title.txt" in here:
        push = render_push(
            PushTemplate(
                name, here["push_title.txt"], here.get("push_body.txt", ""), here.get("push_link.txt")
            ),
            variables,
            locale=locale,
        )
        (out / "push.json").write_text(json.dumps(push.__dict__, indent=2), encoding="utf-8")
        written.append(out / "push.json")
        summary.append(f"Push: {push.title} — {push.body}")
    if "webpush_title.txt" in here:
        shown = render_webpush(
            WebPushTemplate(
                name,
                here["webpush_title.txt"],
                here.get("webpush_body.txt", ""),
                here.get("webpush_link.txt"),
                here.get("webpush_icon.txt"),
                here.get("webpush_image.txt"),
            ),
            variables,
            locale=locale,
        )
        (out / "webpush.json").write_text(json.dumps(shown.__dict__, indent=2), encoding="utf-8")
        written.append(out / "webpush.json")
        summary.append(f"Web push: {shown.title} — {shown.body}")
    (out / "summary.txt").write_text("\n".join(summary) + "\n", encoding="utf-8")
    return [*written, out / "summary.txt"]


def screenshot(html: Path, png: Path, *, size: tuple[int, int], offline: bool = False) -> Path:
    """A PNG of a local HTML file in headless Chromium (Debian's /usr/bin/chromium)."""
    chromium = shutil.which(CHROMIUM) or shutil.which("chromium")
    if not chromium:
        raise CliError(
            "no Chromium for the PNG (Debian: `sudo apt-get install chromium`), or pass --no-png; "
            "the HTML preview is written"
        )
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="boomerang-chromium-") as profile:
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={png.resolve()}",
        ]
        if offline:
            command.append("--host-resolver-rules=MAP * ~NOTFOUND")
        command.append(html.resolve().as_uri())
        result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    if not png.exists() or png.stat().st_size == 0:
        raise CliError(f"Chromium made no screenshot (exit {result.returncode}): {result.stderr[-500:]}")
    return png


def cmd_preview(args: argparse.Namespace) -> int:
    customer = None
    if args.customer:
        if not args.local:
            raise CliError("--customer reads the profile from a running emulator: add --local")
        customer = _customer_from_profile(args.local, args.store, args.customer)
    try:
        written = preview(
            args.folder,
            args.out,
            name=args.name,
            locale=args.locale,
            customer=customer,
            png=not args.no_png,
            size=(args.width, args.height),
            offline=args.offline,
        )
    except TemplateError as exc:
        print(f"{args.folder}: {exc}", file=sys.stderr)
        return 1
    print((args.out / "summary.txt").read_text(encoding="utf-8"), end="")
    for path in written:
        print(f"wrote {path}")
    return 0


# --- push and rollback ----------------------------------------------------------------------------


def wait_for_reports(
    s3: Any, bucket: str, uploaded: dict[str, str], timeout: float
) -> dict[str, dict[str, Any] | None]:
    """The validator's report on each uploaded version (None: not checked within the timeout)."""
    deadline = time.monotonic() + timeout
    reports: dict[str, dict[str, Any] | None] = dict.fromkeys(uploaded)
    while True:
        for key, version in uploaded.items():
            report = read_report(s3, bucket, key)
            if report and report.get("version_id") == version and report.get("status") != "pending":
                reports[key] = report
            elif report and report.get("version_id") == version:
                reports[key] = report  # pending may still turn active when the rest lands
        done = all(r and r["status"] != "pending" for r in reports.values())
        if done or time.monotonic() >= deadline:
            return reports
        time.sleep(0.3)


def _print_reports(reports: dict[str, dict[str, Any] | None]) -> int:
    failed = 0
    for key, report in reports.items():
        if report is None:
            print(f"{key}: not checked yet (is the validator running?)")
            failed += 1
            continue
        print(f"{key}: {report['status']} — {report.get('summary', '')}".rstrip(" —"))
        if report["status"] not in ("active", "checked"):  # checked: a journey or segment file
            failed += 1
            for p in report.get("problems", []):
                print(f"    {_problem_text(p)}")
    return 1 if failed else 0


def cmd_push(args: argparse.Namespace) -> int:
    s3, bucket = _connect(args)
    name = args.name or args.folder.resolve().name
    problems = lint_local(args.folder, name)
    if problems:
        print("lint found problems (the validator would refuse them; pushing anyway so you get its report):")
        for p in problems:
            print(f"  {p}")
    prefix = folder_prefix(args.store, name)
    uploaded: dict[str, str] = {}
    for rel, text in _read_folder(args.folder).items():
        key = prefix + rel
        if read_object(s3, bucket, key) == text:
            continue  # unchanged: no new version, nothing to validate
        response = s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        uploaded[key] = response.get("VersionId") or "null"
        print(f"uploaded s3://{bucket}/{key} ({_short(uploaded[key])})")
    if not uploaded:
        print("nothing changed")
        return 0
    if args.wait <= 0:
        return 0
    return _print_reports(wait_for_reports(s3, bucket, uploaded, args.wait))


def cmd_rollback(args: argparse.Namespace) -> int:
    s3, bucket = _connect(args)
    store_id, name = _split(args.template)
    try:
        key, restored, new_version = rollback(s3, bucket, store_id, name, file=args.file, to=args.to)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(f"republished version {_short(restored)} of {key} as {_short(new_version)}")
    if args.wait <= 0:
        return 0
    return _print_reports(wait_for_reports(s3, bucket, {key: new_version}, args.wait))
