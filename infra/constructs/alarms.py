"""CloudWatch alarms on what needs a person, and the SNS topic operators subscribe to.

- every DLQ holding a message (a queue consumer or a bus target gave up on something);
- journey executions failed or timed out (Step Functions);
- journey steps that failed (every channel refused) or ended "unknown" (a step λ stopped while a
  provider answered: support looks at whether the customer got it; shared/services/journeys/claim.py);
- monthly reports that failed (the report λ's own metric, and its unhandled errors);
- the SES account's reputation: SES's own Reputation.BounceRate / ComplaintRate at the rates where
  Boomerang pauses marketing email (shared/domain/reputation.py), and the pause itself;
- SES's quota or a paused account parking sends (ask AWS for a higher quota).

Subscribe after deploy: `aws sns subscribe --topic-arn <AlarmTopicArn> --protocol email
--notification-endpoint ops@shop.example` (or a chat webhook / PagerDuty HTTPS endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.dashboard import NAMESPACE, PERIOD, SERVICE
from infra.constructs.nag import Waiver, suppress
from shared.domain.reputation import BOUNCE_PAUSE, COMPLAINT_PAUSE

# The journey step λ's and the report λ's own metrics (Powertools, namespace Boomerang) that each
# mean one thing went wrong for a customer or a store.
APP_FAILURES: tuple[tuple[str, str], ...] = (
    ("JourneyStep_failed", "a journey step could not send on any channel"),
    ("JourneyStep_unknown", "a step stopped while the provider answered: did the customer get it?"),
    ("Report_failed", "a monthly report failed"),
    ("MarketingEmailPaused", "marketing email is paused: the SES bounce or complaint rate nears review"),
    ("SendParked", "SES's daily quota is used up or sending is paused: sends are parked"),
)
REPORT_FUNCTION = "report"


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dlqs: Mapping[str, sqs.IQueue],
        state_machine: sfn.IStateMachine,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", display_name="Boomerang alarms", enforce_ssl=True)
        suppress(
            self.topic,
            Waiver(
                "AwsSolutions-SNS2",
                "Alarm notifications carry alarm names, metrics and thresholds, never customer data; "
                "CloudWatch cannot publish to a topic under the AWS-managed SNS key, and a customer "
                "managed key would protect nothing here",
            ),
        )
        self.alarms: list[cw.Alarm] = []
        for name, queue in sorted(dlqs.items()):
            self._alarm(
                f"Dlq{_id(name)}",
                queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                1,
                f"{name} holds messages a consumer gave up on (redrive after fixing the cause)",
            )
        self._alarm(
            "ExecutionsFailed",
            state_machine.metric_failed(period=PERIOD, statistic="Sum"),
            1,
            "journey executions failed (the step λ kept failing after Step Functions' retries)",
        )
        self._alarm(
            "ExecutionsTimedOut",
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
            1,
            "journey executions timed out",
        )
        for metric, why in APP_FAILURES:
            self._alarm(
                metric.replace("_", ""),
                # no label: a labelled metric renders as a metric-math alarm, harder to read in the console
                cw.Metric(
                    namespace=NAMESPACE,
                    metric_name=metric,
                    dimensions_map={"service": SERVICE},
                    statistic="Sum",
                    period=PERIOD,
                ),
                1,
                why,
            )
        if REPORT_FUNCTION in functions:
            self._alarm(
                "ReportErrors",
                functions[REPORT_FUNCTION].metric_errors(period=PERIOD, statistic="Sum"),
                1,
                "the report λ failed (the report queue retries it, then its DLQ holds it)",
            )
        for rate, threshold, label in (
            ("Reputation.BounceRate", BOUNCE_PAUSE, "bounce"),
            ("Reputation.ComplaintRate", COMPLAINT_PAUSE, "complaint"),
        ):
            self._alarm(
                f"Ses{label.title()}Rate",
                cw.Metric(
                    namespace="AWS/SES", metric_name=rate, statistic="Maximum", period=Duration.hours(1)
                ),
                threshold,
                f"the SES account's {label} rate nears the review threshold; clean the lists sending it",
            )

    def _alarm(self, construct_id: str, metric: cw.IMetric, threshold: float, description: str) -> None:
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)


def _id(name: str) -> str:
    return "".join(part.title() for part in name.replace("-", " ").split())
