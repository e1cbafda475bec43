"""The HMAC key that signs one-click unsubscribe links."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import Waiver, suppress


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
        suppress(
            self.signing_key,
            Waiver(
                "AwsSolutions-SMG4",
                "Rotating the HMAC key would invalidate unsubscribe links already sent (RFC 8058 links must "
                "keep working); rotation needs dual-key verification in the handlers first.",
            ),
        )
