"""One Lambda function per FunctionSpec, each with its own least-privilege role and log group.

Functions are created first and wired afterwards (`configure`), because the wiring points both
ways: the API needs the ingest function, the state machine needs the step function, and the step
function needs the API's URL and the trigger function needs the state machine's ARN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import RegexAppliesTo
from constructs import Construct

from infra.constructs.messaging import Messaging
from infra.constructs.nag import Waiver, suppress
from infra.constructs.push import Push
from infra.constructs.reports import Reports
from infra.constructs.webpush import WebPush
from infra.description import (
    APP_NAME,
    BUCKET_READ_PREFIXES,
    FUNCTIONS,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    TEMPLATE_WATCHED_PREFIXES,
    FunctionSpec,
    Grant,
)
from shared.domain.partners import SECRET_PREFIX
from shared.services.analytics.report_job import EXPORTS_PREFIX, METRICS_PREFIX
from shared.templates.reports import REPORTS_PREFIX
from shared.templates.store import ACTIVE_PREFIX

# Set on every function, on top of the names each FunctionSpec lists.
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME": APP_NAME, "POWERTOOLS_METRICS_NAMESPACE": "Boomerang"}
LOG_LEVEL = "LOG_LEVEL"
# Python's level names (LOG_LEVEL, `-c logLevel`) as Lambda's application log levels. The two stay
# equal: Powertools takes Lambda's AWS_LAMBDA_LOG_LEVEL over LOG_LEVEL, and Lambda files a line
# without a level (an EMF metric) as INFO, so the application level never goes above the functions'.
APPLICATION_LOG_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "WARN": lambda_.ApplicationLogLevel.WARN,  # (Python's logging takes both spellings)
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
    "CRITICAL": lambda_.ApplicationLogLevel.FATAL,
    "FATAL": lambda_.ApplicationLogLevel.FATAL,
}
SYSTEM_LOG_LEVELS = {
    "DEBUG": lambda_.SystemLogLevel.DEBUG,
    "INFO": lambda_.SystemLogLevel.INFO,
    "WARN": lambda_.SystemLogLevel.WARN,
}


def logging_levels(
    log_level: str, system_log_level: str
) -> tuple[lambda_.ApplicationLogLevel, lambda_.SystemLogLevel]:
    """The functions' Lambda log levels, or a clear error naming the context key and what it allows."""
    if log_level not in APPLICATION_LOG_LEVELS:
        raise ValueError(
            f"logLevel {log_level!r} is not a Python log level: {', '.join(APPLICATION_LOG_LEVELS)}"
        )
    if system_log_level not in SYSTEM_LOG_LEVELS:
        raise ValueError(
            f"lambdaSystemLogLevel {system_log_level!r} is not a Lambda system log level: "
            f"{', '.join(SYSTEM_LOG_LEVELS)}"
        )
    return APPLICATION_LOG_LEVELS[log_level], SYSTEM_LOG_LEVELS[system_log_level]


# Abstract grant -> the exact IAM actions it allows. DynamoDB transactions are authorised per item
# action (TransactWriteItems needs PutItem/UpdateItem/DeleteItem/ConditionCheckItem), so they need
# nothing extra.
TABLE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
TABLE_WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
)

_ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}


@dataclass(frozen=True)
class GrantTargets:
    """The concrete resources behind the abstract grants in infra/description.py."""

    table: dynamodb.ITable
    bus: events.IEventBus
    state_machine: sfn.IStateMachine
    templates_bucket: s3.IBucket
    templates_prefix: str
    messaging: Messaging
    signing_secret: secretsmanager.ISecret
    push: Push
    journey_queue: sqs.IQueue
    reports: Reports | None = None  # the template validator's SNS topic
    analytics_bucket: s3.IBucket | None = None  # table exports and computed reports
    report_queue: sqs.IQueue | None = None  # the report λ's own queue (its delayed collect tasks)
    partners_queue: sqs.IQueue | None = None  # the forwarder's queue (its delayed attempt tasks)
    webpush: WebPush | None = None  # the VAPID root secret
    partners_dlq: sqs.IQueue | None = None  # forwards given up or refused


