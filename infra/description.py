"""The one description of Boomerang's resources.

Both the CDK stack (infra/stack.py and its constructs) and the local emulator (infra/local/) are
built from this module: table keys, bus rules and their patterns, queue wiring, the journey state
machine, function names, handlers, environment and permissions. Change it here and both change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from shared.domain.events import (
    CONSENT_UPDATED,
    EVENT_SOURCE,
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_DELIVERED,
    ORDER_REFUNDED,
    ORDER_SHIPPED,
)
from shared.domain.privacy import EXPORT_RETENTION_DAYS
from shared.platform import settings as env
from shared.platform.indexes import INDEXES
from shared.services.analytics.report_job import EXPORTS_PREFIX
from shared.services.consent.feedback import FEEDBACK_DETAIL_TYPES, SES_SOURCE

APP_NAME = "boomerang"
# Where marketers publish; a change under these prefixes is validated (templates bucket).
TEMPLATE_WATCHED_PREFIXES = ("templates/", "journeys/", "segments/", "partners/")
BUS_NAME = "boomerang"
# The account's default bus: AWS services (SES event destinations among them) publish only there.
DEFAULT_BUS = "default"
ARCHIVE_RETENTION_DAYS = 30
# 12:00 UTC: occasions are started for the next day, so 10:00 local is ahead everywhere (UTC-12..+14)
DAILY_SCHEDULE = "cron(0 12 * * ? *)"
# Monthly, on the 1st at 03:00 UTC: the report's periods are calendar months, so a month's figures
# are final once it has ended; a full-table export is billed per GB each time, so a daily run would
# cost 30 times as much for figures that change only at a month's end (queue an export task by hand
# for fresher ones, README "Reports at scale").
MONTHLY_REPORT_SCHEDULE = "cron(0 3 1 * ? *)"
# The 2nd of each month, 04:00 UTC: the retention sweep (what TTL does not reach; README "Personal data")
MONTHLY_RETENTION_SCHEDULE = "cron(0 4 2 * ? *)"
LAMBDA_RUNTIME = "python3.13"
LAMBDA_ARCHITECTURE = "arm64"


@dataclass(frozen=True)
class TableSpec:
    partition_key: str = "pk"
    sort_key: str = "sk"
    ttl_attribute: str = "expires_at"

    def create_table_args(self, name: str) -> dict[str, Any]:
        """CreateTable arguments for the emulator and moto tests (CDK states the same keys itself)."""
        keys = ((self.partition_key, "HASH"), (self.sort_key, "RANGE"))
        attributes = dict.fromkeys([a for a, _ in keys] + [a for i in INDEXES for a in (i.partition, i.sort)])
        return {
            "TableName": name,
            "KeySchema": [{"AttributeName": a, "KeyType": k} for a, k in keys],
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": i.name,
                    "KeySchema": [
                        {"AttributeName": i.partition, "KeyType": "HASH"},
                        {"AttributeName": i.sort, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(i.include)},
                }
                for i in INDEXES
            ],
        }


TABLE = TableSpec()


# Abstract permissions a function needs; the CDK stack maps each to the narrowest grant, the
# emulator ignores them (moto does not enforce IAM).
class Grant:
    TABLE_READ = "table:read"
    TABLE_WRITE = "table:write"
    BUS_PUT = "bus:put"
    JOURNEY_START = "journey:start"
    TEMPLATES_READ = "templates:read"
    EMAIL_SEND = "email:send"
    SIGNING_SECRET_READ = "secret:read"  # HMAC key for unsubscribe links
    SMS_SEND = "sms:send"  # sns:Publish to phone numbers + sns:CheckIfPhoneNumberIsOptedOut
    PUSH_SEND = "push:send"  # mobiletargeting:SendMessages on Boomerang's push application
    JOURNEY_TASKS = "journey:tasks"  # sqs:SendMessage on the journey queue (the next page of an audience)
    # read every version under templates/, journeys/ and segments/, write active/ and reports/
    TEMPLATES_VALIDATE = "templates:validate"
    REPORTS_PUBLISH = "reports:publish"  # sns:Publish on the template reports topic
    # dynamodb:ExportTableToPointInTime + DescribeExport on the table; s3 writes under exports/
    # (DynamoDB writes the export with the caller's permissions)
    TABLE_EXPORT = "table:export"
    ANALYTICS_WRITE = "analytics:write"  # read exports/, write metrics/ in the analytics bucket
    REPORT_TASKS = "report:tasks"  # sqs:SendMessage on the report queue (the delayed collect task)
    # secretsmanager:GetSecretValue on boomerang/partners/* only (each partner's credentials)
    PARTNER_SECRETS_READ = "partners:secrets"
    PARTNER_TASKS = "partners:tasks"  # sqs:SendMessage on the partners queue (next attempt) and its DLQ
    # dynamodb:Scan on the table: finding everything one person left (erasure, export; README "Personal data")
    TABLE_SCAN = "table:scan"
    # dynamodb:BatchWriteItem on the table: erasure and the retention sweep delete 25 items a request
    # (found by the IAM check: TABLE_WRITE's per-item actions do not authorise a batch)
    TABLE_BATCH_DELETE = "table:batch-delete"
    # states:StopExecution on the journey state machine's executions (erasure)
    JOURNEY_STOP = "journey:stop"
    # secretsmanager Get/Put/UpdateSecretVersionStage/DescribeSecret on the signing secret only
    SIGNING_SECRET_ROTATE = "secret:rotate"
    # dynamodb:UpdateItem on the table's RATE#* partitions only (the signup form's rate limits)
    RATE_LIMIT = "table:ratelimit"
    # secretsmanager:GetSecretValue on the VAPID root secret only (each store's web push key pair)
    VAPID_SECRET_READ = "vapid:read"
    SEND_QUOTA_READ = "email:quota"  # ses:GetSendQuota (the broadcast pacing's MaxSendRate)


# What the functions that read and write customers' items call (profile fold, journey trigger and step)
CUSTOMER_ITEM_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)


@dataclass(frozen=True)
class FunctionSpec:
    id: str  # logical id, also the local function name
    handler: str  # dotted path of the handler callable inside the asset
    source: str  # folder under functions/ copied into the asset
    description: str
    env: tuple[str, ...]
    grants: tuple[str, ...]
    memory_mb: int = 512
    timeout_s: int = 30
    reserved_concurrency: int | None = None
    # The DynamoDB actions its TABLE_READ/TABLE_WRITE grants are narrowed to: the ones it calls
    # (python -m infra.iam_check proves each is used). Empty: the whole read/write sets.
    table_actions: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        id="ingest",
        handler="functions.ingest.handler.handler",
        source="ingest",
        description="Storefront event API and one-click unsubscribe: authenticates, validates, publishes",
        # templates bucket and partner secrets: the fulfilment partners' signed shipment updates
        # VAPID secret: the store's web push public key, in the scripts its site loads
        env=(
            env.TABLE_NAME,
            env.BUS_NAME,
            env.SIGNING_SECRET_ARN,
            env.TEMPLATES_BUCKET,
            env.VAPID_SECRET_ARN,
        ),
        # scan: a customer's export (GET /v1/customers/export) reads the table; it writes nothing
        grants=(
            Grant.TABLE_READ,
            Grant.BUS_PUT,
            Grant.SIGNING_SECRET_READ,
            Grant.TEMPLATES_READ,
            Grant.PARTNER_SECRETS_READ,
            Grant.TABLE_SCAN,
            Grant.RATE_LIMIT,
            Grant.VAPID_SECRET_READ,
        ),
        table_actions=("dynamodb:GetItem",),
        timeout_s=15,
    ),
    FunctionSpec(
        id="profile",
        handler="functions.profile.handler.handler",
        source="profile",
        description="Keeps customer profiles, carts, order aggregates, RFM scores and segments from storefront events",
        env=(env.TABLE_NAME, env.BUS_NAME, env.TEMPLATES_BUCKET),
        # bus: what the fold concludes (a loyalty tier reached) goes back out as an event for journeys;
        # templates bucket: the segment files the fold evaluates
        grants=(Grant.TABLE_READ, Grant.TABLE_WRITE, Grant.BUS_PUT, Grant.TEMPLATES_READ),
        table_actions=CUSTOMER_ITEM_ACTIONS,
    ),
    FunctionSpec(
        id="journey_trigger",
        handler="functions.journey_trigger.handler.handler",
        source="journey_trigger",
        description="Starts one journey execution per journey instance (cart, order, customer), from events and the daily schedule; the daily segments run",
        env=(env.STATE_MACHINE_ARN, env.TABLE_NAME, env.TEMPLATES_BUCKET, env.JOURNEY_QUEUE_URL),
        # table: store settings, audiences (index queries) and re-entry records; templates bucket: the
        # journey files; journey queue: an audience's next page as a task
        grants=(
            Grant.JOURNEY_START,
            Grant.TABLE_READ,
            Grant.TABLE_WRITE,
            Grant.TEMPLATES_READ,
            Grant.JOURNEY_TASKS,
            Grant.SEND_QUOTA_READ,  # a broadcast instant's pages are spread over workers for SES's rate
        ),
        table_actions=CUSTOMER_ITEM_ACTIONS,
        timeout_s=60,
    ),
    FunctionSpec(
        id="journey_step",
        handler="functions.journey_step.handler.handler",
        source="journey_step",
        description="Decides each journey step from fresh state: exit, wait again, or send",
        env=(
            env.TABLE_NAME,
            env.TEMPLATES_BUCKET,
            env.EMAIL_CONFIGURATION_SET,
            env.UNSUBSCRIBE_BASE_URL,
            env.SIGNING_SECRET_ARN,
            env.PUSH_APP_ID,
            env.VAPID_SECRET_ARN,
            env.JOURNEY_QUEUE_URL,
        ),
        # broadcast mode (shared/services/journeys/broadcast.py): SES's MaxSendRate paces the pages;
        # a member who must wait is queued to the trigger λ, which starts their own execution
        grants=(
            Grant.TABLE_READ,
            Grant.TABLE_WRITE,
            Grant.TEMPLATES_READ,
            Grant.EMAIL_SEND,
            Grant.SIGNING_SECRET_READ,
            Grant.SMS_SEND,
            Grant.PUSH_SEND,
            Grant.VAPID_SECRET_READ,
            Grant.JOURNEY_TASKS,
            Grant.SEND_QUOTA_READ,
        ),
        # a unique offer code is drawn in a transaction that checks its pool
        table_actions=(*CUSTOMER_ITEM_ACTIONS, "dynamodb:ConditionCheckItem"),
    ),
    FunctionSpec(
        id="feedback",
        handler="functions.feedback.handler.handler",
        source="feedback",
        description="SES bounces and complaints -> suppression; deliveries, opens, clicks -> report",
        env=(env.TABLE_NAME,),
        grants=(Grant.TABLE_READ, Grant.TABLE_WRITE),
        table_actions=("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    ),
    FunctionSpec(
        id="template_validator",
        handler="functions.template_validator.handler.handler",
        source="template_validator",
        description="Checks templates and journey files as they land; activates valid ones, reports the rest",
        env=(env.TEMPLATES_BUCKET, env.REPORTS_TOPIC_ARN),
        grants=(Grant.TEMPLATES_VALIDATE, Grant.REPORTS_PUBLISH),
        memory_mb=1024,  # trial renders (MJML, CSS inlining) of a whole template folder
        timeout_s=60,
    ),
    FunctionSpec(
        id="report",
        handler="functions.report.handler.handler",
        source="report",
        description="Monthly retention reports at scale: exports the table to S3, then computes every store's report from the export",
        env=(env.TABLE_NAME, env.TABLE_ARN, env.ANALYTICS_BUCKET, env.REPORT_QUEUE_URL),
        # table: the store list (the sparse stores index, a Query); the export itself reads nothing
        grants=(Grant.TABLE_READ, Grant.TABLE_EXPORT, Grant.ANALYTICS_WRITE, Grant.REPORT_TASKS),
        table_actions=("dynamodb:Query",),
        # the whole export is held in memory (README "Reports at scale": the ceiling, and Athena past it)
        memory_mb=3008,
        timeout_s=900,
    ),
)

# Fulfilment partners (README "Fulfilment partners"): a λ, not EventBridge API destinations, because
# every request is HMAC-signed, may be a store's Jinja2 body, and has its answer recorded on the order.
FUNCTIONS += (
    FunctionSpec(
        id="partner_forwarder",
        handler="functions.partner_forwarder.handler.handler",
        source="partner_forwarder",
        description="Forwards each order's items to its fulfilment partners (signed, retried for 24 h) and records every answer",
        env=(env.TABLE_NAME, env.TEMPLATES_BUCKET, env.PARTNERS_QUEUE_URL, env.PARTNERS_DLQ_URL),
        grants=(
            Grant.TABLE_READ,
            Grant.TABLE_WRITE,
            Grant.TEMPLATES_READ,
            Grant.PARTNER_SECRETS_READ,
            Grant.PARTNER_TASKS,
        ),
        table_actions=("dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"),
        # a batch of 5 messages, each a few partners at most 25 s each
        timeout_s=300,
    ),
)
# Personal data (README "Personal data"): erasure requests from the API, run off the request path
# because finding everything a person left reads the table (shared/adapters/privacy_store.py).
PRIVACY_SOURCE = "boomerang.privacy"
ERASURE_REQUESTED = "Customer Erasure Requested"
FUNCTIONS += (
    FunctionSpec(
        id="privacy",
        handler="functions.privacy.handler.handler",
        source="privacy",
        description="Erases a customer on the store's request: their items, running journeys; leaves hashed tombstones",
        env=(env.TABLE_NAME, env.STATE_MACHINE_ARN),
        grants=(
            Grant.TABLE_READ,
            Grant.TABLE_SCAN,
            Grant.TABLE_WRITE,
            Grant.TABLE_BATCH_DELETE,
            Grant.JOURNEY_STOP,
        ),
        table_actions=(
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:Query",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ),
        timeout_s=900,  # reads the whole table (twice at most): a rare, offline job
        memory_mb=1024,
    ),
    FunctionSpec(
        id="key_rotation",
        handler="functions.key_rotation.handler.handler",
        source="key_rotation",
        description="Secrets Manager rotation of the link-signing key ring: a new current key, old ones kept for a link lifetime",
        env=(),
        grants=(Grant.SIGNING_SECRET_ROTATE,),
        timeout_s=30,
        memory_mb=256,
    ),
)
# Secrets Manager rotates the signing key ring on this schedule; links live 400 days, so a key is
# kept for 400 days after its successor (shared/platform/signing.py), about five keys at a time.
SIGNING_KEY_ROTATION_DAYS = 90

FUNCTIONS_BY_ID = {f.id: f for f in FUNCTIONS}


@dataclass(frozen=True)
class QueueSpec:
    id: str
    consumer: str  # FunctionSpec.id
    batch_size: int = 10
    max_batching_window_s: int = 1
    max_receive_count: int = 5  # then the message moves to the DLQ
    dlq_retention_days: int = 14

    @property
    def visibility_timeout_s(self) -> int:
        # AWS guidance: at least six times the consumer's timeout, so retries don't overlap.
        return 6 * FUNCTIONS_BY_ID[self.consumer].timeout_s


QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec(id="profile", consumer="profile"),
    QueueSpec(id="journey", consumer="journey_trigger"),
    QueueSpec(id="feedback", consumer="feedback"),
    QueueSpec(id="templates", consumer="template_validator"),
    # one task at a time: a collect task may take the function's whole 15 minutes
    QueueSpec(id="report", consumer="report", batch_size=1, max_batching_window_s=0, max_receive_count=3),
    # order events and the forwarder's own delayed attempt tasks
    QueueSpec(id="partners", consumer="partner_forwarder", batch_size=5),
    # one erasure at a time: each may read the whole table
    QueueSpec(id="privacy", consumer="privacy", batch_size=1, max_batching_window_s=0, max_receive_count=3),
)


def next_fire(schedule: str, after: float) -> float:
    """The first time after `after` (UTC epoch seconds) that a schedule of ours fires.

    The local emulator has no EventBridge scheduler, so it computes the same times itself. Only the
    shapes used here are understood (minute, hour, day of month or every day): anything else is an
    error, never a schedule silently run at the wrong cadence."""
    from datetime import UTC, datetime, timedelta

    match = re.fullmatch(r"cron\((\d+) (\d+) (\d+|\*) \* \? \*\)", schedule)
    if not match:
        raise ValueError(f"the local emulator cannot run schedule {schedule!r}")
    minute, hour = int(match.group(1)), int(match.group(2))
    day = None if match.group(3) == "*" else int(match.group(3))
    t = datetime.fromtimestamp(after, tz=UTC).replace(second=0, microsecond=0)
    candidate = t.replace(hour=hour, minute=minute)
    while True:
        if (day is None or candidate.day == day) and candidate.timestamp() > after:
            return candidate.timestamp()
        candidate += timedelta(days=1)


@dataclass(frozen=True)
class RuleSpec:
    id: str
    description: str
    pattern: dict[str, Any] | None  # an event pattern, or None for a schedule
    queue: str  # QueueSpec.id
    bus: str = BUS_NAME  # BUS_NAME or DEFAULT_BUS
    schedule: str | None = None  # EventBridge cron (schedules live on the default bus)


PARTNER_EVENTS = (ORDER_COMPLETED, ORDER_CANCELLED, ORDER_REFUNDED, ORDER_SHIPPED, ORDER_DELIVERED)

RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        id="orders-to-partners",
        description="Orders, cancellations and shipping updates for the fulfilment partners' forwarder",
        pattern={
            "source": [EVENT_SOURCE],
            "detail-type": ["track"],
            "detail": {"event": list(PARTNER_EVENTS)},
        },
        queue="partners",
    ),
    RuleSpec(
        id="to-profile",
        description="Every storefront event updates the customer profile",
        pattern={"source": [EVENT_SOURCE]},
        queue="profile",
    ),
    RuleSpec(
        # journeys are data: a marketer may start one on any event, so every track call is offered
        id="to-journeys",
        description="Track events (any of them may start a journey)",
        pattern={"source": [EVENT_SOURCE], "detail-type": ["track"]},
        queue="journey",
    ),
    RuleSpec(
        id="daily-journeys",
        description="The daily run of scheduled journeys (birthdays, anniversaries, win-back) and segments",
        pattern=None,
        schedule=DAILY_SCHEDULE,
        queue="journey",
        bus=DEFAULT_BUS,
    ),
    RuleSpec(
        id="monthly-report",
        description="The monthly retention reports: export the table, then every store's report from the export",
        pattern=None,
        schedule=MONTHLY_REPORT_SCHEDULE,
        queue="report",
        bus=DEFAULT_BUS,
    ),
    RuleSpec(
        id="email-consent-to-journeys",
        description="Email consent given in an identify call (double opt-in may start a confirmation)",
        pattern={
            "source": [EVENT_SOURCE],
            "detail-type": ["identify"],
            "detail": {"traits": {"consent": {"email": ["subscribed"]}}},
        },
        queue="journey",
    ),
    RuleSpec(
        id="email-consent-updated-to-journeys",
        description="Email consent given in a Consent Updated call (double opt-in may start a confirmation)",
        pattern={
            "source": [EVENT_SOURCE],
            "detail-type": ["track"],
            "detail": {"event": [CONSENT_UPDATED], "properties": {"consent": {"email": ["subscribed"]}}},
        },
        queue="journey",
    ),
    RuleSpec(
        id="ses-feedback",
        description="SES bounces, complaints, deliveries, opens, clicks (the configuration set's destination)",
        pattern={"source": [SES_SOURCE], "detail-type": list(FEEDBACK_DETAIL_TYPES)},
        queue="feedback",
        bus=DEFAULT_BUS,
    ),
    RuleSpec(
        id="monthly-retention",
        description="The monthly retention sweep: customers past the store's limit, and what TTL left behind",
        pattern=None,
        schedule=MONTHLY_RETENTION_SCHEDULE,
        queue="privacy",
        bus=DEFAULT_BUS,
    ),
    RuleSpec(
        id="privacy-requests",
        description="Erasure requests made through the API (POST /v1/customers/erase)",
        pattern={"source": [PRIVACY_SOURCE], "detail-type": [ERASURE_REQUESTED]},
        queue="privacy",
    ),
    RuleSpec(
        id="template-changed",
        description="A template or journey file was uploaded or deleted (the bucket's S3 EventBridge events)",
        pattern={
            "source": ["aws.s3"],
            "detail-type": ["Object Created", "Object Deleted"],
            "detail": {"object": {"key": [{"prefix": p} for p in TEMPLATE_WATCHED_PREFIXES]}},
        },
        queue="templates",
        bus=DEFAULT_BUS,
    ),
)

# What the SES configuration set publishes to the default bus (SESv2 MatchingEventTypes). BOUNCE
# covers hard bounces, and soft bounces only once SES has given up retrying. DELIVERY, OPEN and CLICK
# feed the report's delivered/opened/clicked per journey step (OPEN and CLICK make SES add its open
# pixel and wrap the body's links); SEND, REJECT, DELIVERY_DELAY would cost matching for nothing.
SES_FEEDBACK_EVENT_TYPES: tuple[str, ...] = ("BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK")


@dataclass(frozen=True)
class StateMachineSpec:
    id: str = "journey"
    step_function: str = "journey_step"
    # Execution logging (CloudWatch Logs, never execution data): ERROR writes only failures. ALL
    # writes ~15 records per execution (~3 KB a step), costing about what the step λ does; an
    # operator debugging a journey deploys with `-c journeyLogLevel=ALL` (ALL, ERROR, FATAL, OFF).
    log_level: str = "ERROR"
    # Lambda errors worth retrying inside the execution (throttles, cold-start hiccups).
    retry_errors: tuple[str, ...] = field(
        default=(
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        )
    )

    def definition(self, step_function_arn: str) -> dict[str, Any]:
        """The generic journey loop: Wait(SecondsPath) -> step λ -> Choice (wait again / done)."""
        return {
            "Comment": "Boomerang journey instance: the step function decides, this loop only waits",
            "StartAt": "Wait",
            "States": {
                "Wait": {"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "Step"},
                "Step": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": step_function_arn, "Payload.$": "$"},
                    "OutputPath": "$.Payload",
                    "Retry": [
                        {
                            # a provider throttled (SES rate, SNS, Pinpoint): the step gave its claim
                            # back, so trying again later sends exactly once
                            "ErrorEquals": ["TransientSendError"],
                            "IntervalSeconds": 30,
                            "MaxAttempts": 8,
                            "BackoffRate": 2,
                            "MaxDelaySeconds": 900,
                            "JitterStrategy": "FULL",
                        },
                        {
                            # lost an optimistic-concurrency race on the customer's records: soon again
                            "ErrorEquals": ["CapConflict", "ConcurrentUpdate"],
                            "IntervalSeconds": 1,
                            "MaxAttempts": 10,
                            "BackoffRate": 2,
                            "MaxDelaySeconds": 60,
                            "JitterStrategy": "FULL",
                        },
                        {
                            "ErrorEquals": list(self.retry_errors),
                            "IntervalSeconds": 2,
                            "MaxAttempts": 6,
                            "BackoffRate": 2,
                            "JitterStrategy": "FULL",
                        },
                        {
                            "ErrorEquals": ["States.ALL"],
                            "IntervalSeconds": 10,
                            "MaxAttempts": 3,
                            "BackoffRate": 3,
                        },
                    ],
                    "Next": "Decide",
                },
                "Decide": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.action", "StringEquals": "wait", "Next": "Wait"}],
                    "Default": "Done",
                },
                "Done": {"Type": "Succeed"},
            },
        }

    def definition_json(self, step_function_arn: str) -> str:
        return json.dumps(self.definition(step_function_arn), indent=2)


STATE_MACHINE = StateMachineSpec()

# Templates shipped with Boomerang; deployed to the bucket under this prefix.
TEMPLATES_DIR = "infra/templates"  # repo folder, relative to the repo root
DEFAULT_TEMPLATE_PREFIX = "templates/_default/"
# Journey files shipped with Boomerang (stores override them under journeys/<store>/).
JOURNEYS_DIR = "infra/journeys"
DEFAULT_JOURNEY_PREFIX = "journeys/_default/"
# Segment files shipped with Boomerang (stores override them under segments/<store>/).
SEGMENTS_DIR = "infra/segments"
DEFAULT_SEGMENT_PREFIX = "segments/_default/"
# What the functions read from the bucket: templates, journey and segment files, product collections.
BUCKET_READ_PREFIXES = ("templates/", "journeys/", "segments/", "catalog/", "partners/")


@dataclass(frozen=True)
class Expiry:
    """One S3 lifecycle rule. CDK states it on the bucket; the emulator sets it on moto's bucket,
    which stores lifecycle rules but never runs them, and its sweeper (infra/local/retention.py)
    deletes what the rule says, on Boomerang's clock."""

    prefix: str = ""  # "" = the whole bucket
    days: int | None = None  # current objects, counted from their creation
    noncurrent_days: int | None = None  # replaced versions, counted from their replacement
    abort_multipart_days: int | None = None
    id: str | None = None

    def s3_rule(self) -> dict[str, Any]:
        """The rule as PutBucketLifecycleConfiguration takes it."""
        rule: dict[str, Any] = {"Filter": {"Prefix": self.prefix}, "Status": "Enabled"}
        if self.id:
            rule["ID"] = self.id
        if self.days is not None:
            rule["Expiration"] = {"Days": self.days}
        if self.noncurrent_days is not None:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": self.noncurrent_days}
        if self.abort_multipart_days is not None:
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": self.abort_multipart_days}
        return rule


