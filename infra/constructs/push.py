"""The push application (AWS End User Messaging Push, still the Pinpoint API) that push sends go through.

Only the application is created here: its channels need the store owner's own credentials (an
APNs key or certificate for iOS, an FCM service-account key for Android), which must never live in
this repository or in a CloudFormation template. The operator enables them after the first deploy,
e.g. `aws pinpoint update-apns-channel --application-id <PushAppId> ...` and
`aws pinpoint update-gcm-channel --application-id <PushAppId> ...`. Until then a push send fails
permanently and the journey records it as such.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_pinpoint as pinpoint
from constructs import Construct

from infra.description import APP_NAME


class Push(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # L1 only: there is no L2 construct for Pinpoint applications.
        self.app = pinpoint.CfnApp(self, "App", name=APP_NAME)
        # arn:aws:mobiletargeting:<region>:<account>:apps/<app id>/messages is the resource
        # SendMessages is authorised on: the send API only, no endpoints, segments or campaigns.
        self.messages_arn = Stack.of(self).format_arn(
            service="mobiletargeting",
            resource="apps",
            resource_name=f"{self.app.ref}/messages",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    @property
    def app_id(self) -> str:
        return self.app.ref  # Ref of AWS::Pinpoint::App is the application id

    def grant_send(self, role: iam.Role) -> None:
        role.add_to_policy(
            iam.PolicyStatement(actions=["mobiletargeting:SendMessages"], resources=[self.messages_arn])
        )
