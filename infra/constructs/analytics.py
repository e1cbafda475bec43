"""The analytics bucket: table exports (exports/, short-lived) and the reports computed from them
(metrics/<store>/), written by the report λ and fetched with `boomerang report --latest`."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.storage import lifecycle_rules
from infra.description import ANALYTICS_LIFECYCLE


class Analytics(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        # Not versioned: every object here is recomputable (an export from the table, a report from an
        # export), and versions would keep deleted exports' customer data around.
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,  # DynamoDB exports need no KMS grant with SSE-S3
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="analytics-bucket/",
            lifecycle_rules=lifecycle_rules(ANALYTICS_LIFECYCLE),  # exports/ expire; reports stay
            removal_policy=RemovalPolicy.RETAIN,
        )