# Exports are full copies of the customer data, kept only while a report might be recomputed (and
# an erased customer is gone from them within a month); reports (metrics/) are kept.
ANALYTICS_LIFECYCLE = (
    Expiry(EXPORTS_PREFIX, days=EXPORT_RETENTION_DAYS, abort_multipart_days=1, id="expire-exports"),
)
# Every edit of a template stays recoverable for a year after a newer one replaced it.
TEMPLATES_LIFECYCLE = (Expiry(noncurrent_days=365),)
ACCESS_LOGS_LIFECYCLE = (Expiry(days=365),)  # AWS only: the emulator keeps no access logs


@dataclass(frozen=True)
class ApiSpec:
    function: str = "ingest"
    # Which API Gateway serves the routes (`cdk deploy -c api=http|rest`; README "HTTP API or REST
    # API"): HTTP API ($1.00 per million requests) unless a store must put AWS WAF on the endpoint.
    kinds: tuple[str, ...] = ("http", "rest")
    default_kind: str = "http"
    # (method, path) pairs served by the ingest function; CDK creates exactly these resources,
    # the emulator routes exactly these paths.
    routes: tuple[tuple[str, str], ...] = (
        ("POST", "/v1/batch"),
        ("POST", "/v1/track"),
        ("POST", "/v1/identify"),
        ("GET", "/v1/confirm"),
        ("POST", "/v1/confirm"),
        ("GET", "/v1/unsubscribe"),
        ("POST", "/v1/unsubscribe"),
        ("GET", "/v1/preferences"),
        ("POST", "/v1/preferences"),
        ("POST", "/v1/partners/{store}/{partner}/shipments"),  # a fulfilment partner's signed update
        # the store's backend answering data-subject requests (write key, like /v1/batch)
        ("POST", "/v1/customers/erase"),
        ("GET", "/v1/customers/export"),
        ("POST", "/v1/customers/export"),
        # store platforms' webhooks ({store}: the store id; the handler checks its signature)
        ("POST", "/v1/webhooks/shopify/{store}"),
        ("POST", "/v1/webhooks/woocommerce/{store}"),
        # the signup form: its script, its public settings and submissions ({key}: the publishable key)
        ("GET", "/v1/forms/boomerang.js"),
        ("GET", "/v1/forms/{key}/config"),
        ("OPTIONS", "/v1/forms/{key}/submit"),
        ("POST", "/v1/forms/{key}/submit"),
        # web push for the store's site: boomerang-sw.js, boomerang-webpush.js, config (public key)
        ("GET", "/v1/webpush/{store}/{name}"),
    )
    # REST: every body reaches the λ base64-encoded and byte for byte: a gzip'd batch (Content-Encoding)
    # would otherwise be mangled as text, and a webhook's HMAC is over the exact bytes sent.
    binary_media_types: tuple[str, ...] = ("*/*",)
    # HTTP API has no binaryMediaTypes: it hands the λ these content types as UTF-8 text and every
    # other one (or none) base64-encoded; the λ reads both the same way (ingest.read_body).
    http_text_media_types: tuple[str, ...] = (
        "text/*",
        "application/json",
        "application/xml",
        "application/javascript",
    )
    # REST only: its gateway response on a throttled request; an HTTP API's own 429 has no header
    throttled_retry_after_s: int = 5
    # REST only: URL https://<api>/prod/v1/batch. An HTTP API serves its $default stage at the root:
    # https://<api>/v1/batch. Either way the ApiUrl output ends in "/" and routes append to it.
    stage: str = "prod"
    # API Gateway stage throttling (per account/region share; REST stage and HTTP API stage alike)
    throttle_rate_limit: int = 500
    throttle_burst_limit: int = 1000
    # The public signup form's own limits (REST method or HTTP API route throttling): a flood of form
    # posts cannot use up the event API's share; per IP and per store the λ counts in the table too.
    form_submit_rate_limit: int = 20
    form_submit_burst_limit: int = 40


