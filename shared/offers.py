"""Offers in journey messages: a static code everyone gets, or a unique code from a pool the store uploaded.

Item layout (single table, no Scan anywhere):

    pool partition  STORE#<store>#POOL#<pool>
        STATS                       total codes ever added, exhausted_at, created_at, updated_at
        STATS#GIVEN#<0..9>          codes given, a counter split over shards so draws do not collide
        FREE#<h>#<code>             a code not given yet (h: 6 hex digits of the code's SHA-256, so free
                                    codes are spread evenly and a draw can start at a random place)
        GIVEN#<code>                a given code: to whom (an opaque recipient key) and when
        TO#<recipient>              the code a recipient got, so a retried draw gets it back
    registry        STORE#<store>#POOLS / POOL#<pool>   one per pool, so a store's pools are one Query

A draw moves one code from FREE# to GIVEN# in one transaction that also writes the recipient's TO#
item (only if absent) and bumps a counter shard: a code is never given twice, a recipient never gets
two codes. Recipient keys are opaque (e.g. "journey|instance|step"); no personal data is stored.
No item carries the table's TTL attribute (`expires_at`): codes and assignments stay until deleted.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from shared import clock
from shared.aws import from_item, key

logger = logging.getLogger(__name__)

POOL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_RECIPIENT_LENGTH = 512
COUNTER_SHARDS = 10
CODES_PER_TRANSACTION = 49  # two actions per code plus the pool's stats and registry items: 100
DRAW_PAGE = 10  # free codes read per attempt; one is picked at random among them
DRAW_ATTEMPTS = 10
LOW_SHARE = 0.10
LOW_COUNT = 50

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


def code_problem(code: str) -> str | None:
    """Why `code` cannot be an offer code, or None when it can."""
    if not code:
        return "empty"
    if len(code) > 64:
        return f"{len(code)} characters long (at most 64)"
    bad = sorted({c for c in code if not re.fullmatch(r"[A-Za-z0-9_-]", c)})
    if bad:
        return "contains " + " ".join(repr(c) for c in bad) + " (only letters, digits, '_' and '-')"
    return None


# -- the journey file's `offer:` ---------------------------------------------------------------------
class Offer(BaseModel):
    """An offer as written under a journey step's `offer:`: exactly one of `code` or `pool`."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = None  # a static code everyone gets (e.g. WELCOME10)
    pool: str | None = None  # a pool of unique codes the store uploaded; each recipient gets their own
    description: str  # human text shown in templates, e.g. "10% off your first order"
    expires_after_days: int | None = None  # expiry counted from when the code is given
    expires_on: date | None = None  # or a fixed last day (the code is valid until its end, UTC)
    on_exhausted: Literal["skip", "send_without"] = "skip"  # what the step does if the pool ran out

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        if value is not None and (problem := code_problem(value)):
            raise ValueError(f"code is {problem}" if problem == "empty" else f"code {problem}")
        return value

    @field_validator("pool")
    @classmethod
    def _pool(cls, value: str | None) -> str | None:
        if value is not None and not POOL_PATTERN.fullmatch(value):
            raise ValueError(
                "pool must be 1 to 63 lowercase letters, digits or '-', starting with a letter or digit"
            )
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("description must not be empty (templates show it next to the code)")
        return value

    @field_validator("expires_after_days")
    @classmethod
    def _days(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("expires_after_days must be at least 1")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Offer:
        if (self.code is None) == (self.pool is None):
            raise ValueError(
                "an offer needs exactly one of `code` (a static code everyone gets) "
                "or `pool` (a pool of unique codes, one per recipient)"
            )
        if self.expires_after_days is not None and self.expires_on is not None:
            raise ValueError("set `expires_after_days` or `expires_on`, not both")
        if self.code is not None and "on_exhausted" in self.model_fields_set:
            raise ValueError("`on_exhausted` applies only to an offer with a `pool`, not a static `code`")
        return self

    def expires_at(self, given_at: float) -> float | None:
        """Epoch seconds: the end (23:59:59 UTC) of `expires_on`, or `given_at` plus the days."""
        if self.expires_on is not None:
            end = datetime.combine(self.expires_on, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
            return end.timestamp() - 1
        if self.expires_after_days is not None:
            return given_at + self.expires_after_days * 86400
        return None


class GivenOffer(BaseModel):
    """What templates see as `offer`."""

    code: str
    description: str
    expires_at: float | None  # epoch seconds
    pool: str | None


class InvalidCode(BaseModel):
    position: int  # 1-based, in the codes given to upload()
    code: str
    reason: str


class UploadResult(BaseModel):
    added: int = 0
    duplicates: int = 0  # already in the pool (given or not), or repeated in this upload
    invalid: list[InvalidCode] = []


class PoolStatus(BaseModel):
    store: str
    pool: str
    total: int
    given: int
    remaining: int
    exhausted_at: float | None  # when a draw first found no code left (cleared by an upload)
    low: bool  # remaining < 10% of total, or < 50


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
        _check_pool(pool)
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
        _check_pool(pool)
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
        _check_pool(pool)
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


def running_low(total: int, remaining: int) -> bool:
    """Time to upload more: fewer than 50 codes left, or fewer than a tenth of all ever uploaded."""
    return remaining < LOW_COUNT or remaining < LOW_SHARE * total


def _check_pool(pool: str) -> None:
    if not POOL_PATTERN.fullmatch(pool):
        raise ValueError(f"invalid pool id {pool!r}: 1 to 63 of a-z 0-9 '-', starting with a letter or digit")


# -- giving ---------------------------------------------------------------------------------------
def give(offer: Offer, offers: OfferStore, store: str, recipient: str, now: float) -> GivenOffer | None:
    """The offer as a template sees it; None when its pool ran out (the caller applies on_exhausted)."""
    if offer.code is not None:
        code: str | None = offer.code
    else:
        assert offer.pool is not None  # the model guarantees exactly one of code and pool
        code = offers.draw(store, offer.pool, recipient, now=now)
        if code is None:
            return None
    return GivenOffer(
        code=code, description=offer.description, expires_at=offer.expires_at(now), pool=offer.pool
    )
