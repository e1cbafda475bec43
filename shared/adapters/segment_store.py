"""Segment membership and the daily segments run, on the table's sparse indexes (never a Scan).

Scale note: the edges step reads a store's whole buyers index in one invocation (the journey-trigger
λ's 60 s): a few hundred thousand buyers fit; beyond that, compute edges from a sample.

- `members(store, segment)`: one page of a segment's members from the `by-segment` index, with an
  opaque cursor for the next page.
- The daily run, per store (queued by shared/services/journeys/trigger.schedule_tasks on the journey queue):
  1. `edges`: page through the store's `buyers` index, recompute the RFM quintile edges, save them
     on the store's RFM item, and queue `rescore` tasks for the buyers whose scores the new edges
     change (found from the index's projected values and scores, no profile read);
  2. `rescore`: refresh those profiles (scores, group, stage, memberships, in one transaction each);
  3. `due`: refresh the profiles on yesterday's and today's `segments-due` partitions, whose segments
     or stage change with time alone (an event window closing, the at-risk day, churn, the recency
     score passing an edge), a page at a time.
  Every step is idempotent: a refresh that finds nothing to change writes nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.index_pages import IndexPages
from shared.adapters.profile_store import ProfileStore
from shared.domain.rfm import BuyerRow, compute_edges, stale_scores
from shared.platform import indexes

PAGE = 100


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode() if last_key else None


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a members() cursor") from exc
    if not isinstance(value, dict):
        raise ValueError("not a members() cursor")
    return value


class SegmentStore(IndexPages):
    """Segment members and the store's buyers, read through IndexPages.page."""

    def members(
        self, store: str, segment: str, limit: int = PAGE, cursor: str | None = None
    ) -> tuple[list[str], str | None]:
        """One page of the customer ids in a segment, and the cursor of the next page (None: done).

        The index is eventually consistent: a customer who just joined or left may show a moment late.
        """
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        items, last = self.page(
            indexes.BY_SEGMENT, indexes.segment_key(store, segment), limit, decode_cursor(cursor)
        )
        return [i["customer_id"] for i in items], encode_cursor(last)

    def buyers(self, store: str) -> list[BuyerRow]:
        """Every buyer of the store with their RFM values, from the sharded `buyers` index."""
        rows: list[BuyerRow] = []
        for shard in range(indexes.BUYER_SHARDS):
            start: dict[str, Any] | None = None
            while True:
                items, start = self.page(indexes.BUYERS, indexes.buyers_key(store, shard), 1000, start)
                rows += [
                    BuyerRow(
                        customer_id=i["customer_id"],
                        last_order_at=i[indexes.RFM_LAST_ORDER],
                        frequency=i[indexes.RFM_FREQUENCY],
                        monetary=i[indexes.RFM_MONETARY],
                        score=i.get(indexes.RFM_SCORE),
                    )
                    for i in items
                ]
                if not start:
                    break
        return rows


def daily_tasks(store_id: str, now: float) -> list[dict[str, Any]]:
    """The daily segments run of one store starts with its edges."""
    return [{"task": "segments", "phase": "edges", "store_id": store_id, "started_at": now}]


def run_segments_task(
    task: dict[str, Any],
    profiles: ProfileStore,
    store: SegmentStore,
    queue: Callable[[dict[str, Any]], None],
) -> str:
    """One step of a store's daily segments run; follow-up steps go to `queue`. Returns a summary."""
    store_id, phase, now = task["store_id"], task["phase"], float(task["started_at"])
    if phase == "edges":
        rows = store.buyers(store_id)
        edges = compute_edges(rows, now)
        stale: list[str] = []
        if edges is not None:
            profiles.save_rfm_edges(store_id, edges)
            stale = stale_scores(rows, edges, now)
        for i in range(0, len(stale), PAGE):
            queue({**_base(task), "phase": "rescore", "customers": stale[i : i + PAGE]})
        today = datetime.fromtimestamp(now, tz=UTC).date()
        for day in (today - timedelta(days=1), today):
            queue({**_base(task), "phase": "due", "day": day.isoformat()})
        return f"{len(rows)} buyers, {len(stale)} to rescore"
    if phase == "rescore":
        outcomes = [profiles.refresh_segments(store_id, c) for c in task["customers"]]
        return f"{outcomes.count('changed')} of {len(outcomes)} rescored"
    if phase == "due":
        items, last = store.page(
            indexes.SEGMENTS_DUE,
            indexes.segments_due_key(store_id, task["day"]),
            PAGE,
            task.get("cursor"),
        )
        outcomes = [profiles.refresh_segments(store_id, i["customer_id"]) for i in items]
        if last:
            queue({**task, "cursor": last})
        return f"{outcomes.count('changed')} of {len(outcomes)} due on {task['day']} changed"
    raise ValueError(f"unknown segments phase {phase!r}")


def _base(task: dict[str, Any]) -> dict[str, Any]:
    return {"task": "segments", "store_id": task["store_id"], "started_at": task["started_at"]}