API = ApiSpec()

# Least privilege, proven (python -m infra.iam_check, README "DevOps"): granted IAM actions that no
# integration or e2e test exercises, each with the reason it stays. The check fails on an unused
# grant missing here, and on an entry here that the tests do use (so this list stays true).
# A journey, segment or partner file whose latest version is broken falls back to its last valid
# version (shared/platform/data_files.py: ListObjectVersions, then GetObjectVersion): only a broken
# upload takes that path; tests/integration/test_journey_catalog.py drives it through the catalog, not
# a handler, so no function's call is recorded there.
_DATA_FILE_FALLBACK = (
    "a broken data file falls back to its last valid version (shared/platform/data_files.py)"
)
_DATA_FILE_VERSIONS = {
    "s3:GetObjectVersion": _DATA_FILE_FALLBACK,
    "s3:ListBucketVersions": _DATA_FILE_FALLBACK,
}

UNEXERCISED_GRANTS: dict[str, dict[str, str]] = {
    "report": {
        # ExportTableToPointInTime writes the export into the bucket with the caller's permissions:
        # DynamoDB makes these calls, not the function (moto writes the export itself)
        "s3:AbortMultipartUpload": "DynamoDB's export writes exports/ as the caller",
        "s3:PutObjectAcl": "DynamoDB's export writes exports/ as the caller",
    },
    # added by CDK's RotationSchedule to every rotation function's role; Boomerang makes its keys itself
    "key_rotation": {"secretsmanager:GetRandomPassword": "added by CDK's Secret.addRotationSchedule"},
    # partners/ (the forwarders' configuration), journeys/ and segments/ are data files
    "ingest": dict(_DATA_FILE_VERSIONS),
    "profile": dict(_DATA_FILE_VERSIONS),
    "journey_trigger": dict(_DATA_FILE_VERSIONS),
    "partner_forwarder": dict(_DATA_FILE_VERSIONS),
    # it reads templates by version (GetObjectVersion is used), a broken journey file's history only on AWS
    "journey_step": {
        "s3:ListBucketVersions": _DATA_FILE_FALLBACK,
        # an offer pool's unique code is drawn in a transaction that checks the pool (offer_store.py)
        "dynamodb:ConditionCheckItem": "drawing a unique offer code checks its pool in the transaction",
        # on AWS the step λ is its own process and reads SES's MaxSendRate itself; in one test
        # process the trigger λ's cached read (shared/services/wiring.py `_send_rate`) serves both
        "ses:GetSendQuota": "a broadcast worker's pacing reads SES's MaxSendRate (cached per process)",
    },
}