def narrowed(actions: tuple[str, ...], only: tuple[str, ...], spec_id: str, grant: str) -> list[str]:
    """A table grant's actions cut down to the function's `table_actions` (all of them if it names none)."""
    if not only:
        return list(actions)
    unknown = set(only) - set(TABLE_READ_ACTIONS) - set(TABLE_WRITE_ACTIONS)
    if unknown:
        raise ValueError(
            f"function {spec_id}: table_actions {sorted(unknown)} are not table read/write actions; "
            f"allowed: {sorted({*TABLE_READ_ACTIONS, *TABLE_WRITE_ACTIONS})}"
        )
    kept = [a for a in actions if a in only]
    if not kept:
        raise ValueError(
            f"function {spec_id}: {grant} is granted but table_actions keeps none of {list(actions)}"
        )
    return kept


def _table_read(role: iam.Role, t: GrantTargets, actions: list[str] | None = None) -> None:
    # the sparse indexes (birthdays, at risk, back-in-stock subscribers, stores) are queried too
    role.add_to_policy(
        iam.PolicyStatement(
            actions=actions or list(TABLE_READ_ACTIONS),
            resources=[t.table.table_arn, f"{t.table.table_arn}/index/*"],
        )
    )
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "Read access to this table's own secondary indexes (a Query on an index needs the index ARN).",
            applies_to=[f"Resource::<{_table_logical_id(t.table)}.Arn>/index/*"],
        ),
        apply_to_children=True,
    )


def _table_write(role: iam.Role, t: GrantTargets, actions: list[str] | None = None) -> None:
    role.add_to_policy(
        iam.PolicyStatement(actions=actions or list(TABLE_WRITE_ACTIONS), resources=[t.table.table_arn])
    )


def _rate_limit(role: iam.Role, t: GrantTargets) -> None:
    # the signup form's counters only: a λ that must not write customer data bumps RATE#* items
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"],
            resources=[t.table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*"]}},
        )
    )


def _bus_put(role: iam.Role, t: GrantTargets) -> None:
    t.bus.grant_put_events_to(role)


def _journey_start(role: iam.Role, t: GrantTargets) -> None:
    role.add_to_policy(
        iam.PolicyStatement(actions=["states:StartExecution"], resources=[t.state_machine.state_machine_arn])
    )
    # When a cart's execution name is taken, the trigger asks whether that journey is still running
    # (join it) or ended before this activity (start the next generation).
    t.state_machine.grant_execution(role, "states:DescribeExecution")
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "Execution names are per cart and not known at deploy time; DescribeExecution is limited to "
            "executions of the journey state machine.",
            applies_to=[RegexAppliesTo(regex=r"/^Resource::arn:.+:states:.+:execution:.+:\*$/")],
        ),
        apply_to_children=True,
    )


# What sending reads: templates, journey files, catalogs, and the validator's active-version records.
READ_PREFIXES = (*BUCKET_READ_PREFIXES, ACTIVE_PREFIX)


def _templates_read(role: iam.Role, t: GrantTargets) -> None:
    # Only the template versions the validator activated are sent: the active/ records name them.
    objects = [t.templates_bucket.arn_for_objects(f"{prefix}*") for prefix in READ_PREFIXES]
    # GetObjectVersion + ListBucketVersions: a broken journey file falls back to its last valid version
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"], resources=objects)
    )
    # Without ListBucket, S3 answers a missing key with 403 instead of 404, and the handler could not
    # tell "no store-specific template, use the default" from a real permission error (moto
    # enforces no IAM, so the emulator would never show the difference).
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket", "s3:ListBucketVersions"], resources=[t.templates_bucket.bucket_arn]
        )
    )
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "Template, journey and catalog keys are per store and per journey; read access is limited to "
            f"the {', '.join(READ_PREFIXES)} prefixes of the templates bucket.",
            applies_to=[
                f"Resource::<{_logical_id_hint(t.templates_bucket)}.Arn>/{prefix}*"
                for prefix in READ_PREFIXES
            ],
        ),
        apply_to_children=True,  # the finding is on the role's DefaultPolicy child
    )


def _journey_tasks(role: iam.Role, t: GrantTargets) -> None:
    # SendMessage alone (grant_send_messages adds GetQueueUrl/GetQueueAttributes, which no sender uses)
    role.add_to_policy(
        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[t.journey_queue.queue_arn])
    )


