"""`boomerang report`'s period and flag checks, without AWS."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from infra.report_cli import UsageError, period


def ts(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def test_default_period_is_a_year_of_months_up_to_tomorrow() -> None:
    assert period(None, None, date(2026, 11, 23)) == (ts("2025-11-01"), ts("2026-11-24"))


def test_default_end_follows_data_newer_than_today() -> None:
    # the local emulator's clock runs ahead: a record on 2026-12-03 moves the end to 2026-12-04
    latest = ts("2026-12-03") + 3600
    assert period(None, None, date(2026, 11, 23), latest) == (ts("2025-12-01"), ts("2026-12-04"))
    # older data changes nothing, and an explicit --to always wins
    assert period(None, None, date(2026, 11, 23), ts("2026-01-01"))[1] == ts("2026-11-24")
    assert period(None, "2026-06-01", date(2026, 11, 23), latest)[1] == ts("2026-06-01")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-02-30", None, "--from must be a date YYYY-MM-DD, got '2026-02-30'"),
        (None, "tomorrow", "--to must be a date YYYY-MM-DD, got 'tomorrow'"),
        ("2026-05-01", "2026-05-01", "--from (2026-05-01) must be before --to (2026-05-01)"),
    ],
)
def test_bad_dates_name_the_flag(start: str | None, end: str | None, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        period(start, end, date(2026, 11, 23))
    assert str(exc.value) == message
