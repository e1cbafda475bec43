"""Birthdays as customers and stores write them: a full date, or just a month and day.

A birthday journey only needs the month-day, and many customers give no year; both forms are
accepted at the edge and the profile's birthday index is keyed by the month-day.
"""

from __future__ import annotations

import re
from datetime import date

BIRTHDAY_FORMAT = "must be a date like 1990-04-23, or a month and day like 04-23 (or --04-23)"


def parse_birthday(value: str) -> str:
    """A birthday as "YYYY-MM-DD" or "MM-DD" (vCard's "--MM-DD" becomes "MM-DD"); ValueError otherwise.

    A month-day is checked against a leap year, so "02-29" is a birthday.
    """
    v = value.strip()
    m = re.fullmatch(r"(?:(\d{4})-|--)?(\d{2})-(\d{2})", v)
    if not m:
        raise ValueError(BIRTHDAY_FORMAT)
    year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
    try:
        date(int(year) if year else 2000, month, day)
    except ValueError as exc:
        raise ValueError(BIRTHDAY_FORMAT) from exc
    if year and int(year) < 1900:
        raise ValueError(BIRTHDAY_FORMAT)
    return f"{year}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


def birthday_month_day(birthday: str | None) -> str | None:
    """The month-day ("MM-DD") of a stored birthday, or None."""
    return birthday[-5:] if birthday else None
