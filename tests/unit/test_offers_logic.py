"""The journey file's `offer:` model, expiry, code checks, giving, and reading code files (no AWS)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from infra.offers_cli import CodeFileError, CodeLine, read_codes
from shared.domain.offers import GivenOffer, Offer, code_problem, give, running_low

NOW = 1_790_000_000.0


def errors_of(**data: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        Offer.model_validate(data)
    return [(e["loc"], e["msg"]) for e in caught.value.errors()]


def only_message(**data: Any) -> str:
    errors = errors_of(**data)
    assert len(errors) == 1, errors
    return errors[0][1]


# -- the model --------------------------------------------------------------------------------------
def test_a_static_code_and_a_pool_offer_are_valid() -> None:
    static = Offer(code="WELCOME10", description="10% off your first order", expires_after_days=14)
    pooled = Offer.model_validate(
        {"pool": "black-friday-25", "description": "25% off", "expires_on": "2026-12-01"}
    )
    assert static.on_exhausted == "skip"
    assert pooled.expires_on == date(2026, 12, 1)


def test_neither_code_nor_pool_names_both_fields() -> None:
    message = only_message(description="10% off")
    assert "`code`" in message and "`pool`" in message


def test_both_code_and_pool_names_both_fields() -> None:
    message = only_message(code="WELCOME10", pool="welcome", description="10% off")
    assert "`code`" in message and "`pool`" in message


@pytest.mark.parametrize("pool", ["Welcome", "-welcome", "welcome_10", "a" * 64, "", "wel come"])
def test_a_pool_id_must_be_a_slug(pool: str) -> None:
    [(loc, message)] = errors_of(pool=pool, description="10% off")
    assert loc == ("pool",)
    assert "pool must be" in message


def test_the_longest_pool_id_is_63_characters() -> None:
    assert Offer(pool="a" * 63, description="x").pool == "a" * 63


@pytest.mark.parametrize(
    ("code", "says"),
    [("", "code is empty"), ("A" * 65, "code 65 characters"), ("TEN OFF", "' '"), ("10%OFF", "'%'")],
)
def test_a_static_code_is_1_to_64_letters_digits_underscores_or_dashes(code: str, says: str) -> None:
    [(loc, message)] = errors_of(code=code, description="10% off")
    assert loc == ("code",)
    assert says in message


def test_both_expiry_fields_are_refused_by_name() -> None:
    message = only_message(code="X", description="d", expires_after_days=7, expires_on="2026-12-01")
    assert "`expires_after_days`" in message and "`expires_on`" in message


def test_expires_after_days_is_at_least_one() -> None:
    [(loc, message)] = errors_of(code="X", description="d", expires_after_days=0)
    assert loc == ("expires_after_days",)
    assert "expires_after_days" in message


def test_on_exhausted_is_for_pools_only() -> None:
    assert "`on_exhausted`" in only_message(code="X", description="d", on_exhausted="send_without")
    assert Offer(pool="p", description="d", on_exhausted="send_without").on_exhausted == "send_without"


def test_on_exhausted_has_two_choices() -> None:
    [(loc, _)] = errors_of(pool="p", description="d", on_exhausted="retry")
    assert loc == ("on_exhausted",)


def test_an_unknown_field_is_refused_by_name() -> None:
    [(loc, _)] = errors_of(code="X", description="d", expires_in_days=3)
    assert loc == ("expires_in_days",)


def test_a_blank_description_is_refused_by_name() -> None:
    [(loc, message)] = errors_of(code="X", description="  ")
    assert loc == ("description",)
    assert "description" in message


def test_a_missing_description_is_refused_by_name() -> None:
    [(loc, _)] = errors_of(code="X")
    assert loc == ("description",)


# -- expiry and giving ----------------------------------------------------------------------------
def test_expiry_counts_days_from_when_the_code_is_given() -> None:
    assert Offer(code="X", description="d", expires_after_days=2).expires_at(NOW) == NOW + 2 * 86400


def test_expiry_on_a_day_is_the_end_of_that_day_in_utc() -> None:
    at = Offer(code="X", description="d", expires_on=date(2026, 12, 1)).expires_at(NOW)
    assert at is not None
    assert datetime.fromtimestamp(at, tz=UTC) == datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC)


def test_no_expiry() -> None:
    assert Offer(code="X", description="d").expires_at(NOW) is None


class FakePools:
    def __init__(self, code: str | None) -> None:
        self.code = code
        self.calls: list[tuple[str, str, str, float | None]] = []

    def draw(self, store: str, pool: str, recipient: str, now: float | None = None) -> str | None:
        self.calls.append((store, pool, recipient, now))
        return self.code


def test_a_static_offer_is_given_without_reading_any_pool() -> None:
    pools = FakePools("never")
    offer = Offer(code="WELCOME10", description="10% off", expires_after_days=1)
    given = give(offer, pools, "shop-1", "j|c-1|s1", NOW)  # type: ignore[arg-type]
    assert given == GivenOffer(code="WELCOME10", description="10% off", expires_at=NOW + 86400, pool=None)
    assert pools.calls == []


def test_a_pool_offer_gives_the_drawn_code() -> None:
    pools = FakePools("BF-0001")
    given = give(Offer(pool="bf", description="25% off"), pools, "shop-1", "j|c-1|s1", NOW)  # type: ignore[arg-type]
    assert given == GivenOffer(code="BF-0001", description="25% off", expires_at=None, pool="bf")
    assert pools.calls == [("shop-1", "bf", "j|c-1|s1", NOW)]


def test_an_exhausted_pool_gives_nothing() -> None:
    assert give(Offer(pool="bf", description="d"), FakePools(None), "s", "r", NOW) is None  # type: ignore[arg-type]


def test_code_problems() -> None:
    assert code_problem("WELCOME_10-a") is None
    assert code_problem("") == "empty"
    assert "65 characters" in (code_problem("x" * 65) or "")
    assert "','" in (code_problem("A,B") or "")


# -- code files -----------------------------------------------------------------------------------
def test_one_code_per_line_ignoring_blank_lines_and_spaces(tmp_path: Path) -> None:
    f = tmp_path / "codes.txt"
    f.write_text("AAA-1\n\n  BBB-2  \r\nCCC-3\n")
    assert read_codes(f) == [CodeLine(1, "AAA-1"), CodeLine(3, "BBB-2"), CodeLine(4, "CCC-3")]


def test_a_code_header_line_is_ignored(tmp_path: Path) -> None:
    f = tmp_path / "codes.txt"
    f.write_text("\ufeffCode\nAAA-1\n")  # with the BOM a spreadsheet export starts with
    assert read_codes(f) == [CodeLine(2, "AAA-1")]


def test_a_csv_with_a_code_column(tmp_path: Path) -> None:
    f = tmp_path / "codes.csv"
    f.write_text('batch,code,value\n1,AAA-1,10\n\n1,"BBB-2",10\n2\n')
    assert read_codes(f) == [CodeLine(2, "AAA-1"), CodeLine(4, "BBB-2"), CodeLine(5, "")]


def test_a_csv_without_a_code_column_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "codes.csv"
    f.write_text("batch,coupon\n1,AAA-1\n")
    with pytest.raises(CodeFileError, match="no `code` column"):
        read_codes(f)


def test_a_stray_comma_in_a_code_list_stays_in_the_code(tmp_path: Path) -> None:
    f = tmp_path / "codes.txt"
    f.write_text("AAA-1\nBBB,2\n")
    assert read_codes(f) == [CodeLine(1, "AAA-1"), CodeLine(2, "BBB,2")]


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CodeFileError, match="no such file"):
        read_codes(tmp_path / "nope.txt")


@pytest.mark.parametrize(
    ("total", "remaining", "low"),
    [(100, 50, False), (100, 49, True), (1000, 100, False), (1000, 99, True), (0, 0, True)],
)
def test_a_pool_runs_low_under_50_codes_or_a_tenth(total: int, remaining: int, low: bool) -> None:
    assert running_low(total, remaining) is low
