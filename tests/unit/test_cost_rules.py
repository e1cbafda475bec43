"""The billing rules the cost bench applies (tests/cost_rules.py), held to AWS's documented rules."""

from __future__ import annotations

import pytest

from tests.cost_rules import (
    Index,
    execution_log_bytes,
    index_write_units,
    item_size,
    logged_at,
    read_units,
    transitions,
    value_size,
    write_units,
)


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    # "pk" (2) + "abc" (3); "n" (1) + 12345 (3 significant-digit pairs -> 3 + 1 = 4); "ok" (2) + bool (1)
    item = {"pk": {"S": "abc"}, "n": {"N": "12345"}, "ok": {"BOOL": True}}
    assert item_size(item) == 2 + 3 + 1 + 4 + 2 + 1
    assert value_size({"S": "żółw"}) == len("żółw".encode())  # UTF-8 bytes, not characters
    assert value_size({"N": "100"}) == 2  # trailing zeros are not significant
    assert value_size({"N": "-0.5"}) == 2
    assert value_size({"B": b"\x00\x01\x02"}) == 3
    # containers: 3 bytes, plus 1 per element and the elements (a map's keys count too)
    assert value_size({"L": [{"S": "ab"}, {"NULL": True}]}) == 3 + (1 + 2) + (1 + 1)
    assert value_size({"M": {"k": {"S": "v"}}}) == 3 + 1 + 1 + 1
    assert item_size(None) == 0


def test_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB type 'X'"):
        value_size({"X": 1})


def test_writes_bill_the_larger_item_in_1_kb_units_and_double_in_transactions() -> None:
    assert write_units(0, 10) == 1  # at least one unit
    assert write_units(4700, 300) == 5  # an update is billed on the larger of before and after
    assert write_units(1024, 1024) == 1
    assert write_units(1025, 0) == 2
    assert write_units(4700, 4800, transactional=True) == 10


def test_reads_bill_4_kb_units_halved_when_eventually_consistent() -> None:
    assert read_units(100) == 1
    assert read_units(4097) == 2
    assert read_units(4097, consistent=False) == 1
    assert read_units(100, consistent=False) == 0.5
    assert read_units(100, transactional=True) == 2


INDEX = Index("by-sku", keys=("bis", "pk"), include=("customer_id",))
KEYS = ("pk", "sk")


def test_a_write_outside_a_sparse_index_costs_it_nothing() -> None:
    before = {"pk": {"S": "C#1"}, "sk": {"S": "P"}, "name": {"S": "a"}}
    after = {**before, "name": {"S": "b"}}
    assert index_write_units(before, after, [INDEX], KEYS) == 0


def test_an_index_entry_put_changed_or_moved() -> None:
    base = {"pk": {"S": "C#1"}, "sk": {"S": "P"}, "customer_id": {"S": "u:1"}}
    inside = {**base, "bis": {"S": "sku-1"}}
    assert index_write_units(base, inside, [INDEX], KEYS) == 1  # enters the index
    assert index_write_units(inside, base, [INDEX], KEYS) == 1  # leaves it
    # a change of an attribute the index does not copy: nothing
    assert index_write_units(inside, {**inside, "name": {"S": "x"}}, [INDEX], KEYS) == 0
    # a projected attribute changed: one write; the index key changed: delete + put
    assert index_write_units(inside, {**inside, "customer_id": {"S": "u:2"}}, [INDEX], KEYS) == 1
    assert index_write_units(inside, {**inside, "bis": {"S": "sku-2"}}, [INDEX], KEYS) == 2


HISTORY = [
    {"id": 1, "type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{secret}"}},
    {"id": 2, "type": "WaitStateEntered", "stateEnteredEventDetails": {"name": "Wait", "input": "{}"}},
    {"id": 3, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Step"}},
    {"id": 4, "type": "LambdaFunctionFailed", "lambdaFunctionFailedEventDetails": {"error": "E"}},
    {"id": 5, "type": "ChoiceStateEntered", "stateEnteredEventDetails": {"name": "Decide"}},
    {"id": 6, "type": "SucceedStateEntered", "stateEnteredEventDetails": {"name": "Done"}},
    {"id": 7, "type": "ExecutionSucceeded", "executionSucceededEventDetails": {"output": "{}"}},
]


def test_transitions_are_the_states_entered() -> None:
    assert transitions(HISTORY) == 4


def test_execution_logs_by_level_never_carry_execution_data() -> None:
    arn = "arn:aws:states:us-east-1:1:execution:m:e"
    every = execution_log_bytes(HISTORY, "ALL", arn)
    errors = execution_log_bytes(HISTORY, "ERROR", arn)
    assert every > errors > 0
    assert execution_log_bytes(HISTORY, "FATAL", arn) == 0  # it succeeded
    assert execution_log_bytes(HISTORY, "OFF", arn) == 0
    assert logged_at("ExecutionFailed", "FATAL") and not logged_at("TaskStateEntered", "ERROR")
    with pytest.raises(ValueError, match="ALL, ERROR, FATAL or OFF"):
        logged_at("ExecutionStarted", "DEBUG")


def test_execution_log_records_leave_input_and_output_out() -> None:
    one = [{"id": 1, "type": "ExecutionStarted", "executionStartedEventDetails": {"input": "x" * 5000}}]
    assert execution_log_bytes(one, "ALL", "arn") < 500
