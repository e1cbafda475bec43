"""What any value in a call may be, so that whatever the API accepts can be stored and folded.

Every call (from the event API or mapped from a platform's webhook) is walked once before its
models see it: text must be valid Unicode (a JSON `\\ud800` escape decodes to a lone surrogate,
which no UTF-8 encoder takes), nesting is bounded, and every number fits DynamoDB's number type
(38 significant digits, magnitude 1E-130 to 9.99…E+125) and Decimal. Money has sane ranges on top
(api_properties.py), and identify traits are bounded per call here and per profile by the fold
(fold.apply_traits). README "Event API" states the same limits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

MAX_DEPTH = 16  # levels of objects and arrays, counting the call itself (Segment's deepest is ~5)
# DynamoDB keeps 38 digits of precision; boto3 refuses to round a longer integer (even 10**40)
MAX_INT_DIGITS = 38
_INT_LIMIT = 10**MAX_INT_DIGITS
# DynamoDB's number range (positive and negative); floats outside it have no DynamoDB form
MIN_MAGNITUDE = 1e-130
MAX_MAGNITUDE = 9.9999999999999999999999999999999999999e125
_DEC_MIN, _DEC_MAX = Decimal("1E-130"), Decimal("9.9999999999999999999999999999999999999E+125")

# Money: far above any real basket, far below where sums of them lose digits (revenue, points)
MAX_PRICE = Decimal("10000000")  # one product's unit price
MAX_QUANTITY = 100_000  # units of one product in a cart or an order
MAX_ORDER_TOTAL = Decimal("1000000000")  # an order's total / revenue, a cart's value

# Identify traits: per call, and what the fold keeps per profile (the rest of the profile — email,
# consent and its proof, orders, devices — stays well under DynamoDB's 400 KB item limit beside it)
MAX_TRAITS_PER_CALL = 100
MAX_TRAIT_BYTES = 8 * 1024  # one trait's value as JSON
MAX_PROFILE_TRAITS = 200
MAX_PROFILE_TRAITS_BYTES = 64 * 1024


class OutOfRangeInteger:
    """A JSON integer too long to be a number anywhere here, kept as its digit count only: Python
    refuses to convert past 4,300 digits, and anything past 38 could not be stored anyway."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


class NotANumber:
    """`NaN`, `Infinity` or `-Infinity`: Python's JSON parser takes them; JSON (RFC 8259) does not."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def parse_int(text: str) -> int | OutOfRangeInteger:
    """json.loads' parse_int: never converts a huge digit string (no ValueError, no CPU burnt)."""
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INT_DIGITS else OutOfRangeInteger(digits)


def parse_constant(text: str) -> NotANumber:
    return NotANumber(text)


def loads(data: bytes | str) -> Any:
    """JSON as the API reads it: huge integers and NaN/Infinity become markers that check() names;
    RecursionError (nesting beyond the parser's stack) and UnicodeDecodeError are the caller's."""
    return json.loads(data, parse_int=parse_int, parse_constant=parse_constant)


def _text_problem(text: str) -> str | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (e.g. \\ud800): text must be valid Unicode"
    return None


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) >= _INT_LIMIT:
            return f"integer has more than {MAX_INT_DIGITS} digits; at most {MAX_INT_DIGITS} digits allowed"
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return "is not a finite number; send a number between -9.99e125 and 9.99e125"
        if value and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
            return "is outside the range a number may have: 0, or a magnitude from 1e-130 to 9.99e125"
        return None
    if isinstance(value, Decimal):  # a mapped webhook's amount
        if not value.is_finite():
            return "is not a finite number"
        if value and not _DEC_MIN <= abs(value) <= _DEC_MAX:
            return "is outside the range a number may have: 0, or a magnitude from 1e-130 to 9.99e125"
        if len(value.as_tuple().digits) > MAX_INT_DIGITS:
            return f"has more than {MAX_INT_DIGITS} significant digits; at most {MAX_INT_DIGITS} allowed"
        return None
    if isinstance(value, OutOfRangeInteger):
        return f"integer has {value.digits} digits; at most {MAX_INT_DIGITS} digits allowed"
    if isinstance(value, NotANumber):
        return f"{value.text} is not a number JSON allows; send a finite number"
    return None


def check(value: Any, path: tuple[str | int, ...] = (), depth: int = 1) -> Iterator[tuple[str, str]]:
    """(field path, what is wrong) for every value that could not be stored, walking `value` (at
    nesting level `depth`); a subtree nested too deep is reported once, at its first two names."""
    if isinstance(value, str):
        problem = _text_problem(value)
    elif isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            yield (
                _field(path[:2]),
                f"is nested more than {MAX_DEPTH} levels deep (counting the call); at most {MAX_DEPTH} allowed",
            )
            return
        if isinstance(value, dict):
            for k, v in value.items():
                if _text_problem(k):
                    yield _field(path), "a key contains a lone UTF-16 surrogate: keys must be valid Unicode"
                    continue
                yield from check(v, (*path, k), depth + 1)
        else:
            for i, v in enumerate(value):
                yield from check(v, (*path, i), depth + 1)
        return
    else:
        problem = _number_problem(value)
    if problem:
        yield _field(path), problem


def _field(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "(call)"


def _clean(value: Any, depth: int = 1) -> bool:
    """check() finds nothing: the fast path every valid call takes (no paths built, no generators)."""
    kind = type(value)
    if kind is str:
        return value.isascii() or _text_problem(value) is None
    if kind is dict:
        if depth > MAX_DEPTH:
            return False
        for k, v in value.items():
            if not (k.isascii() or _text_problem(k) is None) or not _clean(v, depth + 1):
                return False
        return True
    if kind is list:
        return depth <= MAX_DEPTH and all(_clean(v, depth + 1) for v in value)
    if kind is int:
        return -_INT_LIMIT < value < _INT_LIMIT
    if kind is float:  # NaN fails every comparison, infinities the upper bound
        return value == 0 or MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE
    return value is None or kind is bool or _number_problem(value) is None


def first_problems(value: Any, limit: int = 10) -> list[tuple[str, str]]:
    """At most `limit` problems: enough to fix a call, never an answer as large as the body."""
    if _clean(value):
        return []
    out: list[tuple[str, str]] = []
    for problem in check(value):
        if problem not in out:
            out.append(problem)
        if len(out) >= limit:
            break
    return out


def trait_problems(traits: Any) -> list[tuple[str, str]]:
    """Traits one call may carry: a bounded count, each value a bounded size (the profile keeps them)."""
    if not isinstance(traits, dict):
        return []
    if len(traits) > MAX_TRAITS_PER_CALL:
        return [("traits", f"has {len(traits)} traits; at most {MAX_TRAITS_PER_CALL} per call allowed")]
    out = []
    for name, value in traits.items():
        size = json_size(value)
        if size > MAX_TRAIT_BYTES:
            out.append(
                (f"traits.{name}", f"is {size} bytes as JSON; at most {MAX_TRAIT_BYTES} bytes allowed")
            )
    return out


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON (the measure every size limit here uses)."""
    if isinstance(value, str) and value.isascii() and len(value) < 64:
        return len(value) + 2  # the usual short trait, without a dumps
    return len(
        json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8", "replace")
    )
