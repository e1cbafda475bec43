"""`boomerang demo`: replay a scenario from events/demo/ on the emulator and tell the story.

The timeline is read from the handlers' own structured logs (the same lines CloudWatch gets on
AWS), so what it shows is what the system did, not what the demo expects it to do.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import re
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra import description as d
from infra.local.emulator import REPO_ROOT, Emulator
from infra.local.server import LocalServer
from shared.platform import clock

DEFAULT_SCENARIO = REPO_ROOT / "events" / "demo" / "cart-abandonment.json"
LOG_FILE = REPO_ROOT / ".boomerang" / "demo-handlers.log"


def parse_offset(text: str) -> float:
    """'20m', '3h20m', '2d' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"bad offset {text!r}: use e.g. 20m, 3h20m, 2d")
    return sum(float(n) * units[u] for n, u in parts)


@dataclass
class Line:
    at: float
    who: str
    what: str


@dataclass
class Capture(logging.Handler):
    """Collects the handlers' structured log records as they happen."""

    records: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self)

    def emit(self, record: logging.LogRecord) -> None:
        with self.guard:
            self.records.append((clock.now_ts(), {"message": record.getMessage(), **record.__dict__}))

    def __hash__(self) -> int:
        return id(self)


def _post(url: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return _send(url, json.dumps(body).encode(), {"Content-Type": "application/json", "Authorization": auth})


def _send(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _stamp(ts: float, origin: float) -> str:
    delta = ts - origin
    days, rest = divmod(max(0, int(delta)), 86400)
    hours, rest = divmod(rest, 3600)
    return f"day {days} {hours:02d}:{rest // 60:02d}"


def run_demo(speed: float | None = None, scenario: str | None = None, out: Any = None) -> int:
    out = out or sys.stdout
    path = Path(scenario) if scenario else DEFAULT_SCENARIO
    plan = json.loads(path.read_text())
    speed = float(speed or plan.get("speed") or 1800.0)
    wall0 = time.monotonic()
    # A fixed time of day (today, UTC) so quiet hours fall the same way in every run.
    start = None
    if plan.get("start"):
        hh, mm = (int(x) for x in plan["start"].split(":"))
        start = datetime.now(UTC).replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    emulator = Emulator(speed=speed, start=start).start()
    server = LocalServer(emulator, port=0).start()
    # the demo store's product lists (best sellers, what goes with what) for the journeys that show them
    for f in sorted((path.parent / "catalog").glob("*.json")):
        emulator.client("s3").put_object(
            Bucket=emulator.env_values["TEMPLATES_BUCKET"], Key=f"catalog/demo/{f.name}", Body=f.read_bytes()
        )
    for fn in d.FUNCTIONS:  # import now, so their loggers exist before we redirect them
        emulator.handler(fn.id)
    capture = Capture()
    LOG_FILE.parent.mkdir(exist_ok=True)
    log_stream = LOG_FILE.open("w")
    app_logger = logging.getLogger("boomerang")
    for h in app_logger.handlers:
        if isinstance(h, logging.StreamHandler):
            h.setStream(log_stream)
    app_logger.addHandler(capture)

    print(f"Boomerang demo: {plan.get('description', path.name)}", file=out)
    print(
        f"local emulator on {server.url}, time x{speed:g} (1 h of Boomerang time = {3600 / speed:.2f} s)\n",
        file=out,
    )
    who_by_message: dict[str, str] = {}
    who_by_cart: dict[str, str] = {}
    lines: list[Line] = []
    origin = clock.now_ts()
    t0 = time.monotonic()
    accepted = 0
    secrets: dict[str, str] = {}  # platform -> the webhook secret set by a "connect" step
    try:
        for step in plan["steps"]:
            delay = t0 + parse_offset(step["at"]) / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if "connect" in step:  # the store owner pastes the platform's secret: `boomerang stores set`
                secrets[step["connect"]["platform"]] = step["connect"]["secret"]
                lines += [
                    Line(clock.now_ts(), step["customer"], t) for t in _connect(step["connect"], server.url)
                ]
                continue
            if "webhook" in step:  # the store's platform sends a signed webhook
                calls, status, body = _webhook(step["webhook"], server.url, secrets, path.parent)
                _register(calls, step["customer"], who_by_message, who_by_cart)
                hook = step["webhook"]
                lines.append(
                    Line(
                        clock.now_ts(),
                        step["customer"],
                        f"{hook['platform']} webhook {hook['topic']} (signed) → HTTP {status} {body}"
                        + (f" ({step['note']})" if step.get("note") else ""),
                    )
                )
                accepted += body.get("accepted", 0)
                continue
            calls = plan["steps"][step["repeat"]]["calls"] if "repeat" in step else step["calls"]
            _register(calls, step["customer"], who_by_message, who_by_cart)
            status, body = _post(f"{server.url}/v1/batch", emulator.api_key, {"batch": calls})
            names = ", ".join(c.get("event") or c["type"] for c in calls)
            note = f" ({step['note']})" if step.get("note") else ""
            lines.append(Line(clock.now_ts(), step["customer"], f"sent {names} → HTTP {status} {body}{note}"))
            accepted += body.get("accepted", 0)
        if plan.get("until"):  # long journeys: show the first days, then report what is still running
            rest = t0 + parse_offset(plan["until"]) / speed - time.monotonic()
            time.sleep(max(0.0, rest))
        else:
            _wait_for_journeys(capture, who_by_cart, timeout=30 + 30 * 24 * 3600 / speed)
        time.sleep(0.5)
    finally:
        app_logger.removeHandler(capture)
        outbox = emulator.outbox()
        dlq = emulator.dlq_depths()
        invocations = dict(emulator.invocations)
        try:  # the demo store's short report (shared/services/analytics/report_text.py), read before the emulator stops
            from shared.services.analytics.report_text import short_report

            closing = short_report(
                emulator.env_values["TABLE_NAME"], "demo", clock.now_ts(), emulator.client("dynamodb")
            )
        except Exception as exc:  # a report problem must not hide the demo's own result
            closing = f"Report failed: {type(exc).__name__}: {exc}"
        server.stop()
        emulator.stop()
        log_stream.close()

    lines += _timeline(capture, who_by_message, who_by_cart)
    for line in sorted(lines, key=lambda x: x.at):
        print(f"  {_stamp(line.at, origin)}  {line.who:<6} {line.what}", file=out)
    code = _summary(
        plan, outbox, capture, who_by_cart, dlq, invocations, accepted, time.monotonic() - wall0, origin, out
    )
    print("\n" + closing, file=out)
    return code


def _register(
    calls: list[dict[str, Any]], who: str, who_by_message: dict[str, str], who_by_cart: dict[str, str]
) -> None:
    for call in calls:
        who_by_message[call["messageId"]] = who
        # what a journey instance is named by: a cart, an order, or the customer
        props = call.get("properties") or {}
        for instance in (
            props.get("cart_id"),
            props.get("order_id"),
            call.get("userId") and f"u:{call['userId']}",
            call.get("anonymousId") and f"a:{call['anonymousId']}",
        ):
            if instance:
                who_by_cart[str(instance)] = who


def _connect(connect: dict[str, Any], url: str) -> list[str]:
    """`boomerang stores set <store> --<platform>-secret -` itself, its output as the timeline shows it."""
    from infra.stores_cli import main as stores
    from shared.services.webhooks import HEADERS

    store, platform = connect.get("store", "demo"), connect["platform"]
    argv = ["stores", "set", store, f"--{platform}-secret", "-", "--local", url]
    out, err = io.StringIO(), io.StringIO()
    if stores(argv, out, err, io.StringIO(connect["secret"] + "\n")) != 0:
        raise RuntimeError(f"boomerang stores set failed: {err.getvalue().strip()}")
    label = HEADERS[platform].label
    said = [f"boomerang stores set {store} --{platform}-secret - (the secret pasted from {label}'s admin)"]
    return said + [f"  {line.strip()}" for line in out.getvalue().splitlines() if line.strip()]


def _now_in(payload: Any, now: str) -> Any:
    """'$now' anywhere in a sample payload -> the demo clock's time, as the platform stamps it."""
    if isinstance(payload, dict):
        return {k: _now_in(v, now) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_now_in(v, now) for v in payload]
    return now if payload == "$now" else payload


def _webhook(
    hook: dict[str, Any], url: str, secrets: dict[str, str], scenario_dir: Path
) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    """A sample payload (events/samples/<platform>/) with the scenario's changes, signed as the platform
    signs it, through the front door; returns the calls it maps to (for the timeline's names)."""
    from shared.domain.webhooks import number, signature
    from shared.services.webhooks import HEADERS, _mapper

    platform, topic, delivery_id = hook["platform"], hook["topic"], hook["id"]
    if platform not in secrets:
        raise ValueError(f"webhook step {delivery_id!r}: no 'connect' step set a {platform} secret before it")
    sample = scenario_dir.parent / "samples" / f"{hook['sample']}.json"
    payload = json.loads(sample.read_text())
    for dotted, value in (hook.get("set") or {}).items():  # "customer.email": "...": nested fields
        *parents, leaf = dotted.split(".")
        node = payload
        for name in parents:
            node = node[name]
        node[leaf] = copy.deepcopy(value)
    payload = _now_in(payload, clock.iso(clock.now_ts()))
    body = json.dumps(payload).encode()
    names = HEADERS[platform]
    headers = {
        "Content-Type": "application/json",
        names.topic: topic,
        names.signature: signature(secrets[platform], body),  # the very HMAC the receiver verifies
        names.delivery_id: delivery_id,
        **(hook.get("headers") or {}),
    }
    store = hook.get("store", "demo")
    status, answer = _send(f"{url}/v1/webhooks/{platform}/{store}", body, headers)
    return number(_mapper(platform)(topic, payload, delivery_id).calls, platform, delivery_id), status, answer


def _step_records(capture: Capture) -> list[tuple[float, dict[str, Any]]]:
    with capture.guard:
        return [(t, r) for t, r in capture.records if r["message"] == "journey step"]


def _wait_for_journeys(capture: Capture, carts: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with capture.guard:
            started = {r.get("instance") for _, r in capture.records if r.get("outcome") == "started"}
        exited = {r.get("instance") for _, r in _step_records(capture) if r.get("action") == "exit"}
        if started and started <= exited:
            return
        time.sleep(0.2)


def _timeline(capture: Capture, who_by_message: dict[str, str], who_by_cart: dict[str, str]) -> list[Line]:
    lines = []
    with capture.guard:
        records = list(capture.records)
    for at, r in records:
        msg = r["message"]
        if msg == "profile event":
            who = who_by_message.get(r.get("message_id", ""), "?")
            if r.get("outcome") == "duplicate":
                lines.append(Line(at, who, f"profile: {r.get('event')} is a replay, nothing changed"))
            else:
                lines.append(
                    Line(at, who, f"profile updated by {r.get('event')}: {', '.join(r.get('changes') or [])}")
                )
        elif msg == "journey trigger":
            who = who_by_message.get(r.get("message_id", ""), "?")
            verb = {"started": "journey started", "joined": "journey already running, joined"}.get(
                str(r.get("outcome")), ""
            )
            if verb and r.get("instance"):
                lines.append(Line(at, who, f"{verb}: {r.get('journey')} for {r.get('instance')}"))
        elif msg == "journey step":
            who = who_by_cart.get(r.get("instance", ""), "?")
            journey = r.get("journey")
            for e in r.get("events") or []:
                if e["type"] == "sent":
                    lines.append(
                        Line(
                            at,
                            who,
                            f"{str(e.get('channel', 'email')).upper()} SENT: {journey} / {e.get('step_id')}",
                        )
                    )
                elif e["type"] == "deferred":
                    lines.append(Line(at, who, f"{e.get('step_id')} deferred: {e.get('reason')}"))
                elif e["type"] in ("skipped", "failed", "already-handled"):
                    lines.append(Line(at, who, f"{e.get('step_id')} {e['type']}: {e.get('reason')}"))
            if r.get("action") == "wait":
                hours = (r.get("wait_seconds") or 0) / 3600
                if hours >= 0.01:  # (a two-second settle poll is noise in a story told in hours)
                    lines.append(Line(at, who, f"{journey}: waiting {hours:.1f} h ({r.get('reason')})"))
            else:
                lines.append(Line(at, who, f"{journey} exited: {r.get('reason')}"))
    return lines


def _summary(
    plan: dict[str, Any],
    outbox: list[dict[str, Any]],
    capture: Capture,
    who_by_cart: dict[str, str],
    dlq: dict[str, int],
    invocations: dict[str, int],
    accepted: int,
    wall: float,
    origin: float,
    out: Any,
) -> int:
    sent_by: dict[str, Counter[str]] = defaultdict(Counter)  # channel -> customer -> messages
    linked: dict[str, set[str]] = defaultdict(set)  # customer -> expected links seen in their messages
    print("\nOutbox:", file=out)
    for m in outbox:
        who = who_by_cart.get(m.get("instance") or "", "?")
        sent_by[m["channel"]][who] += 1
        sent = clock.parse_iso(m["sent_at"]) if m.get("sent_at") else origin
        text = m["subject"] if m["channel"] != "sms" else m["text"]
        print(
            f'  {_stamp(sent, origin)}  {who:<6} {m["channel"]:<5} {m.get("journey")} / {m["step"]}: "{text}"',
            file=out,
        )
        for link in plan.get("expect", {}).get("links", {}).get(who, []):
            found = re.search(re.escape(link) + r"\S*", m.get("text") or "")
            if found:  # e.g. Shopify's own recovery URL for the checkout, with Boomerang's cart marker
                linked[who].add(link)
                print(f"{'':<20}links {found[0]}", file=out)
    exits: dict[str, str] = {}
    for _, r in _step_records(capture):
        if r.get("action") == "exit" and r.get("journey") in ("cart-abandonment", "checkout-abandonment"):
            exits[who_by_cart.get(str(r.get("instance")), "?")] = r.get("reason", "")
    with capture.guard:
        outcomes = Counter(r.get("outcome") for _, r in capture.records if r["message"] == "profile event")
    problems = []
    expect = plan.get("expect", {})
    for channel, label in (("email", "emails"), ("sms", "sms"), ("push", "push")):
        for who, n in expect.get(label, {}).items():
            if sent_by[channel][who] != n:
                problems.append(f"{who}: expected {n} {channel} message(s), got {sent_by[channel][who]}")
    for who, links in expect.get("links", {}).items():
        for link in links:
            if link not in linked[who]:
                problems.append(f"{who}: expected a message linking {link}, none did")
    for who, reason in plan.get("expect", {}).get("exits", {}).items():
        if reason not in exits.get(who, ""):
            problems.append(f"{who}: expected the journey to exit because '{reason}', got '{exits.get(who)}'")
    if any(dlq.values()):
        problems.append(f"messages in dead-letter queues: {dlq}")
    print(
        "\nSummary:\n"
        f"  events accepted: {accepted}; profile updates: {outcomes.get('applied', 0)} applied, "
        f"{outcomes.get('duplicate', 0)} replays ignored\n"
        f"  journeys exited: {', '.join(f'{k} ({v})' for k, v in sorted(exits.items()))}\n"
        f"  messages sent: {len(outbox)} ("
        + "; ".join(
            f"{ch}: " + ", ".join(f"{k} {n}" for k, n in sorted(c.items()))
            for ch, c in sorted(sent_by.items())
        )
        + ")\n"
        f"  handler invocations: {', '.join(f'{k} {v}' for k, v in sorted(invocations.items()))}; DLQ depth {dlq}\n"
        f"  wall time {wall:.1f} s; handler logs in {LOG_FILE.relative_to(REPO_ROOT)}",
        file=out,
    )
    if problems:
        print("\nDEMO CHECK FAILED:\n  " + "\n  ".join(problems), file=out)
        return 1
    print("\nAll as expected.", file=out)
    return 0
