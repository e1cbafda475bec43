"""Bounded memory for a day-long `make local`: what AWS forgets, the emulator forgets too.

moto keeps everything for ever, so the emulator grew with every accepted event (about 2 MB each
on main: journey executions with their full event histories, DynamoDB items whose TTL had long
passed, the bus archive, every message in the outbox, SQS receipt handles, and Powertools'
metric set, which is never cleared while metrics are disabled). A sweeper thread applies, on
Boomerang's clock, the retention AWS itself has, and caps what AWS keeps longer than a laptop can:

- DynamoDB TTL: an item whose `expires_at` (epoch seconds, not more than 5 years back, as AWS
  reads it) has passed is deleted at the next sweep (AWS: typically within a few days);
- Step Functions: a closed execution is forgotten `EXECUTION_RETENTION_S` (90 days) after it closed,
  as on AWS, or sooner beyond the newest `EXECUTION_CAP` closed ones (its name is then free again:
  a replayed event may start its journey anew, whose claim records still stop a second send); its
  event history (the bulk) is kept only for the newest `HISTORY_CAP` closed ones
  (older ones still describe: name, status, input, output; their history reads empty);
- the bus archive: events older than its RetentionDays, and beyond `ARCHIVE_CAP`, oldest first;
- S3: each bucket's lifecycle rules (the stack's, from infra/description.py; moto stores them and
  never runs them): expiration, replaced versions' expiration, unfinished uploads;
- the outbox (SES mail, SMS, push, report notifications): the newest `OUTBOX_CAP` of each;
- SQS: receipt handles of deleted messages (moto keeps them to accept a repeated delete): the
  newest `HANDLES_CAP` per queue;
- moto's Step Functions threads (kept in a module-level list for ever): finished ones dropped;
- moto's own registry of every model instance it ever created (`instances_tracked`, emptied only
  by a reset, read only by its debug dashboard): emptied at every sweep; S3 keys, which a reset
  closes from it, leave it once nothing holds them (and ListObjectVersions' copies are closed).

Each cap can be lowered (or raised) for one `boomerang local` run with an environment variable
BOOMERANG_LOCAL_<CAP> (e.g. BOOMERANG_LOCAL_EXECUTION_CAP=500): `make bench` passes them in a few
minutes that way, and a laptop short of memory can keep less.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.platform import clock

SWEEP_REAL_S = 2.0  # how often the sweeper runs, in real seconds
EXECUTION_RETENTION_S = 90 * 86400  # Step Functions keeps closed executions 90 days
EXECUTION_CAP = 20_000  # closed executions kept at most (at low --speed 90 days never pass)
HISTORY_CAP = 200
ARCHIVE_CAP = 10_000
OUTBOX_CAP = 1_000
HANDLES_CAP = 5_000
TTL_MAX_AGE_S = 5 * 365 * 86400  # AWS ignores TTL values more than five years in the past
CAPS = ("EXECUTION_CAP", "HISTORY_CAP", "ARCHIVE_CAP", "OUTBOX_CAP", "HANDLES_CAP")
CAP_ENV_PREFIX = "BOOMERANG_LOCAL_"
CAP_MAX = 10_000_000

log = logging.getLogger("boomerang.local")


def configure_caps(environ: dict[str, str] | os._Environ[str]) -> dict[str, int]:
    """Apply the BOOMERANG_LOCAL_<CAP> overrides found in `environ` to this module's caps (read by
    the sweeper at every sweep) and return the caps now in force. Raises ValueError naming the
    variable, what it held and what is allowed; then no cap changes."""
    chosen: dict[str, int] = {}
    for cap in CAPS:
        raw = environ.get(CAP_ENV_PREFIX + cap)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            value = -1
        if not 1 <= value <= CAP_MAX:
            raise ValueError(
                f"{CAP_ENV_PREFIX}{cap}={raw[:40]!r}: a whole number from 1 to {CAP_MAX:,} is allowed"
            )
        chosen[cap] = value
    globals().update(chosen)
    return {cap: int(globals()[cap]) for cap in CAPS}


class _RecentSet:
    """The set moto keeps deleted receipt handles in, remembering only the newest `cap`."""

    def __init__(self, items: Iterable[str], cap: int) -> None:
        self._items: OrderedDict[str, None] = OrderedDict((i, None) for i in items)
        self.cap = cap
        self._lock = threading.Lock()
        self._trim()

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(list(self._items))

    def add(self, item: str) -> None:
        self.update([item])

    def update(self, items: Iterable[str]) -> None:
        with self._lock:
            for i in items:
                self._items[i] = None
            self._trim()

    def _trim(self) -> None:
        while len(self._items) > self.cap:
            self._items.popitem(last=False)


class Sweeper:
    """Runs `sweep` every SWEEP_REAL_S real seconds on a daemon thread until stopped."""

    def __init__(self, account: str, region: str, table: str, ttl_attribute: str, push: Any = None) -> None:
        self.account, self.region, self.table, self.ttl_attribute = account, region, table, ttl_attribute
        self.push = push
        self.forgotten: dict[str, int] = {}  # what was evicted, by kind (for `make bench` and tests)
        self._uploads_seen: dict[str, float] = {}  # multipart upload id -> when first seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Sweeper:
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(SWEEP_REAL_S):
            try:
                self.sweep()
            except Exception:  # a sweep that fails is retried at the next; the emulator keeps serving
                log.exception("retention sweep failed")

    def sweep(self) -> dict[str, int]:
        now = clock.now_ts()
        counts = {
            "ttl_items": self._expire_items(now),
            "executions": self._forget_executions(now),
            "histories": self._drop_histories(),
            "archived_events": self._trim_archives(now),
            "outbox": self._trim_outbox(),
        }
        counts["objects"] = self._apply_lifecycles(now)
        self._bound_receipt_handles()
        counts["untracked"] = _untrack_dead_models()
        counts["s3_keys_closed"] = _close_dead_s3_keys(self._s3())
        counts["threads"] = _forget_finished_threads()
        _clear_disabled_metrics()
        for kind, n in counts.items():
            self.forgotten[kind] = self.forgotten.get(kind, 0) + n
        return counts

    # -- DynamoDB TTL ----------------------------------------------------------------------------
    def _expire_items(self, now: float) -> int:
        from moto.dynamodb.models import dynamodb_backends

        from infra.local.moto_dynamodb import _LOCK

        table = dynamodb_backends[self.account][self.region].tables.get(self.table)
        if table is None:
            return 0
        with _LOCK:
            expired = [
                (item.hash_key, item.range_key)
                for item in _items(table)
                if _expired(item.attrs.get(self.ttl_attribute), now)
            ]
            for hash_key, range_key in expired:
                table.delete_item(hash_key, range_key)
        return len(expired)

    # -- Step Functions ----------------------------------------------------------------------------
    def _executions(self) -> list[tuple[Any, Any]]:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[self.account][self.region]
        return [(sm, e) for sm in backend.state_machines for e in list(sm.executions)]

    def _forget_executions(self, now: float) -> int:
        # stop_date is moto's wall clock; its age in Boomerang time is the real age times the speed
        wall_now = datetime.now(tz=UTC)
        closed = [
            (sm, e)
            for sm, e in self._executions()
            if getattr(e, "stop_date", None) is not None and e.exec_status not in (None, "RUNNING")
        ]
        closed.sort(key=lambda pair: pair[1].stop_date)
        over = max(0, len(closed) - EXECUTION_CAP)
        forgotten = 0
        for n, (sm, execution) in enumerate(closed):
            age = (wall_now - execution.stop_date).total_seconds() * clock.speed()
            if n < over or age >= EXECUTION_RETENTION_S:
                try:
                    sm.executions.remove(execution)  # in place: a concurrent start appends safely
                    forgotten += 1
                except ValueError:
                    pass
        return forgotten

    def _drop_histories(self) -> int:
        closed = [
            e
            for _, e in self._executions()
            if getattr(e, "stop_date", None) is not None and e.exec_worker is not None and e.exec_worker.env
        ]
        closed.sort(key=lambda e: e.stop_date)
        dropped = closed[: max(0, len(closed) - HISTORY_CAP)]
        for execution in dropped:
            execution.exec_worker.env = None  # moto then reads the history as empty
        return len(dropped)

    # -- EventBridge archive ----------------------------------------------------------------------
    def _trim_archives(self, now: float) -> int:
        from moto.events.models import events_backends

        trimmed = 0
        for archive in list(events_backends[self.account][self.region].archives.values()):
            events = archive.events
            days = getattr(archive, "retention", 0) or 0
            old = 0
            if days:
                while old < len(events) and _event_age(events[old], now) > int(days) * 86400:
                    old += 1
            cut = max(old, len(events) - ARCHIVE_CAP)
            if cut > 0:
                del events[:cut]  # in place and from the front: appends land after it
                trimmed += cut
        return trimmed

    # -- outbox ------------------------------------------------------------------------------------
    def _trim_outbox(self) -> int:
        from moto.ses.models import ses_backends
        from moto.sns.models import sns_backends

        trimmed = 0
        sent = ses_backends[self.account][self.region].sent_messages
        cut = len(sent) - OUTBOX_CAP
        if cut > 0:
            del sent[:cut]
            trimmed += cut
        sns = sns_backends[self.account][self.region]
        while len(sns.sms_messages) > OUTBOX_CAP:
            sns.sms_messages.popitem(last=False)  # type: ignore[call-arg]
            trimmed += 1
        objects = getattr(sns, "sms_message_objects", None)  # the same SMS again, as models
        while objects is not None and len(objects) > OUTBOX_CAP:
            del objects[next(iter(objects))]
        for topic in list(sns.topics.values()):
            cut = len(topic.sent_notifications) - OUTBOX_CAP
            if cut > 0:
                del topic.sent_notifications[:cut]
                trimmed += cut
        if self.push is not None:
            trimmed += self.push.keep_newest(OUTBOX_CAP)
        return trimmed

    # -- S3 lifecycle ------------------------------------------------------------------------------
    def _s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"]

    def _apply_lifecycles(self, now: float) -> int:
        """Run each bucket's enabled lifecycle rules (moto stores them but never runs them), as S3
        does: a current object goes at the first midnight UTC after its creation plus `Expiration`
        days (in a versioned bucket it becomes a replaced version under a delete marker); a replaced
        version that long after its replacement (`NoncurrentVersionExpiration`); an unfinished
        multipart upload that long after the sweeper first saw it (moto records no start time)."""
        from moto.s3.models import FakeKey

        backend, removed = self._s3(), 0
        wall_now = datetime.now(tz=UTC).replace(tzinfo=None)  # moto's timestamps: naive UTC

        def at(moment: datetime) -> float:  # a moto timestamp on Boomerang's clock
            return now - (wall_now - moment).total_seconds() * clock.speed()

        uploads = set()
        for bucket in list(backend.buckets.values()):
            for rule in [r for r in list(bucket.rules) if r.status == "Enabled"]:
                prefix = _rule_prefix(rule)
                for name, versions in list(bucket.keys.iterlists()):
                    if not name.startswith(prefix) or not versions:
                        continue
                    current = versions[-1]
                    if (
                        rule.expiration_days
                        and isinstance(current, FakeKey)
                        and _lifecycle_due(at(current.last_modified), int(rule.expiration_days), now)
                    ):
                        # (unversioned: only if not replaced since we looked; versioned: a delete
                        # marker goes on top, whatever came meanwhile stays a version)
                        if bucket.is_versioned or bucket.keys.get(name) is current:
                            backend.delete_object(bucket.name, name)
                            removed += 1
                    if rule.nve_noncurrent_days and bucket.is_versioned:
                        for old, newer in zip(versions, versions[1:], strict=False):
                            if _lifecycle_due(at(newer.last_modified), int(rule.nve_noncurrent_days), now):
                                backend.delete_object(
                                    bucket.name, name, version_id=old.version_id, bypass=True
                                )
                                removed += 1
                if rule.aimu_days:
                    for upload_id, upload in list(bucket.multiparts.items()):
                        began = self._uploads_seen.setdefault(upload_id, now)
                        if upload.key_name.startswith(prefix) and _lifecycle_due(
                            began, int(rule.aimu_days), now
                        ):
                            bucket.multiparts.pop(upload_id, None)
                            upload.dispose()
                            removed += 1
                        else:
                            uploads.add(upload_id)
        for upload_id in set(self._uploads_seen) - uploads:
            del self._uploads_seen[upload_id]  # completed or aborted
        return removed

    # -- SQS ---------------------------------------------------------------------------------------
    def _bound_receipt_handles(self) -> None:
        from moto.sqs.models import sqs_backends

        for queue in list(sqs_backends[self.account][self.region].queues.values()):
            if not isinstance(queue.deleted_messages, _RecentSet):
                queue.deleted_messages = _RecentSet(list(queue.deleted_messages), HANDLES_CAP)  # type: ignore[assignment]


def _items(table: Any) -> list[Any]:
    if table.has_range_key:
        return [item for by_range in table.items.values() for item in by_range.values()]
    return list(table.items.values())


def _expired(value: Any, now: float) -> bool:
    if value is None or value.type != "N":
        return False  # TTL only reads numbers
    try:
        at = float(value.value)
    except (TypeError, ValueError):
        return False
    return now - TTL_MAX_AGE_S <= at <= now


def _event_age(event: Any, now: float) -> float:
    """An archived event's age in Boomerang seconds (moto stamps it with its own wall clock)."""
    try:
        at = event.get("time")
        if isinstance(at, int | float):
            return (time.time() - float(at)) * clock.speed()
        return now - clock.parse_iso(str(at))
    except (AttributeError, ValueError):
        return 0.0  # unknown age: only the cap removes it


