"""The journey state machine's execution logging: errors by default, an operator's other level when
asked for (`cdk deploy -c journeyLogLevel=ALL`), and a clear error for a level Step Functions lacks.

A bare stack with only the Journeys construct: the whole stack's synth is covered by test_stack.py."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from infra.constructs.journeys import Journeys

STEP_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:step"


def _level(**kwargs: str) -> str:
    stack = Stack(App(), "T")
    step = lambda_.Function.from_function_arn(stack, "Step", STEP_ARN)
    Journeys(stack, "Journeys", step_function=step, log_retention=logs.RetentionDays.ONE_DAY, **kwargs)
    (machine,) = Template.from_stack(stack).find_resources("AWS::StepFunctions::StateMachine").values()
    config = machine["Properties"]["LoggingConfiguration"]
    assert config["IncludeExecutionData"] is False
    level: str = config["Level"]
    return level


def test_errors_only_unless_an_operator_asks_for_more() -> None:
    assert _level() == "ERROR"
    assert _level(log_level="ALL") == "ALL"


def test_a_level_step_functions_lacks_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"journeyLogLevel 'DEBUG'.*ALL, ERROR, FATAL, OFF"):
        _level(log_level="DEBUG")
