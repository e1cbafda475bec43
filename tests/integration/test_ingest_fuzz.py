"""A bounded fuzz of the event API (issue 16): thousands of generated bodies — malformed JSON, wrong
types, lone surrogates, deep nesting, huge numbers, big traits, batches mixing valid and hostile
calls — through the real ingest λ on in-process moto. Never a 5xx; a refused body publishes
nothing (so no profile can come of it); an accepted one publishes every call and folds in the
profile λ without a dead letter. Derandomized: CI runs the same bodies every time.

Run time: the 5,000 bodies and 62 folded ones take ~70 s of CPU (on a 2-core machine shared by eight
test runs that was 8 minutes of wall time; most of it is hypothesis drawing and the λ's Powertools
plumbing, not the checks, which cost ~9 µs a call: `python -m tests.bench validation`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest.handler import handler
from functions.profile.handler import handler as profile_handler
from shared.domain import limits
from shared.platform import keys
from shared.platform.aws import client
from tests.aws_fixtures import (
    API_KEY,
    LambdaContext,
    World,
    api_request,
    basic_auth,
    sqs_batch,
    world_for_module,
)

# FUZZ_BODIES=300 for a quick local look; CI runs the full 5,000
BODIES = int(os.environ.get("FUZZ_BODIES", "5000"))
FOLDED_BODIES = max(1, BODIES // 80)  # accepted bodies also run through the profile λ (a transaction each)


class Raw:
    """JSON text spliced in verbatim: what json.dumps cannot write (a 5,000-digit integer, deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text


def to_json(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)  # ensure_ascii: a lone surrogate becomes the escape \udXXX, valid JSON


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # thousands of requests: the handlers' per-request INFO lines would cost more than the requests
    boomerang = logging.getLogger("boomerang")
    level = boomerang.level
    boomerang.setLevel(logging.WARNING)
    with world_for_module() as created:
        yield created
    boomerang.setLevel(level)


# --- what a call may hold -------------------------------------------------------------------------

NAMES = st.sampled_from(["plan", "size", "note", "color", "vip", "source", "a.b", "ünï", "😀"])
EVENTS = st.sampled_from(
    [
        "Product Added",
        "product_removed",
        "Checkout Started",
        "Order Completed",
        "Product Viewed",
        "Thing Done",
    ]
)
# Free-form values a store may send, at and near every edge (one draw each: generating them value
# by value cost more than the requests themselves)
EDGE_SCALARS: list[Any] = [
    None, True, False, 0, -1, 2**53 + 1, 10**38 - 1, -(10**38) + 1, 0.0, -0.0, 0.1, 123.456,
    1e-130, -1e-130, 9.99e125, -9.99e125, 1e38, 1e-100, "", " ", "a", "é", "😀", "\u200b",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "x" * 500, "\x00", "null", "1e400", "<b>&amp;</b>",
]  # fmt: skip
EDGE_VALUES: list[Any] = [
    *EDGE_SCALARS,
    [],
    {},
    [1, "a", None],
    {"a": {"b": {"c": [1.5, "z"]}}},
    [[[[[[[[[[[[1]]]]]]]]]]]],  # 12 levels below the value: within the call's 16
    {"k" * 100: "v"},
    list(range(50)),
]
VALUES = st.sampled_from(EDGE_VALUES)

# values no call may carry, each a separate way in
HOSTILE_VALUES = st.one_of(
    st.sampled_from(["\ud800", "ok\udfffok", "\udc00"]),  # lone surrogates (valid JSON escapes)
    st.integers(limits.MAX_DEPTH, 400).map(lambda n: Raw("[" * n + "]" * n)),
    st.integers(39, 6_000).map(lambda n: Raw("9" * n)),
    st.sampled_from(
        [Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("1e200"), Raw("-1e-200")]
    ),
    st.just(10**38),
)
WRONG_TYPES = st.sampled_from([[], ["a"], [1, 2], {"a": "b"}, {}, True, False, 1.5, float("nan"), -0.25])


@st.composite
def valid_call(draw: st.DrawFn, n: int) -> dict[str, Any]:
    user = {"userId": f"fz-{n}-{draw(st.integers(0, 2))}"}
    if draw(st.booleans()):
        traits = draw(st.dictionaries(NAMES, VALUES, max_size=4))
        if draw(st.booleans()):
            traits["email"] = f"fz{n}@example.com"
        return {"type": "identify", **user, "traits": traits}
    event = draw(EVENTS)
    props: dict[str, Any] = draw(st.dictionaries(NAMES, VALUES, max_size=3))
    if event in ("Product Added", "product_removed", "Product Viewed"):
        props |= {
            "sku": draw(st.sampled_from(["S-1", "S-2"])),
            "price": draw(st.decimals(0, limits.MAX_PRICE, places=2).map(float)),
            "quantity": draw(st.integers(1, limits.MAX_QUANTITY)),
        }
    if event == "Order Completed":
        props |= {
            "order_id": f"o-{n}-{draw(st.integers(0, 3))}",
            "total": draw(st.decimals(0, limits.MAX_ORDER_TOTAL, places=2).map(float)),
        }
    return {"type": "track", **user, "event": event, "properties": props}


@st.composite
def hostile_call(draw: st.DrawFn, n: int) -> dict[str, Any]:
    """A call with exactly one thing wrong with it, somewhere a store could put it."""
    call = draw(valid_call(n))
    how = draw(st.sampled_from(["value", "type", "money", "traits", "shape"]))
    where = "traits" if call["type"] == "identify" else "properties"
    if how == "value":
        section = draw(st.sampled_from([where, "context"]))
        call[section] = {**call.get(section, {}), draw(NAMES): draw(HOSTILE_VALUES)}
    elif how == "type":
        field = draw(st.sampled_from(["userId", "messageId", "type", "timestamp", where, "context"]))
        call[field] = draw(
            WRONG_TYPES.filter(
                lambda v: not isinstance(v, dict) or field in ("userId", "messageId", "type", "timestamp")
            )
        )
    elif how == "money":
        call.update(type="track", event="Order Completed")
        call.pop("traits", None)
        bad = draw(st.sampled_from([1e38, -1, 1e10, "lots", 10**20]))
        call["properties"] = {"order_id": f"o-{n}", "total": bad}
    elif how == "traits":
        call.update(type="identify")
        call.pop("event", None)
        call.pop("properties", None)
        if draw(st.booleans()):
            call["traits"] = {"bio": "x" * draw(st.integers(limits.MAX_TRAIT_BYTES, 31_000))}
        else:
            call["traits"] = {
                f"t{i}": i for i in range(draw(st.integers(limits.MAX_TRAITS_PER_CALL + 1, 300)))
            }
    else:
        call.pop("userId")
    return call


@st.composite
def body(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(raw body, whether some call in it is surely invalid)."""
    n = draw(st.integers(0, 10**9))
    kind = draw(st.sampled_from(["valid", "mixed", "mixed", "hostile-only", "malformed", "shape"]))
    if kind == "malformed":
        raw = draw(
            st.one_of(
                st.binary(max_size=64),
                st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
                st.just(b'{"batch": [' + b"{" * 50),
                st.integers(1, 200_000).map(lambda d: b"[" * d),
            )
        )
        return raw, True
    if kind == "shape":  # bodies with no usable batch at all
        shape = draw(st.one_of(WRONG_TYPES, st.just({"batch": []}), st.just({"batch": "x"})))
        return to_json(shape).encode(), True
    size = draw(st.integers(1, 4))
    calls = [draw(valid_call(n * 10 + i)) for i in range(size)]
    bad = kind != "valid"
    if bad:
        for i in sorted(set(draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size)))):
            calls[i] = draw(hostile_call(n * 10 + i))
    envelope: dict[str, Any] = {"batch": calls}
    if draw(st.booleans()):
        envelope["context"] = {"library": {"name": "fuzz"}, "timezone": "Europe/Oslo"}
    return to_json(envelope).encode(), bad


# --- the runs -------------------------------------------------------------------------------------


def _post(ctx: LambdaContext, raw: bytes) -> tuple[int, dict[str, Any]]:
    result = handler(api_request("POST", "/v1/batch", raw, basic_auth(API_KEY)), ctx)
    return result["statusCode"], json.loads(result["body"])


@pytest.fixture
def published_entries(world: World) -> Iterator[list[dict[str, Any]]]:
    """Every entry the ingest λ puts on the bus, as botocore serialized it for the wire (so text
    that cannot be sent would fail here as it would on AWS). The bus answers from this recorder:
    moto's routing costs ~0.1 s a call, minutes over 5,000 bodies; the fold test below publishes
    through moto's bus to the profile λ for real."""
    entries: list[dict[str, Any]] = []

    class Ok:
        status_code = 200
        headers: dict[str, str] = {}

    def record(params: dict[str, Any], **_: Any) -> tuple[Ok, dict[str, Any]]:
        body = params["body"]
        sent = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)["Entries"]
        entries.extend(sent)
        return Ok(), {"FailedEntryCount": 0, "Entries": [{"EventId": f"e-{n}"} for n, _ in enumerate(sent)]}

    events = client("events")
    events.meta.events.register("before-call.events.PutEvents", record)
    yield entries
    events.meta.events.unregister("before-call.events.PutEvents", record)


def test_thousands_of_generated_bodies_never_get_a_5xx_and_a_refused_one_stores_nothing(
    world: World, published_entries: list[dict[str, Any]]
) -> None:
    ctx = LambdaContext()
    seen: dict[str, int] = {"bodies": 0, "accepted": 0, "refused": 0}
    refused_users: set[str] = set()
    accepted_users: set[str] = set()
    started = time.perf_counter()

    @settings(
        max_examples=BODIES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body())
    def run(case: tuple[bytes, bool]) -> None:
        raw, surely_bad = case
        published_entries.clear()
        status, answer = _post(ctx, raw)
        seen["bodies"] += 1
        assert status < 500, (status, answer, raw[:300])
        users = {u.decode() for u in _user_ids(raw)}
        if status == 200:
            assert not surely_bad, (answer, raw[:300])
            assert len(published_entries) == answer["accepted"]
            seen["accepted"] += 1
            accepted_users.update(users)
        else:
            assert status in (400, 413), (status, answer)
            assert published_entries == [], (status, answer)  # all or nothing
            if answer.get("errors"):  # each problem names its call and field and what is allowed
                assert all(e["message"] and e["field"] for e in answer["errors"])
            seen["refused"] += 1
            refused_users.update(users)

    run()
    took = time.perf_counter() - started
    print(f"\nfuzz: {seen} in {took:.1f} s")
    assert seen["bodies"] >= BODIES
    assert seen["accepted"] >= BODIES // 20 and seen["refused"] >= BODIES // 2  # both sides exercised

    # And no profile exists for a customer who only ever appeared in refused bodies
    only_refused = sorted(refused_users - accepted_users)[:200]
    assert only_refused
    ddb = client("dynamodb")
    for user in only_refused:
        pk = keys.customer_pk("shop-1", keys.user_customer_id(user))
        got = ddb.get_item(TableName=world.table, Key={"pk": {"S": pk}, "sk": {"S": keys.PROFILE_SK}})
        assert "Item" not in got, user


def _user_ids(raw: bytes) -> list[bytes]:
    import re

    return re.findall(rb'"userId":\s*"(fz-[0-9]+-[0-9])"', raw)


def test_whatever_is_accepted_folds_in_the_profile_lambda_without_a_dead_letter(world: World) -> None:
    ctx = LambdaContext()
    world.published("profile")  # what earlier tests left
    folded = {"bodies": 0, "events": 0}

    @settings(
        max_examples=FOLDED_BODIES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.integers(0, 10**9).flatmap(lambda n: st.lists(valid_call(n), min_size=1, max_size=4)))
    def run(calls: list[dict[str, Any]]) -> None:
        status, answer = _post(ctx, to_json({"batch": calls}).encode())
        assert status == 200, answer
        published = world.published("profile")
        assert len(published) == len(calls)
        while published:  # and what the fold announces (Loyalty Tier Reached) folds too
            assert profile_handler(sqs_batch(published), ctx) == {"batchItemFailures": []}
            folded["events"] += len(published)
            published = world.published("profile")
        folded["bodies"] += 1

    run()
    assert folded["bodies"] >= FOLDED_BODIES
