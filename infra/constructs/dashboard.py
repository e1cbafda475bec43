"""The operational CloudWatch dashboard: events in, messages out per channel, failures, DLQ depth and
journey executions.

Metric names are the ones the handlers emit through Powertools Metrics (namespace Boomerang,
dimension service=boomerang): EventsAccepted (ingest), MessagesSent_<channel> and
JourneyStep_failed and OfferPoolExhausted (journey step), Report_failed (report λ).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import get_args

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.description import APP_NAME
from shared.domain.journeys import Channel

NAMESPACE = "Boomerang"  # POWERTOOLS_METRICS_NAMESPACE (infra/constructs/lambdas.py)
SERVICE = APP_NAME  # POWERTOOLS_SERVICE_NAME: Powertools adds it as the `service` dimension
PERIOD = Duration.minutes(5)
EVENTS_IN = ("EventsAccepted", "RequestsRejected", "PublishFailures")  # ingest λ
CHANNELS: tuple[str, ...] = get_args(Channel)
MESSAGES_OUT = tuple(f"MessagesSent_{c}" for c in CHANNELS)  # journey step λ, one per channel
STEP_FAILURES = ("JourneyStep_failed", "OfferPoolExhausted", "Report_failed")  # journey step λ, report λ


def app_metric(name: str, label: str | None = None) -> cw.Metric:
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE},
        statistic="Sum",
        period=PERIOD,
        label=label or name,
    )


class Dashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        dlqs: Mapping[str, sqs.IQueue],
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(24))
        width = 12
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Events in (ingest)",
                left=[app_metric(name) for name in EVENTS_IN],
                width=width,
            ),
            cw.GraphWidget(
                title="Messages out per channel",
                left=[app_metric(f"MessagesSent_{c}", c) for c in CHANNELS],
                width=width,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Failures: Lambda errors per function",
                left=[
                    fn.metric_errors(period=PERIOD, statistic="Sum", label=name)
                    for name, fn in sorted(functions.items())
                ],
                width=width,
            ),
            cw.GraphWidget(
                title="Failures: journey steps, reports and throttles",
                left=[app_metric(name) for name in STEP_FAILURES],
                right=[
                    fn.metric_throttles(period=PERIOD, statistic="Sum", label=f"{name} throttles")
                    for name, fn in sorted(functions.items())
                ],
                width=width,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="DLQ depth (messages visible)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label=name
                    )
                    for name, queue in sorted(dlqs.items())
                ],
                width=width,
            ),
            cw.GraphWidget(
                title="Journey executions",
                left=[
                    state_machine.metric_started(period=PERIOD, statistic="Sum", label="started"),
                    state_machine.metric_succeeded(period=PERIOD, statistic="Sum", label="succeeded"),
                    state_machine.metric_failed(period=PERIOD, statistic="Sum", label="failed"),
                    state_machine.metric_timed_out(period=PERIOD, statistic="Sum", label="timed out"),
                    state_machine.metric_aborted(period=PERIOD, statistic="Sum", label="aborted"),
                ],
                width=width,
            ),
        )
