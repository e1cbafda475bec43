"""Web push's one secret: the VAPID root every store's key pair is derived from (shared/platform/vapid.py).

Secrets Manager generates it at deploy (64 random characters), so nothing but AWS ever sees it and no
custom resource or generator function is needed; stores added later get their key pair from it on
first use. It is RETAINed and never rotated: every browser subscription is bound to its store's
public key, and a new root would silently orphan them all (browsers must subscribe again).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import Waiver, suppress


class WebPush(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.vapid_root = secretsmanager.Secret(
            self,
            "VapidRoot",
            description="Boomerang: root of every store's web push (VAPID) key pair; never rotate",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        suppress(
            self.vapid_root,
            Waiver(
                "AwsSolutions-SMG4",
                "A VAPID key identifies the sender to browsers' push services and every subscription is "
                "bound to it: rotating the root would orphan all of them (README 'Web push'). It is read "
                "only by the ingest and journey-step functions, with GetSecretValue on this secret alone.",
            ),
        )

    def grant_read(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[self.vapid_root.secret_arn]
            )
        )
