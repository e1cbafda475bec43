"""The generic journey state machine (Standard), defined by STATE_MACHINE.definition()."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.nag import Waiver, suppress
from infra.description import STATE_MACHINE

# The ASL comes from the shared description with this placeholder for the step function's ARN;
# CloudFormation substitutes it (DefinitionSubstitutions), so the JSON stays byte-for-byte the
# emulator's.
STEP_FUNCTION_ARN_KEY = "StepFunctionArn"
STEP_FUNCTION_ARN_PLACEHOLDER = "${" + STEP_FUNCTION_ARN_KEY + "}"
LOG_LEVELS = {
    "ALL": sfn.LogLevel.ALL,
    "ERROR": sfn.LogLevel.ERROR,
    "FATAL": sfn.LogLevel.FATAL,
    "OFF": sfn.LogLevel.OFF,
}


class Journeys(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step_function: lambda_.IFunction,
        log_retention: logs.RetentionDays,
        log_level: str = STATE_MACHINE.log_level,
    ) -> None:
        super().__init__(scope, construct_id)
        if log_level not in LOG_LEVELS:
            raise ValueError(
                f"journeyLogLevel {log_level!r} is not a Step Functions log level: {', '.join(LOG_LEVELS)}"
            )
        # /aws/vendedlogs/ keeps Step Functions' log delivery off the account's 5 KB CloudWatch Logs
        # resource policy.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-{STATE_MACHINE.id}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Boomerang journey state machine: invokes only the journey step function",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[step_function.function_arn])
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="Boomerang journey instance (one execution per journey instance)",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(
                STATE_MACHINE.definition_json(STEP_FUNCTION_ARN_PLACEHOLDER)
            ),
            definition_substitutions={STEP_FUNCTION_ARN_KEY: step_function.function_arn},
            role=self.role,
            # errors only by default (STATE_MACHINE.log_level: ALL cost as much as the step λ), and
            # never execution data: journey payloads carry customer ids and emails.
            logs=sfn.LogOptions(
                destination=self.log_group, level=LOG_LEVELS[log_level], include_execution_data=False
            ),
            tracing_enabled=True,
        )
        if log_level != "ALL":
            suppress(
                self.state_machine,
                Waiver(
                    "AwsSolutions-SF1",
                    "Execution logging is on at ERROR (failures only) by default: ALL writes ~15 records an "
                    "execution, costing about as much as the step λ (README 'Cost'); every execution's "
                    "history stays in Step Functions for 90 days, and an operator deploys with "
                    "-c journeyLogLevel=ALL to follow executions in CloudWatch Logs.",
                ),
            )
        suppress(
            self.role,
            Waiver(
                "AwsSolutions-IAM5",
                "Step Functions log delivery (logs:*LogDelivery*, DescribeLogGroups, resource policies) and "
                "X-Ray (PutTraceSegments, GetSamplingRules, ...) support no resource-level permissions; "
                "CDK adds exactly the documented actions on '*'.",
                applies_to=["Resource::*"],
            ),
            apply_to_children=True,  # the finding is on the role's DefaultPolicy child
        )
