"""Offer code pools on moto: upload, draw (idempotent, never twice, under concurrency), status, CLI."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from moto.dynamodb.responses import DynamoHandler

from infra.local.cli import main as boomerang
from shared.adapters import offer_store as offers_module
from shared.adapters.offer_store import OfferStore, UnknownPool
from shared.domain.offers import Offer, give
from shared.platform.aws import client
from tests.aws_fixtures import World

STORE = "shop-1"
NOW = 1_790_000_000.0


def codes(n: int, prefix: str = "BF") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


@pytest.fixture
def offers(world: World) -> OfferStore:
    return OfferStore(client("dynamodb"), world.table, sleep=lambda _: None)


@pytest.fixture
def one_request_at_a_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DynamoDB applies each request atomically; moto does not across threads (a cancelled transaction
    restores a copy of the whole table taken before it, undoing what other threads wrote meanwhile).
    One lock around each request gives moto DynamoDB's atomicity; draws still interleave between
    requests, which is where the races this protects against happen."""
    lock = threading.Lock()
    real = DynamoHandler.call_action

    def atomic(self: Any) -> Any:
        with lock:
            return real(self)

    monkeypatch.setattr(DynamoHandler, "call_action", atomic)
    yield


# -- upload ---------------------------------------------------------------------------------------
def test_upload_adds_codes_and_counts_duplicates_and_invalid_ones(offers: OfferStore) -> None:
    result = offers.upload(STORE, "bf", [*codes(120), "BF-0003", "", "NOT VALID"])
    assert (result.added, result.duplicates) == (120, 1)
    assert [(i.position, i.reason) for i in result.invalid] == [
        (122, "empty"),
        (123, "contains ' ' (only letters, digits, '_' and '-')"),
    ]
    status = offers.status(STORE, "bf")
    assert (status.total, status.given, status.remaining, status.exhausted_at) == (120, 0, 120, None)


def test_uploading_the_same_codes_twice_adds_nothing(offers: OfferStore) -> None:
    offers.upload(STORE, "bf", codes(100))
    again = offers.upload(STORE, "bf", codes(100))
    assert (again.added, again.duplicates) == (0, 100)
    assert offers.status(STORE, "bf").total == 100


def test_a_given_code_is_a_duplicate_too(offers: OfferStore) -> None:
    offers.upload(STORE, "bf", ["ONLY-1"])
    assert offers.draw(STORE, "bf", "j|i-1|s1") == "ONLY-1"
    result = offers.upload(STORE, "bf", ["ONLY-1", "NEW-2"])
    assert (result.added, result.duplicates) == (1, 1)
    status = offers.status(STORE, "bf")
    assert (status.total, status.given, status.remaining) == (2, 1, 1)


def test_pools_are_separate_per_pool_and_per_store(offers: OfferStore) -> None:
    offers.upload(STORE, "bf", ["SAME-1"])
    assert offers.upload(STORE, "welcome", ["SAME-1"]).added == 1
    assert offers.upload("shop-2", "bf", ["SAME-1"]).added == 1
    assert [p.pool for p in offers.pools(STORE)] == ["bf", "welcome"]
    assert [p.pool for p in offers.pools("shop-2")] == ["bf"]
    assert offers.pools("shop-3") == []


# -- draw -----------------------------------------------------------------------------------------
def test_the_same_recipient_always_gets_the_same_code(offers: OfferStore) -> None:
    offers.upload(STORE, "bf", codes(20))
    first = offers.draw(STORE, "bf", "cart-abandoned|c-1|s2")
    assert first is not None
    assert {offers.draw(STORE, "bf", "cart-abandoned|c-1|s2") for _ in range(5)} == {first}
    other = offers.draw(STORE, "bf", "cart-abandoned|c-2|s2")
    assert other not in (None, first)
    assert offers.status(STORE, "bf").given == 2


