"""Ships the repo's default templates (infra/templates/) into the templates bucket."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.constructs.nag import Waiver, suppress


class Templates(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, source_dir: Path, bucket: s3.IBucket, prefix: str
    ) -> None:
        super().__init__(scope, construct_id)
        # BucketDeployment zips the folder as a plain file asset and copies it with a CDK-provided
        # Lambda (AWS CLI layer): no Docker involved.
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deployment",
            sources=[s3deploy.Source.asset(str(source_dir))],
            destination_bucket=bucket,
            destination_key_prefix=prefix,
            # Marketers add per-store templates under the same prefix: never delete what the repo
            # does not ship.
            prune=False,
            retain_on_delete=True,
            memory_limit=256,
        )
        self._suppress_provider()

    def _suppress_provider(self) -> None:
        """The copy function is a stack-level singleton CDK creates; suppress on it specifically."""
        reason_owner = "CDK's BucketDeployment provider (runs at deploy time only, not on any request path)"
        suppress(
            self.deployment.handler_role,
            Waiver(
                "AwsSolutions-IAM4",
                f"{reason_owner} uses AWSLambdaBasicExecutionRole for its own logs.",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                ],
            ),
            Waiver(
                "AwsSolutions-IAM5",
                f"{reason_owner} copies every object of the asset into the templates prefix; CDK scopes its "
                "S3 actions to the asset and destination buckets with object wildcards.",
            ),
            apply_to_children=True,  # the wildcards are on the role's DefaultPolicy child
        )
        stack = Stack.of(self)
        for child in stack.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                suppress(
                    child,
                    Waiver(
                        "AwsSolutions-L1",
                        f"{reason_owner}: CDK pins its runtime; it upgrades with aws-cdk-lib.",
                    ),
                    apply_to_children=True,  # the CfnFunction is the singleton's child
                )