def _templates_validate(role: iam.Role, t: GrantTargets) -> None:
    bucket = t.templates_bucket
    watched = [bucket.arn_for_objects(f"{p}*") for p in TEMPLATE_WATCHED_PREFIXES]
    written = [bucket.arn_for_objects(f"{p}*") for p in (ACTIVE_PREFIX, REPORTS_PREFIX)]
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"], resources=watched + written)
    )
    # the active/ records are written with If-Match (PutObject), reports next to them
    role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=written))
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:ListBucket", "s3:ListBucketVersions"], resources=[bucket.bucket_arn])
    )
    bucket_id = _logical_id_hint(bucket)
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "The validator reads every version of the files marketers upload (templates/, journeys/, segments/) and "
            "writes only the active-version records (active/) and reports (reports/) of the templates bucket.",
            applies_to=[
                f"Resource::<{bucket_id}.Arn>/{p}*"
                for p in (*TEMPLATE_WATCHED_PREFIXES, ACTIVE_PREFIX, REPORTS_PREFIX)
            ],
        ),
        apply_to_children=True,
    )


def _reports_publish(role: iam.Role, t: GrantTargets) -> None:
    if t.reports is None:
        raise ValueError("reports:publish needs the Reports construct")
    t.reports.grant_publish(role)


# What DynamoDB needs of the caller to write an export into a bucket (it writes as the caller).
EXPORT_WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl")


def _analytics(t: GrantTargets) -> s3.IBucket:
    if t.analytics_bucket is None:
        raise ValueError("the report grants need the analytics bucket")
    return t.analytics_bucket


def _table_export(role: iam.Role, t: GrantTargets) -> None:
    bucket = _analytics(t)
    role.add_to_policy(
        iam.PolicyStatement(actions=["dynamodb:ExportTableToPointInTime"], resources=[t.table.table_arn])
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["dynamodb:DescribeExport"], resources=[f"{t.table.table_arn}/export/*"])
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=list(EXPORT_WRITE_ACTIONS), resources=[bucket.arn_for_objects(f"{EXPORTS_PREFIX}*")]
        )
    )
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "Export ids are chosen by DynamoDB: DescribeExport is limited to this table's exports. Exports "
            "are written (by DynamoDB, as the caller) only under the analytics bucket's exports/ prefix.",
            applies_to=[
                f"Resource::<{_table_logical_id(t.table)}.Arn>/export/*",
                f"Resource::<{_logical_id_hint(bucket)}.Arn>/{EXPORTS_PREFIX}*",
            ],
        ),
        apply_to_children=True,
    )


def _analytics_write(role: iam.Role, t: GrantTargets) -> None:
    bucket = _analytics(t)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{EXPORTS_PREFIX}*")]
        )
    )
    # listing finds an export's data files; it also turns a missing marker into 404 instead of 403
    role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{METRICS_PREFIX}*")]
        )
    )
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "Export files and report keys are per run and per store: reads are limited to the analytics "
            "bucket's exports/ prefix, writes to its metrics/ prefix.",
            applies_to=[
                f"Resource::<{_logical_id_hint(bucket)}.Arn>/{EXPORTS_PREFIX}*",
                f"Resource::<{_logical_id_hint(bucket)}.Arn>/{METRICS_PREFIX}*",
            ],
        ),
        apply_to_children=True,
    )


def _report_tasks(role: iam.Role, t: GrantTargets) -> None:
    if t.report_queue is None:
        raise ValueError("report:tasks needs the report queue")
    t.report_queue.grant_send_messages(role)


def _partner_tasks(role: iam.Role, t: GrantTargets) -> None:
    if t.partners_queue is None or t.partners_dlq is None:
        raise ValueError("partners:tasks needs the partners queue and its DLQ")
    # SendMessage only (grant_send_messages adds GetQueueAttributes/GetQueueUrl, which it never calls)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["sqs:SendMessage"], resources=[t.partners_queue.queue_arn, t.partners_dlq.queue_arn]
        )
    )


def _partner_secrets(role: iam.Role, t: GrantTargets) -> None:
    # Partner secrets are created by `boomerang partners secret` after deploy, one per partner, so
    # the grant is the name prefix (Secrets Manager appends 6 random characters to every ARN).
    stack = Stack.of(role)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"],
            resources=[
                stack.format_arn(
                    service="secretsmanager",
                    resource="secret",
                    resource_name=f"{SECRET_PREFIX}*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
    )
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "Fulfilment partners are data a store adds after deploy; each one's credentials are a secret "
            f"named {SECRET_PREFIX}<store>/<partner>. The wildcard is that name prefix, for reading only.",
            applies_to=[
                RegexAppliesTo(
                    regex=r"/^Resource::arn:<AWS::Partition>:secretsmanager:.*boomerang\/partners\/\*$/g"
                )
            ],
        ),
        apply_to_children=True,
    )


