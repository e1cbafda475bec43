"""The single DynamoDB table and the templates bucket (with its access-log bucket)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.nag import Waiver, suppress
from infra.description import ACCESS_LOGS_LIFECYCLE, TABLE, TEMPLATES_LIFECYCLE, Expiry
from shared.platform.indexes import INDEXES

# Everything the functions read lives under this prefix (DEFAULT_TEMPLATE_PREFIX is inside it).
TEMPLATES_PREFIX = "templates/"


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        # Profiles, consent and send records are the store's customer data: never deleted by a stack
        # update or `cdk destroy`, restorable to any second of the last 35 days.
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=TABLE.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=TABLE.sort_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TABLE.ttl_attribute,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in INDEXES:  # sparse: only items carrying the partition attribute are indexed
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=index.partition, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=index.sort, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.INCLUDE,
                non_key_attributes=list(index.include),
            )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the log delivery service supports SSE-S3 only
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=lifecycle_rules(ACCESS_LOGS_LIFECYCLE),
            removal_policy=RemovalPolicy.RETAIN,
        )
        suppress(
            self.access_logs_bucket,
            Waiver("AwsSolutions-S1", "This is the access-log bucket; logging it into itself would loop."),
        )

        # Marketers edit templates here: versioning makes every edit recoverable.
        self.templates_bucket = s3.Bucket(
            self,
            "Templates",
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="templates-bucket/",
            lifecycle_rules=lifecycle_rules(TEMPLATES_LIFECYCLE),
            removal_policy=RemovalPolicy.RETAIN,
            # every upload goes to the default bus as "Object Created": the validator checks it
            event_bridge_enabled=True,
        )
        self._suppress_notifications_handler()

    def _suppress_notifications_handler(self) -> None:
        """CDK sets the bucket's EventBridge notification with a stack-level singleton function."""
        stack = Stack.of(self)
        found = [c for c in stack.node.children if c.node.id.startswith("BucketNotificationsHandler")]
        if not found:
            raise RuntimeError("CDK's BucketNotificationsHandler not found: check the cdk-nag waiver below")
        for child in found:
            suppress(
                child,
                Waiver(
                    "AwsSolutions-IAM4",
                    "CDK's bucket-notifications provider (runs at deploy time only) uses "
                    "AWSLambdaBasicExecutionRole for its own logs.",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                    ],
                ),
                Waiver(
                    "AwsSolutions-IAM5",
                    "CDK's bucket-notifications provider needs s3:PutBucketNotification on the buckets it "
                    "configures; CDK writes that policy.",
                ),
                apply_to_children=True,
            )


def lifecycle_rules(expiries: tuple[Expiry, ...]) -> list[s3.LifecycleRule]:
    """The description's lifecycle rules as CDK states them (the emulator applies the same ones)."""

    def days(n: int | None) -> Duration | None:
        return None if n is None else Duration.days(n)

    return [
        s3.LifecycleRule(
            id=e.id,
            prefix=e.prefix or None,
            expiration=days(e.days),
            noncurrent_version_expiration=days(e.noncurrent_days),
            abort_incomplete_multipart_upload_after=days(e.abort_multipart_days),
        )
        for e in expiries
    ]
