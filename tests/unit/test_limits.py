"""What any value in a call may be (shared/domain/limits.py) and the profile's trait budget (fold)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import limits
from shared.domain.fold import apply_traits, merge_profiles
from shared.domain.profiles import Profile


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ('{"a": "\\ud800"}', "a", "surrogate"),
        ('{"a": [1, {"b": "x\\udfffy"}]}', "a.1.b", "surrogate"),
        ('{"a": ' + "9" * 4301 + "}", "a", "4301 digits"),
        ('{"a": -' + "1" * 39 + "}", "a", "39 digits"),
        ('{"a": NaN}', "a", "nan"),
        ('{"a": -Infinity}', "a", "infinity"),
        ('{"a": 1e309}', "a", "finite"),
        ('{"a": 1e-131}', "a", "range"),
        ('{"a": {"b": ' + "[" * 20 + "]" * 20 + "}}", "a.b", "16 levels"),
    ],
)
def test_each_unstorable_value_is_named_with_its_path(text: str, field: str, words: str) -> None:
    [(found_field, message)] = limits.first_problems(limits.loads(text))

    assert found_field == field
    assert words in message.lower()


def test_values_at_the_edges_pass() -> None:
    edge = {
        "i": 10**38 - 1,
        "n": -(10**38) + 1,
        "lo": 1e-130,
        "hi": 9.99e125,
        "z": 0.0,
        "t": "😀é",
        "b": True,
    }
    nested: Any = 1
    for _ in range(limits.MAX_DEPTH - 1):
        nested = [nested]
    assert limits.first_problems({**edge, "deep": nested[0]}) == []
    assert limits.first_problems(Decimal("12.50")) == []
    assert limits.first_problems(Decimal("1E+200")) != []


def test_the_parser_never_converts_a_giant_integer() -> None:
    found = limits.loads("[" + "7" * 100_000 + "]")[0]
    assert isinstance(found, limits.OutOfRangeInteger) and found.digits == 100_000


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats()
    | st.text(st.characters(min_codepoint=0, max_codepoint=0xFFFF), max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(JSONISH)
def test_the_fast_path_agrees_with_the_full_walk(value: Any) -> None:
    # _clean() is what every valid call takes; check() is what names the field: they never disagree
    assert limits._clean(value) == (not list(limits.check(value)))
    if limits._clean(value):  # and what passes can be written as UTF-8 JSON
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


def test_a_profile_keeps_traits_within_its_budget_and_the_rest_of_the_call() -> None:
    profile = Profile(store_id="s", customer_id="u:1", traits={"plan": "gold"})
    big = "x" * (limits.MAX_TRAIT_BYTES - 20)
    names = [f"n{i}" for i in range(12)]

    refused = apply_traits(profile, {"email": "a@example.com", **dict.fromkeys(names, big)}, 10.0)

    assert profile.email == "a@example.com" and profile.traits["plan"] == "gold"
    assert refused and refused == names[-len(refused) :]
    assert limits.json_size(profile.traits) <= limits.MAX_PROFILE_TRAITS_BYTES
    assert all(f"traits.{n}" not in profile.updated for n in refused)  # a smaller value may come later
    # replacing a kept trait with a smaller value always fits; clearing frees room
    assert apply_traits(profile, {names[0]: "small"}, 11.0) == []
    assert apply_traits(profile, {refused[0]: "fits now"}, 12.0) == []


def test_too_many_trait_names_are_refused_past_the_count() -> None:
    profile = Profile(store_id="s", customer_id="u:1")
    refused = apply_traits(profile, {f"t{i}": i for i in range(limits.MAX_PROFILE_TRAITS + 5)}, 1.0)
    assert len(profile.traits) == limits.MAX_PROFILE_TRAITS and len(refused) == 5


def test_merging_a_visitor_keeps_the_customers_budget() -> None:
    big = "y" * (limits.MAX_TRAIT_BYTES - 20)
    customer = Profile(store_id="s", customer_id="u:1")
    apply_traits(customer, {f"c{i}": big for i in range(7)}, 1.0)
    visitor = Profile(store_id="s", customer_id="a:1")
    apply_traits(visitor, {f"v{i}": big for i in range(7)}, 2.0)

    merge_profiles(customer, visitor)

    assert limits.json_size(customer.traits) <= limits.MAX_PROFILE_TRAITS_BYTES
    assert all(f"c{i}" in customer.traits for i in range(7))
