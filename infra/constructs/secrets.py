"""The key ring that signs unsubscribe, preferences and confirmation links, rotated on a schedule
(shared/platform/signing.py: a new current key; old keys kept for a whole link lifetime)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import Waiver, suppress
from infra.description import SIGNING_KEY_ROTATION_DAYS


class Secrets(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.signing_key = secretsmanager.Secret(
            self,
            "SigningKey",
            description="Boomerang: HMAC key for signed one-click unsubscribe links",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
            # Losing the key breaks every unsubscribe link already in customers' inboxes.
            removal_policy=RemovalPolicy.RETAIN,
        )

    def rotate_with(self, function: lambda_.IFunction) -> None:
        """Secrets Manager runs the key_rotation λ every SIGNING_KEY_ROTATION_DAYS."""
        self.signing_key.add_rotation_schedule(
            "Rotation",
            rotation_lambda=function,
            automatically_after=Duration.days(SIGNING_KEY_ROTATION_DAYS),
            rotate_immediately_on_update=False,  # links already sent are signed with the current key
        )
        if function.role is not None:
            suppress(
                function.role,
                Waiver(
                    "AwsSolutions-IAM5",
                    "CDK's rotation schedule grants secretsmanager:GetRandomPassword, which has no resource "
                    "(Resource '*' only); the key_rotation function's other secret actions are on this secret only.",
                    applies_to=["Resource::*"],
                ),
                apply_to_children=True,
            )