def test_a_lost_race_for_a_code_draws_another(world: World) -> None:
    # Given two codes, and draws that always read from the first free code and pick it
    rng = _FirstPick()
    mine = OfferStore(
        _Interloper(client("dynamodb"), world.table), world.table, rng=rng, sleep=lambda _: None
    )
    mine.upload(STORE, "bf", ["AAA-1", "BBB-2"])
    first_free = mine._free_codes(STORE, "bf")[0]
    # When another Lambda takes that very code between our read and our transaction
    mine.ddb.before_transaction = lambda: OfferStore(client("dynamodb"), world.table, rng=rng).draw(
        STORE, "bf", "other|i|s"
    )
    # Then we get the other code, and each code went to one recipient
    got = mine.draw(STORE, "bf", "me|i|s")
    assert got is not None and got != first_free
    assert OfferStore(client("dynamodb"), world.table).draw(STORE, "bf", "other|i|s") == first_free
    assert offers_status(mine) == (2, 2, 0)


def test_a_duplicate_delivery_drawing_meanwhile_gets_the_same_code(world: World) -> None:
    mine = OfferStore(_Interloper(client("dynamodb"), world.table), world.table, sleep=lambda _: None)
    mine.upload(STORE, "bf", codes(10))
    twin = OfferStore(client("dynamodb"), world.table)
    drawn: list[str | None] = []
    mine.ddb.before_transaction = lambda: drawn.append(twin.draw(STORE, "bf", "j|i|s"))
    assert mine.draw(STORE, "bf", "j|i|s") == drawn[0] is not None
    assert offers_status(mine) == (10, 1, 9)


def test_no_code_is_given_twice_under_concurrent_draws(
    world: World, one_request_at_a_time: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pool of 50 codes, a page of 5 read per attempt (more collisions), and real back-off
    monkeypatch.setattr(offers_module, "DRAW_PAGE", 5)
    monkeypatch.setattr(offers_module, "DRAW_ATTEMPTS", 50)
    OfferStore(client("dynamodb"), world.table).upload(STORE, "bf", codes(50))
    lambdas = [OfferStore(client("dynamodb"), world.table) for _ in range(8)]
    recipients = [f"cart-abandoned|c-{i}|s2" for i in range(60)]

    # When 8 Lambdas draw for 60 recipients at once, each recipient twice (a duplicate delivery)
    def draw(i: int) -> tuple[str, str | None]:
        r = recipients[i % 60]
        return r, lambdas[i % 8].draw(STORE, "bf", r)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(draw, range(120)))

    # Then exactly 50 distinct codes went to 50 recipients, the other 10 got None, twice each
    by_recipient: dict[str, set[str | None]] = {}
    for r, code in results:
        by_recipient.setdefault(r, set()).add(code)
    assert all(len(got) == 1 for got in by_recipient.values()), "a recipient got two answers"
    given = [next(iter(got)) for got in by_recipient.values()]
    assert sorted(c for c in given if c is not None) == codes(50)
    assert given.count(None) == 10
    status = offers_status(lambdas[0])
    assert status == (50, 50, 0)


def test_running_out_is_recorded_once_and_logged_without_personal_data(
    offers: OfferStore, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    offers.upload(STORE, "bf", ["ONLY-1"])
    assert offers.draw(STORE, "bf", "j|a|s", now=NOW) == "ONLY-1"
    status = offers.status(STORE, "bf")
    assert (status.exhausted_at, status.low) == (None, True)
    with caplog.at_level(logging.WARNING, logger="shared.adapters.offer_store"):
        assert offers.draw(STORE, "bf", "j|b|s", now=NOW + 10) is None
        assert offers.draw(STORE, "bf", "j|c|s", now=NOW + 20) is None
    assert offers.status(STORE, "bf").exhausted_at == NOW + 10
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.getMessage(), r.__dict__["store"], r.__dict__["pool"]) for r in warnings] == [
        ("offer pool exhausted", STORE, "bf")
    ]
    assert "j|b|s" not in caplog.text
    # An upload refills the pool and clears exhausted_at
    offers.upload(STORE, "bf", ["MORE-2"])
    status = offers.status(STORE, "bf")
    assert (status.remaining, status.exhausted_at) == (1, None)


