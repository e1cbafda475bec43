"""BoomerangStack: every resource of infra/description.py, one construct per concern."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.alarms import Alarms
from infra.constructs.analytics import Analytics
from infra.constructs.api import Api
from infra.constructs.api_http import HttpStorefrontApi
from infra.constructs.bus import Bus
from infra.constructs.dashboard import Dashboard
from infra.constructs.journeys import Journeys
from infra.constructs.lambdas import GrantTargets, LambdaFunctions
from infra.constructs.messaging import Messaging
from infra.constructs.push import Push
from infra.constructs.reports import Reports
from infra.constructs.secrets import Secrets
from infra.constructs.storage import TEMPLATES_PREFIX, Storage
from infra.constructs.templates import Templates
from infra.constructs.webpush import WebPush
from infra.description import (
    API,
    DEFAULT_JOURNEY_PREFIX,
    DEFAULT_SEGMENT_PREFIX,
    JOURNEYS_DIR,
    QUEUES,
    SEGMENTS_DIR,
    STATE_MACHINE,
    TEMPLATES_DIR,
)
from shared.platform import settings as env

REPO_ROOT = Path(__file__).resolve().parent.parent

# Context keys (cdk.json or `cdk deploy -c key=value`); every one has a default.
CONTEXT_SENDER = "senderDomain"  # SES identity: "shop.example" or "news@shop.example"; none by default
CONTEXT_LOG_LEVEL = "logLevel"  # LOG_LEVEL of every function
DEFAULT_LOG_LEVEL = "INFO"
# Lambda's own START/END/REPORT lines (~330 B an invocation, about a third of an event's log bytes)
# are INFO-level system logs: written only when an operator asks (`-c lambdaSystemLogLevel=INFO`).
# Duration, errors and throttles are CloudWatch metrics already; REPORT adds max memory used.
CONTEXT_SYSTEM_LOG_LEVEL = "lambdaSystemLogLevel"
DEFAULT_SYSTEM_LOG_LEVEL = "WARN"
CONTEXT_JOURNEY_LOG_LEVEL = (
    "journeyLogLevel"  # the state machine's execution logging (STATE_MACHINE.log_level)
)
CONTEXT_API = "api"  # which API Gateway serves the storefront routes: http (default) or rest (API.kinds)
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def api_kind(value: object) -> str:
    """The `-c api=...` choice, checked: API.default_kind when unset, a clear error when unknown."""
    kind = str(value or API.default_kind).strip().lower()
    if kind not in API.kinds:
        raise ValueError(
            f"api {value!r} is not an API Gateway kind Boomerang deploys: {', '.join(API.kinds)} "
            "(http: HTTP API, the default; rest: REST API, for AWS WAF on the endpoint)"
        )
    return kind


class BoomerangStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, assets: Mapping[str, Path], **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        sender = self.node.try_get_context(CONTEXT_SENDER) or None
        log_level = str(self.node.try_get_context(CONTEXT_LOG_LEVEL) or DEFAULT_LOG_LEVEL).upper()
        system_log_level = str(
            self.node.try_get_context(CONTEXT_SYSTEM_LOG_LEVEL) or DEFAULT_SYSTEM_LOG_LEVEL
        ).upper()
        storefront = HttpStorefrontApi if api_kind(self.node.try_get_context(CONTEXT_API)) == "http" else Api

        storage = Storage(self, "Storage")
        secrets = Secrets(self, "Secrets")
        messaging = Messaging(self, "Messaging", sender=sender)
        push = Push(self, "Push")  # channel credentials (APNs/FCM) are the operator's, set after deploy
        webpush = WebPush(self, "WebPush")  # the VAPID root each store's browser push keys come from
        bus = Bus(self, "EventBus")
        reports = Reports(self, "TemplateReports")  # validator -> marketers: rejected uploads
        analytics = Analytics(self, "Analytics", access_logs=storage.access_logs_bucket)
        functions = LambdaFunctions(
            self,
            "Functions",
            assets=assets,
            log_level=log_level,
            system_log_level=system_log_level,
            log_retention=LOG_RETENTION,
        )
        api = storefront(self, "Api", handler=functions.functions[API.function], log_retention=LOG_RETENTION)
        journeys = Journeys(
            self,
            "Journeys",
            step_function=functions.functions[STATE_MACHINE.step_function],
            log_retention=LOG_RETENTION,
            log_level=str(
                self.node.try_get_context(CONTEXT_JOURNEY_LOG_LEVEL) or STATE_MACHINE.log_level
            ).upper(),
        )

        # Every environment variable a FunctionSpec may name, and the resource behind it.
        functions.configure(
            environment={
                env.TABLE_NAME: storage.table.table_name,
                env.BUS_NAME: bus.bus.event_bus_name,
                env.TEMPLATES_BUCKET: storage.templates_bucket.bucket_name,
                env.STATE_MACHINE_ARN: journeys.state_machine.state_machine_arn,
                env.EMAIL_CONFIGURATION_SET: messaging.configuration_set.configuration_set_name,
                env.UNSUBSCRIBE_BASE_URL: api.url,  # https://<id>.execute-api.<region>.amazonaws.com/ (REST: .../prod/)
                env.SIGNING_SECRET_ARN: secrets.signing_key.secret_arn,
                env.PUSH_APP_ID: push.app_id,
                env.VAPID_SECRET_ARN: webpush.vapid_root.secret_arn,
                env.JOURNEY_QUEUE_URL: bus.queues["journey"].queue_url,
                env.REPORTS_TOPIC_ARN: reports.topic.topic_arn,
                env.TABLE_ARN: storage.table.table_arn,
                env.ANALYTICS_BUCKET: analytics.bucket.bucket_name,
                env.REPORT_QUEUE_URL: bus.queues["report"].queue_url,
                env.PARTNERS_QUEUE_URL: bus.queues["partners"].queue_url,
                env.PARTNERS_DLQ_URL: bus.dlqs["partners"].queue_url,
            },
            targets=GrantTargets(
                table=storage.table,
                bus=bus.bus,
                state_machine=journeys.state_machine,
                templates_bucket=storage.templates_bucket,
                templates_prefix=TEMPLATES_PREFIX,
                messaging=messaging,
                signing_secret=secrets.signing_key,
                push=push,
                webpush=webpush,
                journey_queue=bus.queues["journey"],
                reports=reports,
                analytics_bucket=analytics.bucket,
                report_queue=bus.queues["report"],
                partners_queue=bus.queues["partners"],
                partners_dlq=bus.dlqs["partners"],
            ),
        )
        for queue in QUEUES:
            bus.connect(queue, functions.functions[queue.consumer])
        secrets.rotate_with(functions.functions["key_rotation"])  # the link-signing key ring

        Templates(
            self,
            "Templates",
            source_dir=REPO_ROOT / TEMPLATES_DIR,
            bucket=storage.templates_bucket,
            prefix=TEMPLATES_PREFIX,
        )
        Templates(  # the default journey files, which stores override under journeys/<store>/
            self,
            "JourneyFiles",
            source_dir=REPO_ROOT / JOURNEYS_DIR,
            bucket=storage.templates_bucket,
            prefix=DEFAULT_JOURNEY_PREFIX,
        )
        Templates(  # the default segment files, which stores override under segments/<store>/
            self,
            "SegmentFiles",
            source_dir=REPO_ROOT / SEGMENTS_DIR,
            bucket=storage.templates_bucket,
            prefix=DEFAULT_SEGMENT_PREFIX,
        )
        dlqs = {**{f"{q.id} DLQ": bus.dlqs[q.id] for q in QUEUES}, "delivery DLQ": bus.delivery_dlq}
        Dashboard(
            self, "Dashboard", functions=functions.functions, dlqs=dlqs, state_machine=journeys.state_machine
        )
        alarms = Alarms(
            self, "Alarms", dlqs=dlqs, state_machine=journeys.state_machine, functions=functions.functions
        )

        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL: POST <url>v1/batch")
        CfnOutput(self, "TableName", value=storage.table.table_name)
        CfnOutput(self, "TemplatesBucketName", value=storage.templates_bucket.bucket_name)
        CfnOutput(
            self,
            "AnalyticsBucketName",
            value=analytics.bucket.bucket_name,
            description="Monthly reports: metrics/<store>/latest.html (boomerang report --latest --bucket)",
        )
        CfnOutput(self, "EventBusName", value=bus.bus.event_bus_name)
        CfnOutput(self, "JourneyStateMachineArn", value=journeys.state_machine.state_machine_arn)
        CfnOutput(self, "SigningSecretArn", value=secrets.signing_key.secret_arn)
        CfnOutput(
            self,
            "ReportsTopicArn",
            value=reports.topic.topic_arn,
            description="Subscribe marketers: rejected template and journey uploads",
        )
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=alarms.topic.topic_arn,
            description="Subscribe operators: DLQs, failed executions, steps and reports, SES reputation",
        )
        CfnOutput(
            self, "PushAppId", value=push.app_id, description="Enable its APNs/FCM channels after deploy"
        )
        for queue in QUEUES:
            CfnOutput(self, f"{queue.id}DlqUrl", value=bus.dlqs[queue.id].queue_url)
