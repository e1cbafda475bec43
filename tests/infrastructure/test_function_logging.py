"""The functions' log levels as Lambda filters them: a level Lambda or Python lacks is refused by name
at synth time, not deployed. (The synthesised LoggingConfig itself is checked in test_stack.py.)"""

from __future__ import annotations

import pytest

from infra.constructs.lambdas import logging_levels


def test_python_level_names_map_to_lambdas() -> None:
    assert [
        logging_levels(x, "WARN")[0].value for x in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    ] == [
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR",
        "FATAL",
    ]
    assert logging_levels("INFO", "INFO")[1].value == "INFO"


def test_a_level_lambda_lacks_is_refused_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"logLevel 'VERBOSE' is not a Python log level: DEBUG, INFO"):
        logging_levels("VERBOSE", "WARN")
    with pytest.raises(ValueError, match=r"lambdaSystemLogLevel 'ERROR' .*: DEBUG, INFO, WARN"):
        logging_levels("INFO", "ERROR")
