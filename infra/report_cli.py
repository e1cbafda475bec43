"""`boomerang report`: a store's retention report (HTML with charts, or the same figures as JSON).

    boomerang report [--store S] [--from YYYY-MM-DD --to YYYY-MM-DD] [--format html|json] [--out FILE]
                     [--endpoint-url URL | --export s3://bucket/prefix]
    boomerang report --latest --store S [--bucket B] [--format html|json] [--out FILE]

Reads the table by a Scan (the local emulator with `--endpoint-url`, or a small store on AWS), or,
with `--export`, a DynamoDB export to S3 (no table reads: the way to run it at scale). The period
is [--from, --to): --to defaults to tomorrow (so today counts; or the day after the newest order or
message, if later: the local emulator's clock runs ahead), --from to the first day of the month a
year before --to. Definitions: README "Reports and metrics" and shared/domain/metrics.py.

With `--latest`, nothing is computed here: the report λ's latest monthly report of the store is
downloaded from the analytics bucket (--bucket, or $BOOMERANG_ANALYTICS_BUCKET; the stack's
AnalyticsBucketName output), metrics/<store>/latest.html or .json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from infra.offers_cli import TABLE_ENV, default_table


class UsageError(ValueError):
    pass


def _day(flag: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} must be a date YYYY-MM-DD, got {value!r}") from None


def period(
    start: str | None, end: str | None, today: date, latest: float | None = None
) -> tuple[float, float]:
    """[from, to) as UTC timestamps, with the defaults above (`latest`: the newest record's time)."""
    to = _day("--to", end)
    if to is None:
        to = today + timedelta(days=1)
        if latest is not None:
            to = max(to, datetime.fromtimestamp(latest, tz=UTC).date() + timedelta(days=1))
    frm = _day("--from", start)
    if frm is None:
        frm = date(to.year - 1, to.month, 1)
    if frm >= to:
        raise UsageError(f"--from ({frm}) must be before --to ({to})")

    def ts(d: date) -> float:
        return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()

    return ts(frm), ts(to)


def _region_configured() -> bool:
    import boto3

    return boto3.session.Session().region_name is not None


def _positive(flag: str, value: float) -> float:
    if not value > 0:
        raise UsageError(f"{flag} must be a positive number of days, got {value:g}")
    return value


ANALYTICS_BUCKET_ENV = "BOOMERANG_ANALYTICS_BUCKET"


def fetch_latest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Download the latest report the report λ computed in AWS (README "Reports at scale")."""
    import boto3
    import botocore.exceptions

    from shared.services.analytics.report_job import LATEST, report_key

    bucket = str(args.bucket or os.environ.get(ANALYTICS_BUCKET_ENV) or "")
    problem = None
    if not args.store:
        problem = "--latest needs --store"
    elif not bucket:
        problem = (
            f"--latest needs --bucket (the stack's AnalyticsBucketName output) or ${ANALYTICS_BUCKET_ENV}"
        )
    elif args.export or args.start or args.end:
        problem = "--latest downloads a report computed in AWS: --export, --from and --to do not apply"
    if problem:
        print(f"boomerang report: {problem}", file=err)
        return 2
    key = report_key(args.store, LATEST, args.format)
    region = "us-east-1" if args.endpoint_url and not _region_configured() else None
    try:
        s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=region)
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            print(
                f"boomerang report: no report for store {args.store} yet (s3://{bucket}/{key}); the "
                "report λ writes one after each monthly export",
                file=err,
            )
        elif code == "NoSuchBucket":
            print(f"boomerang report: no such bucket {bucket} (--bucket)", file=err)
        else:
            print(
                f"boomerang report: AWS said {code}: {exc.response.get('Error', {}).get('Message')}", file=err
            )
        return 1
    except (botocore.exceptions.NoRegionError, botocore.exceptions.NoCredentialsError) as exc:
        print(f"boomerang report: {exc}", file=err)
        return 1
    if args.out:
        try:
            Path(args.out).write_bytes(body)
        except OSError as exc:
            print(f"boomerang report: --out {args.out}: {exc.strerror}", file=err)
            return 1
        print(f"boomerang report: s3://{bucket}/{key} written to {args.out}", file=err)
    else:
        out.write(body.decode("utf-8"))
    return 0


def run(args: argparse.Namespace, out: TextIO, err: TextIO, today: date | None = None) -> int:
    if getattr(args, "latest", False):
        return fetch_latest(args, out, err)
    import boto3
    import botocore.exceptions

    from shared.adapters.report_data import (
        ReportDataError,
        collect,
        parse_s3_url,
        read_export,
        scan_table,
        stores_in,
    )
    from shared.services.analytics.report import build
    from shared.services.analytics.report_html import render_html

    try:
        today = today or datetime.now(UTC).date()
        period(args.start, args.end, today)  # bad dates fail before anything is read
        window = _positive("--churn-window-days", args.churn_window_days)
        attribution = _positive("--attribution-days", args.attribution_days)
        started = time.monotonic()
        # the local emulator answers in us-east-1 whatever the profile says
        region = "us-east-1" if args.endpoint_url and not _region_configured() else None
        if args.export:
            bucket, prefix = parse_s3_url(args.export)
            s3 = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=region)
            items: list[dict[str, Any]] = list(read_export(s3, bucket, prefix))
            source = f"export s3://{bucket}/{prefix}"
        else:
            ddb = boto3.client("dynamodb", endpoint_url=args.endpoint_url, region_name=region)
            items = list(scan_table(ddb, args.table, args.store))
            source = f"table {args.table}"
        store = args.store
        if store is None:
            found = sorted(stores_in(items))
            if len(found) != 1:
                listed = ", ".join(found) or "none"
                raise UsageError(f"--store is needed: the data holds {len(found)} stores ({listed})")
            store = found[0]
        data = collect(items, store)
        times = [o.at for o in data.orders] + [m.at for m in data.sends]
        start, end = period(args.start, args.end, today, max(times) if times else None)
        if not data.customers and not data.orders:
            raise UsageError(f"--store {store}: no profiles or orders for this store in {source}")
        report = build(
            data, start, end, churn_window_days=window, attribution_days=attribution, source=source
        )
        report["computed_in_seconds"] = round(time.monotonic() - started, 3)
    except UsageError as exc:
        print(f"boomerang report: {exc}", file=err)
        return 2
    except ReportDataError as exc:
        print(f"boomerang report: {exc}", file=err)
        return 1
    except botocore.exceptions.NoRegionError:
        print("boomerang report: no AWS region; set AWS_DEFAULT_REGION or configure a profile", file=err)
        return 1
    except botocore.exceptions.NoCredentialsError:
        print("boomerang report: no AWS credentials (aws configure, or AWS_PROFILE)", file=err)
        return 1
    except botocore.exceptions.EndpointConnectionError as exc:
        print(f"boomerang report: cannot reach {exc.kwargs.get('endpoint_url')}", file=err)
        return 1
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException" and not args.export:
            print(f"boomerang report: table {args.table} not found (--table; or --endpoint-url)", file=err)
            return 1
        if error.get("Code") == "NoSuchBucket":
            print(f"boomerang report: no such bucket in --export {args.export}", file=err)
            return 1
        print(f"boomerang report: AWS said {error.get('Code')}: {error.get('Message')}", file=err)
        return 1
    text = render_html(report) if args.format == "html" else json.dumps(report, indent=2) + "\n"
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"boomerang report: --out {args.out}: {exc.strerror}", file=err)
            return 1
        print(
            f"boomerang report: {args.format} for store {store} written to {args.out} "
            f"({report['computed_in_seconds']:.2f} s, {data.items_read} items read)",
            file=err,
        )
    else:
        out.write(text)
    return 0


def _run(args: argparse.Namespace) -> int:
    return run(args, sys.stdout, sys.stderr)


def add_parser(sub: Any) -> None:
    """Register `report` on the `boomerang` command's subparsers."""
    report = sub.add_parser(
        "report",
        help="retention report: churn, cohorts, order values, journey results (HTML or JSON)",
        description=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("--store", default=None, help="store id (default: the only store in the data)")
    report.add_argument("--from", dest="start", default=None, metavar="YYYY-MM-DD", help="first day")
    report.add_argument("--to", dest="end", default=None, metavar="YYYY-MM-DD", help="day after the last")
    report.add_argument("--format", choices=("html", "json"), default="html")
    report.add_argument("--out", default=None, metavar="FILE", help="write here (default: standard output)")
    report.add_argument(
        "--table", default=default_table(), help=f"DynamoDB table (default: ${TABLE_ENV} or the emulator's)"
    )
    report.add_argument("--endpoint-url", default=None, help="e.g. the local emulator's moto server URL")
    report.add_argument(
        "--export",
        default=None,
        metavar="s3://bucket/prefix",
        help="read a DynamoDB export instead of the table",
    )
    report.add_argument(
        "--latest",
        action="store_true",
        help="download the store's latest report computed in AWS (the monthly report λ) instead",
    )
    report.add_argument(
        "--bucket",
        default=None,
        help=f"with --latest: the analytics bucket (default: ${ANALYTICS_BUCKET_ENV})",
    )
    report.add_argument("--churn-window-days", type=float, default=90.0, help="active = ordered within (90)")
    report.add_argument(
        "--attribution-days", type=float, default=5.0, help="conversion window after a message (5)"
    )
    report.set_defaults(func=_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boomerang")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
