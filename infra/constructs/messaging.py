"""SES: the configuration set every email is sent through, its feedback destination, and the sender identity.

Bounces and complaints go from the configuration set to the account's default EventBridge bus (the
only bus SES publishes to); the "ses-feedback" rule of infra/description.py takes them from there to
the feedback queue and function, which keep the per-store suppression list.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ses as ses
from cdk_nag import RegexAppliesTo
from constructs import Construct

from infra.constructs.nag import Waiver, suppress
from infra.description import DEFAULT_BUS, SES_FEEDBACK_EVENT_TYPES


class Messaging(Construct):
    """`sender` is a domain ("shop.example") or one address ("news@shop.example"), or None."""

    def __init__(self, scope: Construct, construct_id: str, *, sender: str | None) -> None:
        super().__init__(scope, construct_id)
        self.sender = sender
        self.configuration_set = ses.ConfigurationSet(
            self,
            "ConfigurationSet",
            reputation_metrics=True,
            sending_enabled=True,
            # Never mail an address that bounced or complained again: protects the sender reputation.
            suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
        )
        stack = Stack.of(self)
        destination = ses.CfnConfigurationSetEventDestination
        self.feedback_destination = destination(
            self,
            "FeedbackToEventBridge",
            configuration_set_name=self.configuration_set.configuration_set_name,
            event_destination=destination.EventDestinationProperty(
                name="boomerang-feedback",
                enabled=True,
                matching_event_types=list(SES_FEEDBACK_EVENT_TYPES),
                event_bridge_destination=destination.EventBridgeDestinationProperty(
                    event_bus_arn=stack.format_arn(
                        service="events",
                        resource="event-bus",
                        resource_name=DEFAULT_BUS,
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ),
            ),
        )
        self.identity: ses.EmailIdentity | None = None
        if sender:
            identity = ses.Identity.email(sender) if "@" in sender else ses.Identity.domain(sender)
            self.identity = ses.EmailIdentity(
                self, "Identity", identity=identity, configuration_set=self.configuration_set
            )

        self.configuration_set_arn = stack.format_arn(
            service="ses",
            resource="configuration-set",
            resource_name=self.configuration_set.configuration_set_name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        self.identity_arn = stack.format_arn(
            service="ses",
            resource="identity",
            resource_name=self.identity.email_identity_name if self.identity else "*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def grant_send(self, role: iam.Role) -> None:
        """SES authorises a send on both the sender identity and the configuration set used. SESv2's
        SendEmail is authorised as ses:SendEmail whatever its content (raw MIME included)."""
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail"],
                resources=[self.identity_arn, self.configuration_set_arn],
            )
        )
        if self.identity is None:
            suppress(
                role,
                Waiver(
                    "AwsSolutions-IAM5",
                    "No sender identity was given at deploy time (context senderDomain), so sends are "
                    "allowed from any identity verified in this account, still only through Boomerang's "
                    "configuration set. Deploy with -c senderDomain=... to pin it.",
                    # <AWS::Region> in an environment-agnostic synth, the region's name in a deploy
                    applies_to=[RegexAppliesTo(regex=r"/^Resource::arn:.+:ses:.+:identity\/\*$/")],
                ),
                apply_to_children=True,  # the finding is on the role's DefaultPolicy child
            )
