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

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

POOL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_RECIPIENT_LENGTH = 512
LOW_SHARE = 0.10
LOW_COUNT = 50


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


def running_low(total: int, remaining: int) -> bool:
    """Time to upload more: fewer than 50 codes left, or fewer than a tenth of all ever uploaded."""
    return remaining < LOW_COUNT or remaining < LOW_SHARE * total


def check_pool(pool: str) -> None:
    if not POOL_PATTERN.fullmatch(pool):
        raise ValueError(f"invalid pool id {pool!r}: 1 to 63 of a-z 0-9 '-', starting with a letter or digit")


class CodeDrawer(Protocol):
    """What giving an offer needs of a pool store: one unique code per recipient (adapters.offer_store)."""

    def draw(self, store: str, pool: str, recipient: str, now: float | None = None) -> str | None: ...


# -- giving ---------------------------------------------------------------------------------------
def give(
    offer: Offer, offers: CodeDrawer | None, store: str, recipient: str, now: float
) -> GivenOffer | None:
    """The offer as a template sees it; None when its pool ran out (the caller applies on_exhausted)."""
    if offer.code is not None:
        code: str | None = offer.code
    else:
        assert offer.pool is not None  # the model guarantees exactly one of code and pool
        if offers is None:
            raise RuntimeError("an offer from a pool needs the offer store")
        code = offers.draw(store, offer.pool, recipient, now=now)
        if code is None:
            return None
    return GivenOffer(
        code=code, description=offer.description, expires_at=offer.expires_at(now), pool=offer.pool
    )