def test_a_pool_never_uploaded_gives_nothing(offers: OfferStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.adapters.offer_store"):
        assert offers.draw(STORE, "typo", "j|a|s") is None
    assert "offer pool not found" in caplog.text
    with pytest.raises(UnknownPool):
        offers.status(STORE, "typo")
    assert offers.pools(STORE) == []  # the draw created nothing


def test_a_pool_runs_low_under_50_codes(offers: OfferStore) -> None:
    offers.upload(STORE, "bf", codes(60))
    assert offers.status(STORE, "bf").low is False
    for i in range(11):
        offers.draw(STORE, "bf", f"j|{i}|s")
    status = offers.status(STORE, "bf")
    assert (status.remaining, status.low) == (49, True)


def test_give_draws_from_the_pool_and_dates_the_expiry(offers: OfferStore) -> None:
    offers.upload(STORE, "bf", ["ONLY-1"])
    offer = Offer(pool="bf", description="25% off", expires_after_days=7)
    given = give(offer, offers, STORE, "j|i|s", NOW)
    assert given is not None
    assert (given.code, given.pool, given.expires_at) == ("ONLY-1", "bf", NOW + 7 * 86400)
    assert give(offer, offers, STORE, "j|other|s", NOW) is None


# -- the CLI --------------------------------------------------------------------------------------
def test_cli_upload_then_status(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "codes.csv"
    f.write_text("code,value\n" + "".join(f"{c},25\n" for c in codes(60)) + "\nBF-0001,25\n")
    args = ["offers", "upload", "--store", STORE, "--pool", "bf", "--table", world.table, str(f)]
    assert boomerang(args) == 0
    out = capsys.readouterr().out
    assert "60 added, 1 already there or repeated" in out
    assert boomerang(args) == 0
    assert "0 added, 61 already there or repeated" in capsys.readouterr().out

    OfferStore(client("dynamodb"), world.table).draw(STORE, "bf", "j|i|s")
    assert boomerang(["offers", "status", "--store", STORE, "--pool", "bf", "--table", world.table]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line == ["bf", "60", "1", "59", "ok"]


def test_cli_status_lists_every_pool(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOOMERANG_TABLE", world.table)
    offers = OfferStore(client("dynamodb"), world.table)
    offers.upload(STORE, "welcome", ["W-1"])
    offers.upload(STORE, "bf", codes(3))
    assert boomerang(["offers", "status", "--store", STORE]) == 0
    rows = [line.split()[:4] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["bf", "3", "0", "3"], ["welcome", "1", "0", "1"]]


def test_cli_refuses_a_file_with_invalid_codes_naming_their_lines(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "codes.txt"
    f.write_text("GOOD-1\n\nBAD CODE\nGOOD-2\n10%OFF\n")
    args = ["offers", "upload", "--store", STORE, "--pool", "bf", "--table", world.table, str(f)]
    assert boomerang(args) == 1
    err = capsys.readouterr().err
    assert "2 invalid code(s); nothing uploaded" in err
    assert "line 3: 'BAD CODE'" in err and "line 5: '10%OFF'" in err
    assert OfferStore(client("dynamodb"), world.table).pools(STORE) == []


def test_cli_errors(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = ["offers", "upload", "--store", STORE, "--pool", "bf", "--table", world.table]
    assert boomerang([*missing, str(tmp_path / "nope.txt")]) == 1
    assert "nope.txt: no such file" in capsys.readouterr().err

    assert boomerang(["offers", "status", "--store", STORE, "--pool", "bf", "--table", world.table]) == 1
    assert "no pool 'bf' in store 'shop-1'" in capsys.readouterr().err

    assert boomerang(["offers", "status", "--store", STORE, "--table", "no-such-table"]) == 1
    assert "table 'no-such-table' not found" in capsys.readouterr().err

    with pytest.raises(SystemExit) as bad_pool:
        boomerang(["offers", "status", "--store", STORE, "--pool", "Black Friday"])
    assert bad_pool.value.code == 2
    assert "not a pool id" in capsys.readouterr().err


# -- helpers --------------------------------------------------------------------------------------
class _FirstPick(random.Random):
    def getrandbits(self, k: int) -> int:
        return 0

    def choice(self, seq: Any) -> Any:
        return seq[0]


class _Interloper:
    """A DynamoDB client through which something else happens just before our next transaction."""

    def __init__(self, ddb: Any, table: str) -> None:
        self._ddb = ddb
        self.before_transaction: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.before_transaction is not None:
            step, self.before_transaction = self.before_transaction, None
            step()
        return self._ddb.transact_write_items(**kwargs)


def offers_status(store: OfferStore) -> tuple[int, int, int]:
    s = store.status(STORE, "bf")
    return s.total, s.given, s.remaining
