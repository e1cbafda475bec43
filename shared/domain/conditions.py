"""The condition language of journey and segment files: a value, a list (any of) or operators.

`where: {total: {gte: 50}}` on a trigger, `traits: {country: [PL, DE]}` on a journey's entry or a
segment: one matcher, so a condition means the same wherever a marketer writes it. Strings compare
case-insensitively and a list-valued field matches when any of its items does.
"""

from __future__ import annotations

from typing import Any

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists")


def check_where(where: dict[str, Any]) -> dict[str, Any]:
    """The conditions as given, or ValueError naming an unknown operator (checked when a file loads)."""
    for prop, test in where.items():
        if isinstance(test, dict):
            unknown = sorted(set(test) - set(OPERATORS))
            if unknown:
                raise ValueError(
                    f"{prop}: unknown operator {', '.join(unknown)} (allowed: {', '.join(OPERATORS)})"
                )
            if "in" in test and not isinstance(test["in"], list):
                raise ValueError(f"{prop}: 'in' takes a list")
    return where


def value_matches(actual: Any, test: Any) -> bool:
    """Whether a field's value passes one condition."""
    if isinstance(test, dict):
        return all(_operator(actual, op, want) for op, want in test.items())
    if isinstance(test, list):
        return any(value_matches(actual, t) for t in test)
    if isinstance(actual, str) and isinstance(test, str):
        return actual.strip().lower() == test.strip().lower()
    if isinstance(actual, list):
        return any(value_matches(a, test) for a in actual)
    return bool(actual == test) if actual is not None else test is None


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _operator(actual: Any, op: str, want: Any) -> bool:
    if op == "exists":
        return (actual is not None) == bool(want)
    if op == "eq":
        return value_matches(actual, want)
    if op == "ne":
        return not value_matches(actual, want)
    if op == "in":
        return any(value_matches(actual, w) for w in want)
    a, w = _num(actual), _num(want)
    if a is None or w is None:
        return False
    return {"gt": a > w, "gte": a >= w, "lt": a < w, "lte": a <= w}[op]


def lookup(fields: dict[str, Any], path: str) -> Any:
    """A dotted path ("address.country") into nested properties; None where it leads nowhere."""
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
