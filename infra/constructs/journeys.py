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


class Journeys(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step_function: lambda_.IFunction,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
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
            # ALL levels, but no execution data: journey payloads carry customer ids and emails.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
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
