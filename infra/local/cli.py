"""`boomerang local` serves the emulator; `boomerang demo` replays the demo scenario on it."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

# glibc gives each thread that meets contention its own malloc arena (up to 8 per core) and
# rarely hands their freed pages back: the emulator's dozens of threads (pollers, moto's server,
# Step Functions executions) grew its resident memory with every event while Python's own heap
# stayed flat. Two arenas keep it flat at no measurable cost in speed (`python -m tests.bench
# emulator`). glibc reads the variable only at process start, so `boomerang local` re-executes
# itself with it set, unless the caller chose a value.
MALLOC_ARENA_MAX = "2"


def _bounded_arenas() -> None:
    """Re-execute this very command line with MALLOC_ARENA_MAX set (Linux/glibc only)."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, "MALLOC_ARENA_MAX": MALLOC_ARENA_MAX})


def _serve(args: argparse.Namespace) -> int:
    from infra.local import retention
    from infra.local.emulator import Emulator
    from infra.local.memory_probe import MemoryProbe
    from infra.local.server import LocalServer

    try:
        retention.configure_caps(os.environ)  # BOOMERANG_LOCAL_EXECUTION_CAP=... for this run
        probe = MemoryProbe.from_env()  # BOOMERANG_TRACEMALLOC=1: what grows, on SIGUSR1
    except ValueError as exc:
        print(f"boomerang local: {exc}", file=sys.stderr)
        return 2
    if probe is not None:
        probe.start().install_signal()

    start = None
    if args.start:
        from shared.platform.clock import parse_iso

        start = parse_iso(args.start)
    from infra.local.emulator import DEMO_STORE, load_store_settings

    store = DEMO_STORE
    if args.store:
        try:
            store = load_store_settings(args.store)
        except ValueError as exc:
            print(f"boomerang local --store {exc}", file=sys.stderr)
            return 2
    emulator = Emulator(speed=args.speed, api_key=args.api_key, start=start, store=store).start()
    try:
        server = LocalServer(emulator, port=args.port).start()
    except OSError as exc:
        emulator.stop()
        print(f"boomerang local: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops it even when started in the background, where a shell leaves SIGINT ignored
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(
        f"boomerang local ready on {server.url} (store '{store.store_id}', api key '{args.api_key}', speed x{args.speed:g})\n"
        f"  events:  POST {server.url}/v1/batch   outbox: {server.url}/_local/outbox.html\n"
        f"  AWS (moto): {emulator.endpoint}  (--endpoint-url for `boomerang report|journeys|offers`)\n"
        f"  monthly reports (1st, 03:00 UTC, emulator time): `boomerang report --latest --store {store.store_id} "
        f"--bucket {emulator.analytics_bucket} --endpoint-url {emulator.endpoint}`",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("boomerang local: stopping", flush=True)
    if probe is not None:
        probe.stop()  # before the stop: what the run kept, not what stopping frees
    server.stop()
    emulator.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from infra.local.demo import run_demo

    return run_demo(speed=args.speed, scenario=args.scenario)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boomerang", description="Boomerang retention messaging, locally.")
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="run the local emulator (API on 127.0.0.1)")
    local.add_argument("--port", type=int, default=8787)
    local.add_argument(
        "--speed", type=float, default=3600.0, help="Boomerang's clock runs this many times faster"
    )
    local.add_argument("--api-key", default="local-dev-key", help="write key of the 'demo' store")
    local.add_argument(
        "--store",
        default=None,
        metavar="FILE",
        help='store settings over the demo store\'s (JSON or YAML, e.g. {"retention": {"at_risk_min_days": 2}})',
    )
    local.add_argument(
        "--start", default=None, help="Boomerang time to start from (ISO-8601, e.g. 2026-10-24T18:00:00Z)"
    )
    local.set_defaults(func=_serve)
    demo = sub.add_parser("demo", help="replay events/demo/ on the emulator and print the timeline")
    # a little slower than `local`: a loaded laptop's latency stays minutes of Boomerang time
    demo.add_argument("--speed", type=float, default=None, help="default: the scenario's own (x1800)")
    demo.add_argument("--scenario", default=None, help="path to a scenario JSON (default: events/demo/)")
    demo.set_defaults(func=_demo)
    from infra.offers_cli import add_parser as add_offers_parser

    add_offers_parser(sub)  # `boomerang offers upload|status`
    from infra.journeys_cli import add_parser as add_journeys_parser

    add_journeys_parser(sub)  # `boomerang journeys lint|history`
    from infra.local import templates_cli

    templates_cli.add_parser(sub)  # `boomerang templates list|pull|lint|preview|push|rollback`
    from infra.report_cli import add_parser as add_report_parser

    add_report_parser(sub)  # `boomerang report`
    from infra.segments_cli import add_parser as add_segments_parser

    add_segments_parser(sub)  # `boomerang segments lint|members`
    from infra.partners_cli import add_parser as add_partners_parser

    add_partners_parser(sub)  # `boomerang partners lint|push|secret`, `boomerang orders show`
    from infra.customers_cli import add_parser as add_customers_parser

    add_customers_parser(sub)  # `boomerang customers erase|export`, `boomerang keys rotate`

    from infra.stores_cli import add_parser as add_stores_parser

    add_stores_parser(sub)  # `boomerang stores add|list|rotate-key|set|remove`
    args = parser.parse_args(argv)
    if args.command == "local" and argv is None:
        _bounded_arenas()  # a command line to re-execute only when run as one
    if args.command == "templates":
        return templates_cli.run(args)
    if (getattr(args, "speed", 1) or 1) <= 0:
        parser.error("--speed must be greater than 0")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
