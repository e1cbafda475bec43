"""Offer code pools in the table: upload, draw one unique code per recipient, report what is left.

The pool's codes are items of their own (free or given), drawn at random among a page of free ones
with a conditional write, so concurrent sends never give one code twice; the rules of an offer
(static code or pool, expiry) live in shared.domain.offers.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from shared.domain.offers import (
    MAX_RECIPIENT_LENGTH,
    InvalidCode,
    PoolStatus,
    UploadResult,
    check_pool,
    code_problem,
    running_low,
)
from shared.platform import clock
from shared.platform.aws import from_item, key

logger = logging.getLogger(__name__)

COUNTER_SHARDS = 10
CODES_PER_TRANSACTION = 49  # two actions per code plus the pool's stats and registry items: 100
DRAW_PAGE = 10  # free codes read per attempt; one is picked at random among them
DRAW_ATTEMPTS = 10

STATS_SK = "STATS"


def pool_pk(store: str, pool: str) -> str:
    return f"STORE#{store}#POOL#{pool}"


def registry_pk(store: str) -> str:
    return f"STORE#{store}#POOLS"


def registry_sk(pool: str) -> str:
    return f"POOL#{pool}"


def free_sk(code: str) -> str:
    return f"FREE#{hashlib.sha256(code.encode()).hexdigest()[:6]}#{code}"


def given_sk(code: str) -> str:
    return f"GIVEN#{code}"


def assignment_sk(recipient: str) -> str:
    return f"TO#{recipient}"


def counter_sk(shard: int) -> str:
    return f"{STATS_SK}#GIVEN#{shard}"


class UnknownPool(LookupError):
    """No codes were ever uploaded to this pool."""


class OfferContention(RuntimeError):
    """Draws kept colliding; nothing was given. Retryable (the step's retry draws again)."""


# -- the pools --------------------------------------------------------------------------------------
class OfferStore:
    def __init__(
        self,
        ddb: Any,
        table: str,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ddb = ddb
        self.table = table
        self.rng = rng or random.Random()
        self.sleep = sleep

    # upload ---------------------------------------------------------------------------------------
    def upload(self, store: str, pool: str, codes: Iterable[str]) -> UploadResult:
        """Add codes to a pool. Codes already in it (free or given) are counted as duplicates and left
        alone, so uploading the same file twice adds nothing."""
        check_pool(pool)
        result = UploadResult()
        seen: set[str] = set()
        fresh: list[str] = []
        for position, code in enumerate(codes, start=1):
            if problem := code_problem(code):
                result.invalid.append(InvalidCode(position=position, code=code[:100], reason=problem))
            elif code in seen:
                result.duplicates += 1
            else:
                seen.add(code)
                fresh.append(code)
        for start in range(0, len(fresh), CODES_PER_TRANSACTION):
            added, duplicates = self._add_chunk(store, pool, fresh[start : start + CODES_PER_TRANSACTION])
            result.added += added
            result.duplicates += duplicates
        return result

    def _add_chunk(self, store: str, pool: str, codes: list[str]) -> tuple[int, int]:
        pk = pool_pk(store, pool)
        duplicates = 0
        attempt = 0
        while codes:
            now = clock.now_ts()
            actions: list[dict[str, Any]] = []
            for code in codes:
                actions.append(
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {**key(pk, free_sk(code)), "code": {"S": code}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
                actions.append(
                    {
                        "ConditionCheck": {
                            "TableName": self.table,
                            "Key": key(pk, given_sk(code)),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
            actions.append(self._stats_update(store, pool, len(codes), now))
            actions.append(self._registry_update(store, pool, now))
            try:
                self.ddb.transact_write_items(TransactItems=actions)
                return len(codes), duplicates
            except self.ddb.exceptions.TransactionCanceledException as exc:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                taken = {
                    codes[i // 2]
                    for i, reason in enumerate(reasons[: 2 * len(codes)])
                    if reason == "ConditionalCheckFailed"
                }
                if taken:
                    duplicates += len(taken)
                    codes = [c for c in codes if c not in taken]
                    continue
                if not all(r in ("None", "TransactionConflict", None) for r in reasons):
                    raise
                attempt += 1  # a draw or another upload touched the same items: try again shortly
                if attempt >= DRAW_ATTEMPTS:
                    raise
                self._back_off(attempt)
        return 0, duplicates

    def _stats_update(self, store: str, pool: str, added: int, now: float) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": key(pool_pk(store, pool), STATS_SK),
                "UpdateExpression": (
                    "ADD #total :n SET #store = :store, #pool = :pool, #updated = :now, "
                    "#created = if_not_exists(#created, :now) REMOVE #exhausted"
                ),
                "ExpressionAttributeNames": {
                    "#total": "total",
                    "#store": "store",
                    "#pool": "pool",
                    "#updated": "updated_at",
                    "#created": "created_at",
                    "#exhausted": "exhausted_at",
                },
                "ExpressionAttributeValues": {
                    ":n": {"N": str(added)},
                    ":store": {"S": store},
                    ":pool": {"S": pool},
                    ":now": {"N": repr(now)},
                },
            }
        }

    def _registry_update(self, store: str, pool: str, now: float) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": key(registry_pk(store), registry_sk(pool)),
                "UpdateExpression": "SET #pool = :pool, #created = if_not_exists(#created, :now)",
                "ExpressionAttributeNames": {"#pool": "pool", "#created": "created_at"},
                "ExpressionAttributeValues": {":pool": {"S": pool}, ":now": {"N": repr(now)}},
            }
        }

    # draw -----------------------------------------------------------------------------------------
    def draw(self, store: str, pool: str, recipient: str, now: float | None = None) -> str | None:
        """The recipient's code from the pool: the same one on every call for the same recipient, never
        one given to anybody else. None when the pool has no code left (or was never uploaded)."""
        check_pool(pool)
        if not recipient or len(recipient) > MAX_RECIPIENT_LENGTH:
            raise ValueError(f"recipient must be 1 to {MAX_RECIPIENT_LENGTH} characters")
        if (code := self._assigned(store, pool, recipient)) is not None:
            return code
        for attempt in range(DRAW_ATTEMPTS):
            free = self._free_codes(store, pool)
            if not free:
                self._exhausted(store, pool, clock.now_ts() if now is None else now)
                return None
            code = self.rng.choice(free)
            outcome = self._take(store, pool, code, recipient, clock.now_ts() if now is None else now)
            if outcome == "given":
                return code
            if outcome == "recipient":  # a duplicate delivery of the same step drew meanwhile
                if (code := self._assigned(store, pool, recipient)) is not None:
                    return code
            self._back_off(attempt + 1)
        raise OfferContention(f"no code drawn from pool {pool!r} after {DRAW_ATTEMPTS} attempts")

    def _assigned(self, store: str, pool: str, recipient: str) -> str | None:
        resp = self.ddb.get_item(
            TableName=self.table,
            Key=key(pool_pk(store, pool), assignment_sk(recipient)),
            ConsistentRead=True,
        )
        return resp["Item"]["code"]["S"] if "Item" in resp else None

    def _free_codes(self, store: str, pool: str) -> list[str]:
        # Start at a random place among the free codes (their keys are spread by hash), so concurrent
        # draws mostly pick different codes; from the first free code when that place is past the end.
        start = f"FREE#{self.rng.getrandbits(24):06x}"
        page = self._query_free(store, pool, "#sk BETWEEN :start AND :end", {":start": start}, False)
        if not page:  # the last word on "none left" is a strongly consistent read
            page = self._query_free(store, pool, "#sk BETWEEN :start AND :end", {":start": "FREE#"}, True)
        return page

    def _query_free(
        self, store: str, pool: str, condition: str, values: dict[str, str], consistent: bool
    ) -> list[str]:
        resp = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression=f"pk = :pk AND {condition}",
            ExpressionAttributeNames={"#sk": "sk"},
            ExpressionAttributeValues={
                ":pk": {"S": pool_pk(store, pool)},
                ":end": {"S": "FREE$"},  # '$' sorts right after '#': the end of the FREE# keys
                **{k: {"S": v} for k, v in values.items()},
            },
            ProjectionExpression="code",
            Limit=DRAW_PAGE,
            ConsistentRead=consistent,
        )
        return [item["code"]["S"] for item in resp.get("Items", [])]

    def _take(self, store: str, pool: str, code: str, recipient: str, now: float) -> str:
        """One transaction: FREE# -> GIVEN#, TO#<recipient>, +1 given. 'given', 'recipient' (the
        recipient already has a code) or 'lost' (another draw took this code, or collided)."""
        pk = pool_pk(store, pool)
        at = {"N": repr(now)}
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": key(pk, free_sk(code)),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **key(pk, assignment_sk(recipient)),
                                "code": {"S": code},
                                "given_at": at,
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **key(pk, given_sk(code)),
                                "recipient": {"S": recipient},
                                "given_at": at,
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": key(pk, counter_sk(self.rng.randrange(COUNTER_SHARDS))),
                            "UpdateExpression": "ADD #given :one",
                            "ExpressionAttributeNames": {"#given": "given"},
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except self.ddb.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return "recipient"
            if not all(r in ("None", "ConditionalCheckFailed", "TransactionConflict", None) for r in reasons):
                raise
            return "lost"
        return "given"

    def _exhausted(self, store: str, pool: str, now: float) -> None:
        """Record the first time a draw found the pool empty, and warn about it once."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key(pool_pk(store, pool), STATS_SK),
                UpdateExpression="SET #exhausted = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#exhausted)",
                ExpressionAttributeNames={"#exhausted": "exhausted_at"},
                ExpressionAttributeValues={":now": {"N": repr(now)}},
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            if not self._known(store, pool):
                logger.warning("offer pool not found", extra={"store": store, "pool": pool})
            return
        logger.warning("offer pool exhausted", extra={"store": store, "pool": pool, "exhausted_at": now})

    def _known(self, store: str, pool: str) -> bool:
        resp = self.ddb.get_item(
            TableName=self.table, Key=key(pool_pk(store, pool), STATS_SK), ProjectionExpression="pk"
        )
        return "Item" in resp

    def _back_off(self, attempt: int) -> None:
        self.sleep(self.rng.uniform(0, min(0.5, 0.01 * 2**attempt)))

    # status ---------------------------------------------------------------------------------------
    def status(self, store: str, pool: str) -> PoolStatus:
        """Counts from the pool's stats items (one Query; no code is read). UnknownPool if never uploaded."""
        check_pool(pool)
        resp = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :stats)",
            ExpressionAttributeValues={":pk": {"S": pool_pk(store, pool)}, ":stats": {"S": STATS_SK}},
            ConsistentRead=True,
        )
        items = [from_item(i) for i in resp.get("Items", [])]
        stats = next((i for i in items if i["sk"] == STATS_SK), None)
        if stats is None:
            raise UnknownPool(f"no pool {pool!r} in store {store!r}")
        total = int(stats.get("total", 0))
        given = sum(int(i.get("given", 0)) for i in items if i["sk"] != STATS_SK)
        remaining = max(0, total - given)
        exhausted_at = stats.get("exhausted_at")
        return PoolStatus(
            store=store,
            pool=pool,
            total=total,
            given=given,
            remaining=remaining,
            exhausted_at=float(exhausted_at) if exhausted_at is not None else None,
            low=running_low(total, remaining),
        )

    def pools(self, store: str) -> list[PoolStatus]:
        """Every pool of the store (from its registry partition), by name."""
        names: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": registry_pk(store)}},
        }
        while True:
            resp = self.ddb.query(**kwargs)
            names += [i["pool"]["S"] for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return [self.status(store, name) for name in sorted(names)]
