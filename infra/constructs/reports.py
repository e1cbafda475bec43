"""Where the template validator tells marketers that an upload was rejected: one SNS topic.

Subscribe the marketing team's address after deploy (`aws sns subscribe --protocol email
--topic-arn <ReportsTopicArn> --notification-endpoint team@shop.example`); the full report is also
written next to the file in the bucket (reports/<key>.json).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


class Reports(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Boomerang template reports",
            enforce_ssl=True,
            # AWS-managed SNS key: encrypted at rest, no key policy to keep in step with publishers
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
        )

    def grant_publish(self, role: iam.Role) -> None:
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