def _email_send(role: iam.Role, t: GrantTargets) -> None:
    t.messaging.grant_send(role)


def _send_quota_read(role: iam.Role, t: GrantTargets) -> None:
    # the broadcast worker paces at the account's MaxSendRate (shared/adapters/send_pace.py)
    role.add_to_policy(iam.PolicyStatement(actions=["ses:GetSendQuota"], resources=["*"]))
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "ses:GetSendQuota reads the account's sending quota and supports no resource-level "
            "permission (Resource '*' only); the statement allows that one read-only action.",
            applies_to=["Resource::*"],
        ),
        apply_to_children=True,  # the finding is on the role's DefaultPolicy child
    )


def _table_scan(role: iam.Role, t: GrantTargets) -> None:
    role.add_to_policy(iam.PolicyStatement(actions=["dynamodb:Scan"], resources=[t.table.table_arn]))


def _table_batch_delete(role: iam.Role, t: GrantTargets) -> None:
    role.add_to_policy(
        iam.PolicyStatement(actions=["dynamodb:BatchWriteItem"], resources=[t.table.table_arn])
    )


def _journey_stop(role: iam.Role, t: GrantTargets) -> None:
    # an erased customer's running journeys (execution names are derived, not known at deploy time)
    # StopExecution only: a journey already ended answers ExecutionDoesNotExist (no describe first)
    t.state_machine.grant_execution(role, "states:StopExecution")
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "Execution names are per cart, order or customer and not known at deploy time; StopExecution is "
            "limited to executions of the journey state machine.",
        ),
        apply_to_children=True,
    )


SECRET_ROTATE_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:UpdateSecretVersionStage",
)


def _secret_rotate(role: iam.Role, t: GrantTargets) -> None:
    role.add_to_policy(
        iam.PolicyStatement(actions=list(SECRET_ROTATE_ACTIONS), resources=[t.signing_secret.secret_arn])
    )


def _secret_read(role: iam.Role, t: GrantTargets) -> None:
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"], resources=[t.signing_secret.secret_arn]
        )
    )


# SNS SMS: a phone number is not a resource, so Publish to a number (and the opt-out check) can only
# be granted on "*".
SMS_ACTIONS = ("sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut")


def _sms_send(role: iam.Role, t: GrantTargets) -> None:
    role.add_to_policy(iam.PolicyStatement(actions=list(SMS_ACTIONS), resources=["*"]))
    suppress(
        role,
        Waiver(
            "AwsSolutions-IAM5",
            "SNS authorises Publish to a phone number and CheckIfPhoneNumberIsOptedOut only on Resource '*' "
            "(a phone number has no ARN); the statement allows exactly those two SNS actions. The SMS "
            "spend limit and the sandbox cap what a misuse could cost.",
            applies_to=["Resource::*"],
        ),
        apply_to_children=True,  # the finding is on the role's DefaultPolicy child
    )


def _push_send(role: iam.Role, t: GrantTargets) -> None:
    t.push.grant_send(role)


def _vapid_read(role: iam.Role, t: GrantTargets) -> None:
    assert t.webpush is not None, "a function reads the VAPID secret but the stack has no WebPush"
    t.webpush.grant_read(role)


GRANTS: Mapping[str, Callable[[iam.Role, GrantTargets], None]] = {
    Grant.TABLE_READ: _table_read,
    Grant.TABLE_WRITE: _table_write,
    Grant.BUS_PUT: _bus_put,
    Grant.JOURNEY_START: _journey_start,
    Grant.TEMPLATES_READ: _templates_read,
    Grant.EMAIL_SEND: _email_send,
    Grant.SIGNING_SECRET_READ: _secret_read,
    Grant.SMS_SEND: _sms_send,
    Grant.PUSH_SEND: _push_send,
    Grant.VAPID_SECRET_READ: _vapid_read,
    Grant.JOURNEY_TASKS: _journey_tasks,
    Grant.TEMPLATES_VALIDATE: _templates_validate,
    Grant.REPORTS_PUBLISH: _reports_publish,
    Grant.TABLE_EXPORT: _table_export,
    Grant.ANALYTICS_WRITE: _analytics_write,
    Grant.REPORT_TASKS: _report_tasks,
    Grant.PARTNER_TASKS: _partner_tasks,
    Grant.PARTNER_SECRETS_READ: _partner_secrets,
    Grant.TABLE_SCAN: _table_scan,
    Grant.TABLE_BATCH_DELETE: _table_batch_delete,
    Grant.JOURNEY_STOP: _journey_stop,
    Grant.SIGNING_SECRET_ROTATE: _secret_rotate,
    Grant.RATE_LIMIT: _rate_limit,
    Grant.SEND_QUOTA_READ: _send_quota_read,
}