def _rule_prefix(rule: Any) -> str:
    """A lifecycle rule's key prefix ("" for the whole bucket; a tag filter is not supported and
    matches nothing, rather than everything)."""
    lc_filter = getattr(rule, "filter", None)
    if lc_filter is not None:
        if lc_filter.prefix is not None:
            return str(lc_filter.prefix)
        and_filter = getattr(lc_filter, "and_filter", None)
        if lc_filter.tag_key or and_filter is not None:
            return "\0"  # no key starts with NUL
        return ""
    return str(rule.prefix or "")


def _lifecycle_due(since: float, days: int, now: float) -> bool:
    """S3 counts lifecycle days from `since` and rounds up to the next midnight UTC."""
    return now >= (int(since + days * 86400) // 86400 + 1) * 86400


def _close_dead_s3_keys(backend: Any) -> int:
    """moto tracks every S3 key it ever made (FakeKey.instances_tracked) to close their files at a
    reset. It closes a deleted or replaced object's file itself but keeps the key; and each
    ListObjectVersions call copies every version in the bucket (a body each) and closes none. A key
    that no bucket or unfinished upload holds and nothing else references (not even a response
    still being written) is closed and dropped: what a reset would do to it, earlier."""
    from moto.s3.models import FakeKey

    live: set[int] = set()
    for bucket in list(backend.buckets.values()):
        for _, versions in list(bucket.keys.iterlists()):
            for version in versions or ():  # (None: a key deleted while we listed)
                while version is not None:  # a delete marker holds the key it hides
                    live.add(id(version))
                    version = getattr(version, "key", None)
        for upload in list(bucket.multiparts.values()):
            live.update(id(part) for part in list(upload.parts.values()))
    tracked = FakeKey.instances_tracked  # type: ignore[attr-defined]
    n = len(tracked)
    snapshot, keep, closed = tracked[:n], [], 0
    for key in snapshot:
        # referenced by `tracked`, `snapshot`, `key` and getrefcount's argument: by nothing else
        if id(key) in live or sys.getrefcount(key) > _UNREFERENCED:
            keep.append(key)
        else:
            key.dispose()
            closed += 1
    tracked[:n] = keep  # one slice assignment: keys made meanwhile stay after it
    return closed


_UNREFERENCED = 4


def _untrack_dead_models() -> int:
    """moto appends every model it creates (each SQS message, sent email, SMS, execution...) to a
    class-level `instances_tracked` list that only a full reset empties: the biggest leak of all.
    Only moto's debug dashboard (/moto-api/data.json) reads it, and reset replaces it, so the
    emulator empties it (but for S3's keys and uploads, whose files a reset closes from that list:
    _close_dead_s3_keys)."""
    from moto.core.model_instances import model_data

    dropped = 0
    for service, models in list(model_data.items()):
        for name, model in list(models.items()):
            if service == "s3" and name in ("FakeKey", "FakeMultipart"):
                continue
            tracked = getattr(model, "instances_tracked", None)
            if tracked:
                n = len(tracked)
                del tracked[:n]  # atomic; instances created meanwhile stay after it
                dropped += n
    return dropped


def _forget_finished_threads() -> int:
    """moto's Step Functions interpreter appends every thread it starts (two per execution, each
    holding the execution's whole environment) to a module-level list and never removes them."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    n = len(TMP_THREADS)
    alive = [t for t in TMP_THREADS[:n] if getattr(t, "is_alive", lambda: True)()]
    TMP_THREADS[:n] = alive  # one slice assignment: threads started meanwhile stay after it
    return n - len(alive)


def _clear_disabled_metrics() -> None:
    """Powertools keeps metrics until a flush, and a flush with metrics disabled keeps them."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():
        Metrics._metrics.clear()
        Metrics._metadata.clear()