def _table_logical_id(table: dynamodb.ITable) -> str:
    child = table.node.default_child
    if child is None:
        raise ValueError("the table must be defined in this stack")
    return Stack.of(table).get_logical_id(child)  # type: ignore[arg-type]


def _logical_id_hint(bucket: s3.IBucket) -> str:
    # cdk-nag names a resource by its logical id in `applies_to`; resolve it from the construct.
    child = bucket.node.default_child
    if child is None:
        raise ValueError("the bucket must be a bucket defined in this stack")
    return Stack.of(bucket).get_logical_id(child)  # type: ignore[arg-type]


def runtime() -> lambda_.Runtime:
    for known in lambda_.Runtime.ALL:
        if known.name == LAMBDA_RUNTIME:
            return known
    raise ValueError(f"aws-cdk-lib does not know the Lambda runtime {LAMBDA_RUNTIME!r}")


class LambdaFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: Mapping[str, Path],
        log_level: str,
        log_retention: logs.RetentionDays,
        system_log_level: str = "WARN",
    ) -> None:
        super().__init__(scope, construct_id)
        self._levels = logging_levels(log_level, system_log_level)
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self._configured = False
        for spec in FUNCTIONS:
            self._create(spec, assets[spec.id], log_level, log_retention)

    def _create(self, spec: FunctionSpec, asset: Path, log_level: str, retention: logs.RetentionDays) -> None:
        scope = Construct(self, spec.id)
        log_group = logs.LogGroup(scope, "Logs", retention=retention)
        # Our own role instead of AWSLambdaBasicExecutionRole: that managed policy may write to any
        # log group in the account; this one writes only to the function's own log group.
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Boomerang {spec.id} function",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        function = lambda_.Function(
            scope,
            "Function",
            description=spec.description,
            runtime=runtime(),
            architecture=_ARCHITECTURES[LAMBDA_ARCHITECTURE],
            handler=spec.handler,
            code=lambda_.Code.from_asset(str(asset)),
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_s),
            reserved_concurrent_executions=spec.reserved_concurrency,
            role=role,
            log_group=log_group,
            environment={**POWERTOOLS_ENV, LOG_LEVEL: log_level},
            # JSON is what lets Lambda filter by level (Powertools' lines are JSON already)
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=self._levels[0],
            system_log_level_v2=self._levels[1],
        )
        suppress(
            function,
            Waiver(
                "AwsSolutions-L1",
                f"Pinned to {LAMBDA_RUNTIME} by infra/description.py: the asset's compiled dependencies "
                "(pydantic-core) are built for exactly that CPython version.",
            ),
        )
        self.functions[spec.id] = function
        self.roles[spec.id] = role
        self.log_groups[spec.id] = log_group

    def configure(self, environment: Mapping[str, str], targets: GrantTargets) -> None:
        """Set each function's environment and grants exactly as its FunctionSpec lists them."""
        if self._configured:
            raise RuntimeError("functions are configured once")
        self._configured = True
        for spec in FUNCTIONS:
            function, role = self.functions[spec.id], self.roles[spec.id]
            for name in spec.env:
                if name not in environment:
                    raise KeyError(f"function {spec.id} needs {name}, which the stack does not provide")
                function.add_environment(name, environment[name])
            for grant in spec.grants:
                if grant not in GRANTS:
                    raise KeyError(f"function {spec.id} needs grant {grant!r}, which has no IAM mapping")
                if grant == Grant.TABLE_READ:
                    _table_read(
                        role, targets, narrowed(TABLE_READ_ACTIONS, spec.table_actions, spec.id, grant)
                    )
                elif grant == Grant.TABLE_WRITE:
                    _table_write(
                        role, targets, narrowed(TABLE_WRITE_ACTIONS, spec.table_actions, spec.id, grant)
                    )
                else:
                    GRANTS[grant](role, targets)
