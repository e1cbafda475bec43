"""BoomerangStack, asserted property by property against infra/description.py.

The stack is synthesised once per module (jsii makes each synth cost seconds), with the same
context as `cdk synth` (cdk.json) and assets built without dependencies (no network).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Aspects
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.access_logs import HTTP_ACCESS_LOG_FORMAT, REST_ACCESS_LOG_FORMAT, template
from infra.app import build_app, cdk_json_context
from infra.constructs.api_http import route_key
from infra.constructs.journeys import STEP_FUNCTION_ARN_PLACEHOLDER
from infra.constructs.storage import TEMPLATES_PREFIX
from infra.description import (
    API,
    ARCHIVE_RETENTION_DAYS,
    BUCKET_READ_PREFIXES,
    BUS_NAME,
    DAILY_SCHEDULE,
    DEFAULT_BUS,
    DEFAULT_JOURNEY_PREFIX,
    DEFAULT_SEGMENT_PREFIX,
    DEFAULT_TEMPLATE_PREFIX,
    FUNCTIONS,
    FUNCTIONS_BY_ID,
    JOURNEYS_DIR,
    MONTHLY_REPORT_SCHEDULE,
    QUEUES,
    RULES,
    SEGMENTS_DIR,
    SES_FEEDBACK_EVENT_TYPES,
    SIGNING_KEY_ROTATION_DAYS,
    STATE_MACHINE,
    TABLE,
    TEMPLATES_DIR,
    FunctionSpec,
    Grant,
    QueueSpec,
)
from infra.stack import CONTEXT_API, api_kind
from shared.platform import settings as env
from shared.services.consent.feedback import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINT,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
)

# The IAM actions each abstract grant may turn into: written out here, independently of the
# construct that maps them, so a broadened grant fails this test.
GRANT_ACTIONS: dict[str, set[str]] = {
    Grant.TABLE_READ: {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"},
    Grant.TABLE_WRITE: {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    },
    Grant.BUS_PUT: {"events:PutEvents"},
    Grant.JOURNEY_START: {"states:StartExecution", "states:DescribeExecution"},
    # object versions too: a broken journey file falls back to its last valid version
    Grant.TEMPLATES_READ: {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions"},
    Grant.EMAIL_SEND: {"ses:SendEmail"},  # SESv2 authorises raw MIME sends as SendEmail
    Grant.SIGNING_SECRET_READ: {"secretsmanager:GetSecretValue"},
    Grant.VAPID_SECRET_READ: {"secretsmanager:GetSecretValue"},
    Grant.SMS_SEND: {"sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"},
    Grant.PUSH_SEND: {"mobiletargeting:SendMessages"},
    Grant.JOURNEY_TASKS: {"sqs:SendMessage"},
    Grant.TEMPLATES_VALIDATE: {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:ListBucketVersions",
    },
    Grant.REPORTS_PUBLISH: {"sns:Publish"},
    # DynamoDB writes the export into the bucket as the caller
    Grant.TABLE_EXPORT: {
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:DescribeExport",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:PutObjectAcl",
    },
    Grant.ANALYTICS_WRITE: {"s3:GetObject", "s3:ListBucket", "s3:PutObject"},
    Grant.REPORT_TASKS: {"sqs:SendMessage"},
    Grant.PARTNER_SECRETS_READ: {"secretsmanager:GetSecretValue"},
    Grant.PARTNER_TASKS: {"sqs:SendMessage"},
    Grant.TABLE_SCAN: {"dynamodb:Scan"},
    Grant.TABLE_BATCH_DELETE: {"dynamodb:BatchWriteItem"},
    Grant.JOURNEY_STOP: {"states:StopExecution"},
    Grant.SIGNING_SECRET_ROTATE: {
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:DescribeSecret",
        "secretsmanager:UpdateSecretVersionStage",
    },
    Grant.RATE_LIMIT: {"dynamodb:UpdateItem"},
    Grant.SEND_QUOTA_READ: {"ses:GetSendQuota"},
}
# The signup form's rate counters: the only table write the ingest λ has, on RATE#* partitions only.
RATE_LIMIT_CONDITION = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*"]}}
# CDK's rotation schedule adds this to the rotation function's role; it has no resource to scope to.
ROTATION_EXTRA_ACTIONS = {"secretsmanager:GetRandomPassword"}
# Where functions may read bucket objects: written out here too, so a broadened prefix fails.
READ_PREFIXES = ("templates/", "journeys/", "segments/", "catalog/", "partners/")
# The only actions allowed on Resource "*": a phone number has no ARN; the account's send quota is no resource.
WILDCARD_RESOURCE_ACTIONS = GRANT_ACTIONS[Grant.SMS_SEND] | GRANT_ACTIONS[Grant.SEND_QUOTA_READ]
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
SQS_CONSUMER_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}
COMMON_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}


def table_grant(spec: FunctionSpec, grant: str) -> set[str]:
    """A table grant's actions as the function narrows them to the ones it calls (its table_actions)."""
    actions = GRANT_ACTIONS[grant]
    narrowable = grant in (Grant.TABLE_READ, Grant.TABLE_WRITE) and spec.table_actions
    return actions & set(spec.table_actions) if narrowable else actions


TABLE_WRITES = GRANT_ACTIONS[Grant.TABLE_WRITE] | {"dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems"}


class Synth:
    """One synthesised stack and lookups over its template."""

    def __init__(
        self, context: dict[str, Any], build_dir: Path, account: str | None = None, region: str | None = None
    ) -> None:
        self.app, self.stack = build_app(
            context=context, build_dir=build_dir, with_dependencies=False, account=account, region=region
        )
        self.template = Template.from_stack(self.stack)
        self.json: dict[str, Any] = dict(self.template.to_json())
        self.resources: dict[str, dict[str, Any]] = self.json["Resources"]

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_}

    def only(self, type_: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.items()))

    def function_id(self, spec: FunctionSpec) -> str:
        matches = [
            k
            for k, v in self.of_type("AWS::Lambda::Function").items()
            if v["Properties"]["Handler"] == spec.handler
        ]
        assert len(matches) == 1, f"{spec.id}: {matches}"
        return matches[0]

    def function(self, spec: FunctionSpec) -> dict[str, Any]:
        return self.resources[self.function_id(spec)]["Properties"]

    def role_id(self, spec: FunctionSpec) -> str:
        role = self.function(spec)["Role"]
        return str(role["Fn::GetAtt"][0])

    def statements(self, role_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return out

    def queue_consumed_by(self, spec: QueueSpec) -> str:
        function_id = self.function_id(FUNCTIONS_BY_ID[spec.consumer])
        mappings = [
            m["Properties"]
            for m in self.of_type("AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["FunctionName"] == {"Ref": function_id}
        ]
        assert len(mappings) == 1
        return str(mappings[0]["EventSourceArn"]["Fn::GetAtt"][0])


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _key(resource: Any) -> str:
    return json.dumps(resource, sort_keys=True)


def _allowed(statements: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Action -> every resource it is allowed on, however CDK merged or split the statements."""
    out: dict[str, dict[str, Any]] = {}
    for statement in statements:
        if statement.get("Condition") == RATE_LIMIT_CONDITION:
            continue  # the form's rate counters: see test_ingest_reads_but_cannot_write_the_table
        assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
        for action in _actions(statement):
            out.setdefault(action, {}).update({_key(r): r for r in _resources(statement)})
    return {action: [found[k] for k in sorted(found)] for action, found in out.items()}


def _sorted(resources: list[Any]) -> list[Any]:
    return sorted(resources, key=_key)


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _under(arn: dict[str, Any], suffix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [arn, suffix]]}


def _table_and_indexes(table_id: str) -> list[Any]:
    return _sorted([_arn(table_id), _under(_arn(table_id), "/index/*")])


def _nag_waivers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return list(resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []))


def _journey_queue_id(synth: Synth) -> str:
    journey = next(q for q in QUEUES if q.id == "journey")
    assert journey.consumer == "journey_trigger"
    return synth.queue_consumed_by(journey)


def _delivery_dlq_id(synth: Synth) -> str:
    """The one queue every rule target sends undeliverable events to (no function consumes it)."""
    dlqs = {
        target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        for rule in synth.of_type("AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
    }
    assert len(dlqs) == 1, dlqs
    (dlq,) = dlqs
    assert dlq not in {synth.queue_consumed_by(q) for q in QUEUES}
    return dlq


def _queue_allows_rule(synth: Synth, queue_id: str, rule_id: str) -> bool:
    """The queue's policy lets EventBridge send to it on behalf of exactly this rule."""
    return any(
        statement["Effect"] == "Allow"
        and statement["Principal"] == {"Service": "events.amazonaws.com"}
        and "sqs:SendMessage" in _actions(statement)
        and statement["Resource"] == _arn(queue_id)
        and statement.get("Condition") == {"ArnEquals": {"aws:SourceArn": _arn(rule_id)}}
        for policy in synth.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    )


def _context() -> dict[str, Any]:
    return cdk_json_context()  # the feature flags `cdk synth` uses


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield Synth(_context(), tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def synth_with_sender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    # Also pinned to an account and region, as `cdk deploy` synthesises it: ARNs then render with
    # literal regions, which per-finding suppressions must still match.
    yield Synth(
        # (and an operator's log levels: every function's debug lines and Lambda's REPORT lines)
        {**_context(), "senderDomain": "shop.example", "logLevel": "debug", "lambdaSystemLogLevel": "info"},
        tmp_path_factory.mktemp("build"),
        account="123456789012",
        region="eu-west-1",
    )


@pytest.fixture(scope="module")
def synth_rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    # The REST API choice (`-c api=rest`), also pinned to an account and region like a deploy
    yield Synth(
        {**_context(), CONTEXT_API: "rest"},
        tmp_path_factory.mktemp("build"),
        account="123456789012",
        region="us-east-1",
    )


# --- cdk-nag -------------------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_runs_on_the_app(synth: Synth) -> None:
    assert any(isinstance(aspect, AwsSolutionsChecks) for aspect in Aspects.of(synth.app).all)


@pytest.mark.parametrize("which", ["synth", "synth_with_sender", "synth_rest"])
def test_cdk_nag_finds_no_unsuppressed_errors_or_warnings(which: str, request: pytest.FixtureRequest) -> None:
    s: Synth = request.getfixturevalue(which)
    annotations = Annotations.from_stack(s.stack)
    nag = Match.string_like_regexp("AwsSolutions-.*")
    errors = [f"{e.id}: {e.entry.data}" for e in annotations.find_error("*", nag)]
    warnings = [f"{w.id}: {w.entry.data}" for w in annotations.find_warning("*", nag)]
    assert errors == []
    assert warnings == []


def test_every_suppression_is_per_resource_with_a_reason(synth: Synth) -> None:
    assert "cdk_nag" not in synth.json.get("Metadata", {}), "no stack-wide suppressions"
    suppressions = [
        rule
        for resource in synth.resources.values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert suppressions
    for rule in suppressions:
        assert rule["id"].startswith("AwsSolutions-")
        assert len(rule["reason"]) >= 40, rule


# --- storage -------------------------------------------------------------------------------------


def test_table_keys_billing_encryption_recovery_and_retention(synth: Synth) -> None:
    table_id, table = synth.only("AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": TABLE.partition_key, "KeyType": "HASH"},
        {"AttributeName": TABLE.sort_key, "KeyType": "RANGE"},
    ]
    # the stack and the emulator build the same keys and indexes from the one description
    described = TABLE.create_table_args("t")
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        described["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert indexes == {i["IndexName"]: i for i in described["GlobalSecondaryIndexes"]}
    assert set(indexes) == {
        "by-birthday",
        "by-anniversary",
        "at-risk",
        "by-sku",
        "stores",
        "buyers",
        "segments-due",
        "by-segment",
    }
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": TABLE.ttl_attribute, "Enabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def _reports_topic(synth: Synth) -> tuple[str, dict[str, Any]]:
    """The template reports topic (the alarms have their own: tests/infrastructure/test_alarms.py)."""
    [found] = [
        (k, v)
        for k, v in synth.of_type("AWS::SNS::Topic").items()
        if v["Properties"].get("DisplayName") == "Boomerang template reports"
    ]
    return found


def _templates_bucket_id(synth: Synth) -> str:
    versioned = [
        k
        for k, v in synth.of_type("AWS::S3::Bucket").items()
        if v["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    ]
    assert len(versioned) == 1
    return versioned[0]


def test_buckets_are_encrypted_private_and_ssl_only(synth: Synth) -> None:
    buckets = synth.of_type("AWS::S3::Bucket")
    assert len(buckets) == 3  # templates, analytics, and their access logs
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["DeletionPolicy"] == "Retain"
    for policy in synth.of_type("AWS::S3::BucketPolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert len(synth.of_type("AWS::S3::BucketPolicy")) == 3


def _analytics_bucket_id(synth: Synth) -> str:
    (found,) = [
        k
        for k, v in synth.of_type("AWS::S3::Bucket").items()
        if any(
            r.get("Prefix") == "exports/"
            for r in v["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
        )
    ]
    return found


def test_analytics_bucket_expires_exports_and_logs_access(synth: Synth) -> None:
    bucket = synth.resources[_analytics_bucket_id(synth)]
    props = bucket["Properties"]
    # exports are full copies of the customer data: gone after 30 days; reports (metrics/) are kept
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert (rule["Prefix"], rule["ExpirationInDays"], rule["Status"]) == ("exports/", 30, "Enabled")
    assert "VersioningConfiguration" not in props  # recomputable objects: no old versions kept around
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "analytics-bucket/"
    assert synth.json["Outputs"]["AnalyticsBucketName"]["Value"] == {"Ref": _analytics_bucket_id(synth)}


def test_report_role_exports_the_table_and_writes_only_its_prefixes(synth: Synth) -> None:
    spec = FUNCTIONS_BY_ID["report"]
    assert (spec.timeout_s, spec.memory_mb) == (900, 3008)  # Lambda's ceiling: README "Reports at scale"
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    bucket = _arn(_analytics_bucket_id(synth))
    queue = synth.queue_consumed_by(next(q for q in QUEUES if q.id == "report"))
    log_group_id = synth.function(spec)["LoggingConfig"]["LogGroup"]["Ref"]
    allowed = _allowed(synth.statements(synth.role_id(spec)))
    exports, metrics = _under(bucket, "/exports/*"), _under(bucket, "/metrics/*")
    assert allowed == {
        **dict.fromkeys(LOG_ACTIONS, [_arn(log_group_id)]),
        # the store list: the stores index (a Query), never a Scan
        "dynamodb:Query": _table_and_indexes(table_id),
        "dynamodb:ExportTableToPointInTime": [_arn(table_id)],
        "dynamodb:DescribeExport": [_under(_arn(table_id), "/export/*")],
        # DynamoDB writes the export under exports/ as the caller; the report λ writes metrics/
        "s3:PutObject": _sorted([exports, metrics]),
        "s3:AbortMultipartUpload": [exports],
        "s3:PutObjectAcl": [exports],
        "s3:GetObject": [exports],
        "s3:ListBucket": [bucket],
        **dict.fromkeys(SQS_CONSUMER_ACTIONS | {"sqs:SendMessage"}, [_arn(queue)]),
    }
    # no other function touches the analytics bucket or exports the table
    for other in FUNCTIONS:
        if other.id != "report":
            rendered = json.dumps(synth.statements(synth.role_id(other)))
            assert _analytics_bucket_id(synth) not in rendered and "Export" not in rendered, other.id


def test_monthly_report_schedule_feeds_the_report_queue(synth: Synth) -> None:
    (spec,) = [r for r in RULES if r.id == "monthly-report"]
    assert spec.schedule == MONTHLY_REPORT_SCHEDULE == "cron(0 3 1 * ? *)"  # the 1st, 03:00 UTC
    assert spec.pattern is None and spec.queue == "report"
    report = next(q for q in QUEUES if q.id == "report")
    assert report.consumer == "report" and report.batch_size == 1
    queue_id = synth.queue_consumed_by(report)
    ((rule_id, rule),) = [
        (k, r["Properties"])
        for k, r in synth.of_type("AWS::Events::Rule").items()
        if r["Properties"].get("ScheduleExpression") == MONTHLY_REPORT_SCHEDULE
    ]
    assert "EventPattern" not in rule and "EventBusName" not in rule
    (target,) = rule["Targets"]
    assert target["Arn"] == _arn(queue_id)
    assert _queue_allows_rule(synth, queue_id, rule_id)
    # a collect task may take the function's 15 minutes: the queue hides it 6 times as long
    assert synth.resources[queue_id]["Properties"]["VisibilityTimeout"] == 6 * 900


def test_templates_bucket_is_versioned_and_logs_access(synth: Synth) -> None:
    props = synth.resources[_templates_bucket_id(synth)]["Properties"]
    assert props["LoggingConfiguration"]["DestinationBucketName"]["Ref"] in synth.of_type("AWS::S3::Bucket")


def _asset_files(synth: Synth, object_key: str) -> list[str]:
    # a directory asset is staged in the cloud assembly as asset.<hash>/ and uploaded as <hash>.zip
    staged = Path(synth.app.synth().directory) / f"asset.{object_key.removesuffix('.zip')}"
    return _files(staged)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_default_templates_and_journeys_deploy_under_their_prefixes_without_pruning(synth: Synth) -> None:
    assert DEFAULT_TEMPLATE_PREFIX.startswith(TEMPLATES_PREFIX)
    assert DEFAULT_TEMPLATE_PREFIX == f"{TEMPLATES_PREFIX}_default/"  # infra/templates/ holds _default/
    assert DEFAULT_JOURNEY_PREFIX == "journeys/_default/"  # where shared.adapters.journey_catalog looks
    assert DEFAULT_SEGMENT_PREFIX == "segments/_default/"  # where shared.adapters.segment_catalog looks
    deployments = [d["Properties"] for d in synth.of_type("Custom::CDKBucketDeployment").values()]
    by_prefix = {props["DestinationBucketKeyPrefix"]: props for props in deployments}
    assert sorted(props["DestinationBucketKeyPrefix"] for props in deployments) == sorted(
        [TEMPLATES_PREFIX, DEFAULT_JOURNEY_PREFIX, DEFAULT_SEGMENT_PREFIX]
    )
    shipped = {
        TEMPLATES_PREFIX: TEMPLATES_DIR,
        DEFAULT_JOURNEY_PREFIX: JOURNEYS_DIR,
        DEFAULT_SEGMENT_PREFIX: SEGMENTS_DIR,
    }
    for prefix, props in by_prefix.items():
        assert props["DestinationBucketName"] == {"Ref": _templates_bucket_id(synth)}
        assert props["Prune"] is False  # marketers' per-store files live under the same prefixes
        assert props["RetainOnDelete"] is True
        # each prefix receives exactly its repo folder, file for file
        (object_key,) = props["SourceObjectKeys"]
        source = Path(__file__).resolve().parents[2] / shipped[prefix]
        assert _asset_files(synth, object_key) == _files(source) != [], prefix


def test_daily_schedule_feeds_the_journey_queue(synth: Synth) -> None:
    assert [r.id for r in RULES if r.schedule is not None] == [
        "daily-journeys",
        "monthly-report",
        "monthly-retention",
    ]
    (spec,) = [r for r in RULES if r.schedule == DAILY_SCHEDULE]
    assert spec.schedule == DAILY_SCHEDULE == "cron(0 12 * * ? *)"  # 12:00 UTC, every day
    assert spec.pattern is None and spec.bus == DEFAULT_BUS and spec.queue == "journey"
    scheduled = {
        k: r["Properties"]
        for k, r in synth.of_type("AWS::Events::Rule").items()
        if r["Properties"].get("ScheduleExpression") == DAILY_SCHEDULE
    }
    ((rule_id, rule),) = scheduled.items()
    assert rule["Description"] == spec.description
    assert rule["ScheduleExpression"] == DAILY_SCHEDULE
    assert rule["State"] == "ENABLED"
    assert "EventPattern" not in rule
    assert "EventBusName" not in rule  # schedules run on the default bus
    journey_queue = _journey_queue_id(synth)  # the journey_trigger function's event source
    (target,) = rule["Targets"]
    assert target["Arn"] == _arn(journey_queue)
    assert target["DeadLetterConfig"] == {"Arn": _arn(_delivery_dlq_id(synth))}
    assert _queue_allows_rule(synth, journey_queue, rule_id)


def test_monthly_retention_sweep_feeds_the_privacy_queue(synth: Synth) -> None:
    (spec,) = [r for r in RULES if r.id == "monthly-retention"]
    assert spec.schedule == "cron(0 4 2 * ? *)" and spec.queue == "privacy" and spec.bus == DEFAULT_BUS
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression") == spec.schedule
    ]
    assert rule["Description"] == spec.description and len(rule["Targets"]) == 1


def test_signing_secret_rotates_on_schedule_through_the_key_rotation_function(synth: Synth) -> None:
    (schedule,) = synth.of_type("AWS::SecretsManager::RotationSchedule").values()
    props = schedule["Properties"]
    assert props["RotationRules"]["ScheduleExpression"] == f"rate({SIGNING_KEY_ROTATION_DAYS} days)"
    rotation_fn = synth.function_id(FUNCTIONS_BY_ID["key_rotation"])
    assert props["RotationLambdaARN"] == {"Fn::GetAtt": [rotation_fn, "Arn"]}
    assert props["SecretId"] == {"Ref": _secret(synth, "unsubscribe")[0]}


def _secret(synth: Synth, described: str) -> tuple[str, dict[str, Any]]:
    [found] = [
        (rid, r)
        for rid, r in synth.of_type("AWS::SecretsManager::Secret").items()
        if described in r["Properties"]["Description"]
    ]
    return found


def test_signing_secret_is_generated_and_retained(synth: Synth) -> None:
    _, secret = _secret(synth, "unsubscribe")
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert secret["DeletionPolicy"] == "Retain"


def test_vapid_root_is_generated_retained_never_rotated_and_read_by_the_senders_only(synth: Synth) -> None:
    vapid_id, secret = _secret(synth, "VAPID")
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert secret["DeletionPolicy"] == "Retain"
    rotated = [
        s["Properties"]["SecretId"] for s in synth.of_type("AWS::SecretsManager::RotationSchedule").values()
    ]
    assert {"Ref": vapid_id} not in rotated
    for spec in FUNCTIONS:
        env_vars = synth.function(spec).get("Environment", {}).get("Variables", {})
        assert (env_vars.get("VAPID_SECRET_ARN") == {"Ref": vapid_id}) == (
            Grant.VAPID_SECRET_READ in spec.grants
        )


# --- functions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.id)
def test_function_runtime_architecture_and_sizing(spec: FunctionSpec, synth: Synth) -> None:
    props = synth.function(spec)
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == spec.handler
    assert props["MemorySize"] == spec.memory_mb
    assert props["Timeout"] == spec.timeout_s
    assert props.get("ReservedConcurrentExecutions") == spec.reserved_concurrency
    # its own log group, with a retention
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert synth.resources[log_group_id]["Properties"]["RetentionInDays"] > 0


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.id)
def test_function_environment_is_exactly_the_description(spec: FunctionSpec, synth: Synth) -> None:
    variables = synth.function(spec)["Environment"]["Variables"]
    assert set(variables) == set(spec.env) | COMMON_ENV
    assert variables["POWERTOOLS_SERVICE_NAME"] == "boomerang"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Boomerang"
    assert variables["LOG_LEVEL"] == "INFO"


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.id)
def test_function_logs_json_at_its_level_without_lambdas_own_lines(spec: FunctionSpec, synth: Synth) -> None:
    # Lambda filters by level only in JSON; its START/END/REPORT lines are INFO system logs: dropped
    config = synth.function(spec)["LoggingConfig"]
    assert (config["LogFormat"], config["ApplicationLogLevel"], config["SystemLogLevel"]) == (
        "JSON",
        "INFO",
        "WARN",
    )


def test_an_operator_asks_for_debug_lines_and_lambdas_report_lines(synth_with_sender: Synth) -> None:
    for spec in FUNCTIONS:
        props = synth_with_sender.function(spec)
        assert props["Environment"]["Variables"]["LOG_LEVEL"] == "DEBUG"
        config = props["LoggingConfig"]
        assert (config["ApplicationLogLevel"], config["SystemLogLevel"]) == ("DEBUG", "INFO")


def test_environment_values_point_at_the_right_resources(synth: Synth) -> None:
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    bus_id, _ = synth.only("AWS::Events::EventBus")
    machine_id, _ = synth.only("AWS::StepFunctions::StateMachine")
    secret_id, _ = _secret(synth, "unsubscribe")
    vapid_id, _ = _secret(synth, "VAPID")
    config_set_id, _ = synth.only("AWS::SES::ConfigurationSet")
    api_id, _ = synth.only("AWS::ApiGatewayV2::Api")  # the default choice: an HTTP API
    push_app_id, _ = synth.only("AWS::Pinpoint::App")
    topic_id, _ = _reports_topic(synth)
    partners_queue = synth.queue_consumed_by(next(q for q in QUEUES if q.id == "partners"))
    expected = {
        env.TABLE_NAME: {"Ref": table_id},
        env.BUS_NAME: {"Ref": bus_id},
        env.TEMPLATES_BUCKET: {"Ref": _templates_bucket_id(synth)},
        env.STATE_MACHINE_ARN: {"Ref": machine_id},
        env.SIGNING_SECRET_ARN: {"Ref": secret_id},
        env.EMAIL_CONFIGURATION_SET: {"Ref": config_set_id},
        env.PUSH_APP_ID: {"Ref": push_app_id},
        env.VAPID_SECRET_ARN: {"Ref": vapid_id},
        # Ref of an AWS::SQS::Queue is its URL (what sqs.send_message takes), not its ARN
        env.JOURNEY_QUEUE_URL: {"Ref": _journey_queue_id(synth)},
        env.REPORTS_TOPIC_ARN: {"Ref": topic_id},
        env.TABLE_ARN: _arn(table_id),
        env.ANALYTICS_BUCKET: {"Ref": _analytics_bucket_id(synth)},
        env.REPORT_QUEUE_URL: {"Ref": synth.queue_consumed_by(next(q for q in QUEUES if q.id == "report"))},
        env.PARTNERS_QUEUE_URL: {"Ref": partners_queue},
        env.PARTNERS_DLQ_URL: {"Ref": _dlq_of(synth, partners_queue)},
    }
    assert set(expected) | {env.UNSUBSCRIBE_BASE_URL} >= {name for spec in FUNCTIONS for name in spec.env}
    for spec in FUNCTIONS:
        variables = synth.function(spec)["Environment"]["Variables"]
        for name in spec.env:
            if name == env.UNSUBSCRIBE_BASE_URL:
                # https://<api id>.execute-api.<region>.<suffix>/ (the HTTP API's $default stage)
                url = json.dumps(variables[name])
                assert f'{{"Ref": "{api_id}"}}' in url and "https://" in url
            else:
                assert variables[name] == expected[name], (spec.id, name)


def _dlq_of(synth: Synth, queue_id: str) -> str:
    redrive = synth.resources[queue_id]["Properties"]["RedrivePolicy"]
    return str(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0])


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.id)
def test_function_role_allows_exactly_its_grants(spec: FunctionSpec, synth: Synth) -> None:
    role_id = synth.role_id(spec)
    role = synth.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole
    assert "Policies" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }

    expected = set(LOG_ACTIONS)
    for grant in spec.grants:
        expected |= table_grant(spec, grant)
    if any(q.consumer == spec.id for q in QUEUES):
        expected |= SQS_CONSUMER_ACTIONS
    wildcard = WILDCARD_RESOURCE_ACTIONS
    if Grant.SIGNING_SECRET_ROTATE in spec.grants:
        expected |= ROTATION_EXTRA_ACTIONS
        wildcard = wildcard | ROTATION_EXTRA_ACTIONS
    statements = synth.statements(role_id)
    assert set().union(*(_actions(s) for s in statements)) == expected
    for statement in statements:
        assert statement["Effect"] == "Allow"
        if "*" in _resources(statement):
            assert _resources(statement) == ["*"] and _actions(statement) <= wildcard, statement


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.id)
def test_function_writes_logs_only_to_its_own_log_group(spec: FunctionSpec, synth: Synth) -> None:
    log_group_id = synth.function(spec)["LoggingConfig"]["LogGroup"]["Ref"]
    for statement in synth.statements(synth.role_id(spec)):
        if _actions(statement) & LOG_ACTIONS:
            assert _resources(statement) == [{"Fn::GetAtt": [log_group_id, "Arn"]}]


def test_ingest_reads_but_cannot_write_the_table(synth: Synth) -> None:
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    all_statements = synth.statements(synth.role_id(FUNCTIONS_BY_ID["ingest"]))
    # but for the signup form's rate counters: UpdateItem on RATE#* partitions, nothing else
    counters = [s for s in all_statements if s.get("Condition") == RATE_LIMIT_CONDITION]
    assert [(_actions(s), _resources(s)) for s in counters] == [({"dynamodb:UpdateItem"}, [_arn(table_id)])]
    statements = [s for s in all_statements if s not in counters]
    actions = set().union(*(_actions(s) for s in statements))
    assert not actions & TABLE_WRITES
    assert not any(a in {"dynamodb:*", "*"} for a in actions)
    allowed = _allowed(statements)
    assert {a for a in allowed if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:Scan"}
    for action in table_grant(FUNCTIONS_BY_ID["ingest"], Grant.TABLE_READ):
        assert allowed[action] == _table_and_indexes(table_id), action


def test_journey_trigger_role_allows_its_grants_on_exactly_their_resources(synth: Synth) -> None:
    spec = FUNCTIONS_BY_ID["journey_trigger"]
    assert spec.timeout_s == 60
    machine_id, _ = synth.only("AWS::StepFunctions::StateMachine")
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    bucket_arn = _arn(_templates_bucket_id(synth))
    journey_queue = _journey_queue_id(synth)
    log_group_id = synth.function(spec)["LoggingConfig"]["LogGroup"]["Ref"]
    allowed = _allowed(synth.statements(synth.role_id(spec)))

    describe = allowed.pop("states:DescribeExecution")
    expected: dict[str, list[Any]] = {
        **dict.fromkeys(LOG_ACTIONS, [_arn(log_group_id)]),
        "states:StartExecution": [{"Ref": machine_id}],
        # store settings, audiences (index queries) and re-entry records
        **dict.fromkeys(table_grant(spec, Grant.TABLE_READ), _table_and_indexes(table_id)),
        **dict.fromkeys(table_grant(spec, Grant.TABLE_WRITE), [_arn(table_id)]),
        # journey files (and their earlier versions), templates, catalog, active template versions
        **dict.fromkeys(
            ("s3:GetObject", "s3:GetObjectVersion"),
            _sorted([_under(bucket_arn, f"/{prefix}*") for prefix in (*READ_PREFIXES, "active/")]),
        ),
        **dict.fromkeys(("s3:ListBucket", "s3:ListBucketVersions"), [bucket_arn]),
        # its own queue: consumed as the event source, and an audience's next page sent back to it
        **dict.fromkeys(SQS_CONSUMER_ACTIONS | {"sqs:SendMessage"}, [_arn(journey_queue)]),
        # the account's SES rate: how many workers a broadcast's send instant gets (no resource to scope)
        "ses:GetSendQuota": ["*"],
    }
    assert allowed == expected

    # It may look at (never start or stop) executions of that state machine only, to tell a running
    # journey from one that ended before a cart was shopped again
    (resource,) = describe
    parts = resource["Fn::Join"][1]
    assert ":execution:" in parts and parts[-1] == ":*"
    assert {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": machine_id}]}]} in parts  # its name


def test_only_the_journeys_and_the_report_send_to_a_queue_their_own(synth: Synth) -> None:
    report_queue = synth.queue_consumed_by(next(q for q in QUEUES if q.id == "report"))
    partners_queue = synth.queue_consumed_by(next(q for q in QUEUES if q.id == "partners"))
    for spec in FUNCTIONS:
        allowed = _allowed(synth.statements(synth.role_id(spec)))
        sends = allowed.get("sqs:SendMessage")
        if Grant.JOURNEY_TASKS in spec.grants:
            assert sends == [_arn(_journey_queue_id(synth))], spec.id
        elif Grant.REPORT_TASKS in spec.grants:
            assert sends == [_arn(report_queue)], spec.id
        elif Grant.PARTNER_TASKS in spec.grants:  # its next attempt, and what it gives up on
            expected = [_arn(partners_queue), _arn(_dlq_of(synth, partners_queue))]
            assert sorted(map(json.dumps, sends or [])) == sorted(map(json.dumps, expected)), spec.id
        else:
            assert sends is None, spec.id
    # the trigger: an audience's next page; the step: a broadcast member handed to their own execution
    assert [s.id for s in FUNCTIONS if Grant.JOURNEY_TASKS in s.grants] == ["journey_trigger", "journey_step"]
    assert [s.id for s in FUNCTIONS if Grant.REPORT_TASKS in s.grants] == ["report"]


def test_table_readers_may_query_its_indexes_with_a_waiver_on_their_own_role(synth: Synth) -> None:
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    index_waiver = f"Resource::<{table_id}.Arn>/index/*"
    for spec in FUNCTIONS:
        role_id = synth.role_id(spec)
        allowed = _allowed(synth.statements(role_id))
        waived = [
            w
            for w in _nag_waivers(synth.resources[role_id])
            if w["id"] == "AwsSolutions-IAM5" and index_waiver in w.get("applies_to", [])
        ]
        if Grant.TABLE_READ in spec.grants:
            for action in table_grant(spec, Grant.TABLE_READ):
                assert allowed[action] == _table_and_indexes(table_id), (spec.id, action)
            # narrowed: what it does not call is not granted (python -m infra.iam_check proves the rest)
            assert set(allowed) & GRANT_ACTIONS[Grant.TABLE_READ] == table_grant(spec, Grant.TABLE_READ)
            (waiver,) = waived  # on this role, for exactly the index wildcard
            assert waiver["applies_to"] == [index_waiver]
        else:
            assert not set(allowed) & GRANT_ACTIONS[Grant.TABLE_READ], spec.id
            assert waived == [], spec.id
        # writes never reach an index (they cannot), nor any other table
        for action in TABLE_WRITES & set(allowed):
            assert allowed[action] == [_arn(table_id)], (spec.id, action)


def test_queue_consumers_read_only_their_own_queue(synth: Synth) -> None:
    for queue in QUEUES:
        queue_id = synth.queue_consumed_by(queue)
        statements = synth.statements(synth.role_id(FUNCTIONS_BY_ID[queue.consumer]))
        sqs = [s for s in statements if _actions(s) & SQS_CONSUMER_ACTIONS]
        assert [_resources(s) for s in sqs] == [[{"Fn::GetAtt": [queue_id, "Arn"]}]]


def test_bucket_readers_read_only_the_four_prefixes(synth: Synth) -> None:
    assert BUCKET_READ_PREFIXES == READ_PREFIXES
    assert DEFAULT_TEMPLATE_PREFIX.startswith(READ_PREFIXES[0]) and TEMPLATES_PREFIX == READ_PREFIXES[0]
    assert DEFAULT_JOURNEY_PREFIX.startswith(READ_PREFIXES[1])
    assert DEFAULT_SEGMENT_PREFIX.startswith(READ_PREFIXES[2])
    bucket_arn = _arn(_templates_bucket_id(synth))
    # and the validator's active-version records, which say which template versions may be sent
    objects = _sorted([_under(bucket_arn, f"/{prefix}*") for prefix in (*READ_PREFIXES, "active/")])
    readers = [spec for spec in FUNCTIONS if Grant.TEMPLATES_READ in spec.grants]
    # the profile λ reads segment files: the fold keeps memberships current
    # the ingest λ (partners' shipment updates) and the forwarder read partner files
    assert {spec.id for spec in readers} == {
        "journey_trigger",
        "journey_step",
        "profile",
        "ingest",
        "partner_forwarder",
    }
    for spec in FUNCTIONS:
        allowed = _allowed(synth.statements(synth.role_id(spec)))
        s3 = {action: resources for action, resources in allowed.items() if action.startswith("s3:")}
        if spec in readers:
            assert s3 == {
                "s3:GetObject": objects,
                "s3:GetObjectVersion": objects,
                # on the bucket itself: a missing key is then a 404, not a 403
                "s3:ListBucket": [bucket_arn],
                "s3:ListBucketVersions": [bucket_arn],
            }, spec.id
        elif Grant.TEMPLATES_VALIDATE not in spec.grants and Grant.ANALYTICS_WRITE not in spec.grants:
            assert s3 == {}, spec.id  # the validator and the report λ: see their own tests


def test_template_validator_writes_only_records_and_reports(synth: Synth) -> None:
    bucket_arn = _arn(_templates_bucket_id(synth))
    statements = synth.statements(synth.role_id(FUNCTIONS_BY_ID["template_validator"]))
    (put,) = [s for s in statements if "s3:PutObject" in _actions(s)]
    assert _actions(put) == {"s3:PutObject"}
    assert _sorted(_resources(put)) == _sorted(
        [_under(bucket_arn, "/active/*"), _under(bucket_arn, "/reports/*")]
    )
    topic_id, _ = _reports_topic(synth)
    (publish,) = [s for s in statements if "sns:Publish" in _actions(s)]
    assert _resources(publish) == [{"Ref": topic_id}]


def test_template_uploads_reach_the_validator_through_the_default_bus(synth: Synth) -> None:
    bucket = synth.resources[_templates_bucket_id(synth)]
    notifications = [r for r in synth.resources.values() if r["Type"] == "Custom::S3BucketNotifications"]
    assert [n["Properties"]["NotificationConfiguration"] for n in notifications] == [
        {"EventBridgeConfiguration": {}}
    ]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = [
        r["Properties"]
        for r in synth.resources.values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    assert len(rules) == 1 and rules[0].get("EventBusName", "default") == "default"  # where S3 publishes
    keys = rules[0]["EventPattern"]["detail"]["object"]["key"]
    assert keys == [
        {"prefix": "templates/"},
        {"prefix": "journeys/"},
        {"prefix": "segments/"},
        {"prefix": "partners/"},
    ]


def test_reports_topic_is_encrypted_and_tls_only(synth: Synth) -> None:
    topic_id, topic = _reports_topic(synth)
    assert "alias/aws/sns" in json.dumps(topic["Properties"]["KmsMasterKeyId"])
    policies = [r for r in synth.resources.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    assert any('"aws:SecureTransport": "false"' in json.dumps(p) for p in policies)


def test_email_send_is_scoped_to_the_configuration_set(synth: Synth) -> None:
    config_set_id, _ = synth.only("AWS::SES::ConfigurationSet")
    statements = synth.statements(synth.role_id(FUNCTIONS_BY_ID["journey_step"]))
    (send,) = [s for s in statements if _actions(s) & GRANT_ACTIONS[Grant.EMAIL_SEND]]
    rendered = json.dumps(_resources(send))
    assert ":configuration-set/" in rendered and config_set_id in rendered


def test_email_send_is_scoped_to_the_sender_identity_when_given(synth_with_sender: Synth) -> None:
    identity_id, identity = synth_with_sender.only("AWS::SES::EmailIdentity")
    assert identity["Properties"]["EmailIdentity"] == "shop.example"
    statements = synth_with_sender.statements(synth_with_sender.role_id(FUNCTIONS_BY_ID["journey_step"]))
    (send,) = [s for s in statements if _actions(s) & GRANT_ACTIONS[Grant.EMAIL_SEND]]
    rendered = json.dumps(_resources(send))
    assert "*" not in rendered
    assert f'":identity/", {{"Ref": "{identity_id}"}}' in rendered


def test_sms_send_is_exactly_publish_and_the_opt_out_check(synth: Synth) -> None:
    statements = synth.statements(synth.role_id(FUNCTIONS_BY_ID["journey_step"]))
    sms = [s for s in statements if any(a.startswith("sns:") for a in _actions(s))]
    # CDK merges the statements on "*": SMS and the broadcast pacing's read of the SES send quota
    wildcard = GRANT_ACTIONS[Grant.SMS_SEND] | GRANT_ACTIONS[Grant.SEND_QUOTA_READ]
    assert [(_actions(s), _resources(s)) for s in sms] == [(wildcard, ["*"])]
    # and no other function may text anyone (the validator publishes to its own topic only)
    for spec in FUNCTIONS:
        if Grant.SMS_SEND not in spec.grants:
            for statement in synth.statements(synth.role_id(spec)):
                if any(a.startswith("sns:") for a in _actions(statement)):
                    assert _actions(statement) == {"sns:Publish"}, spec.id
                    assert "*" not in json.dumps(_resources(statement)), spec.id


def test_push_application_and_send_scoped_to_its_messages(synth: Synth) -> None:
    app_id, app = synth.only("AWS::Pinpoint::App")
    assert app["Properties"]["Name"] == "boomerang"
    statements = synth.statements(synth.role_id(FUNCTIONS_BY_ID["journey_step"]))
    (send,) = [s for s in statements if _actions(s) & GRANT_ACTIONS[Grant.PUSH_SEND]]
    assert _actions(send) == {"mobiletargeting:SendMessages"}
    (resource,) = _resources(send)
    parts = resource["Fn::Join"][1]
    # arn:<partition>:mobiletargeting:<region>:<account>:apps/<app id>/messages
    assert parts[2:] == [
        ":mobiletargeting:",
        {"Ref": "AWS::Region"},
        ":",
        {"Ref": "AWS::AccountId"},
        ":apps/",
        {"Ref": app_id},
        "/messages",
    ]


def test_no_sender_identity_by_default(synth: Synth) -> None:
    assert synth.of_type("AWS::SES::EmailIdentity") == {}


# --- bus and queues ------------------------------------------------------------------------------


def test_bus_and_archive(synth: Synth) -> None:
    bus_id, bus = synth.only("AWS::Events::EventBus")
    assert bus["Properties"]["Name"] == BUS_NAME
    _, archive = synth.only("AWS::Events::Archive")
    assert archive["Properties"]["RetentionDays"] == ARCHIVE_RETENTION_DAYS
    assert archive["Properties"]["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}


def test_every_queue_is_encrypted_and_ssl_only(synth: Synth) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    assert len(queues) == 2 * len(QUEUES) + 1  # queue + DLQ each, and the rules' delivery DLQ
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    guarded: set[str] = set()
    for policy in synth.of_type("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                guarded |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert guarded == set(queues)


@pytest.mark.parametrize("spec", QUEUES, ids=lambda q: q.id)
def test_queue_has_dlq_visibility_and_batching_from_the_description(spec: QueueSpec, synth: Synth) -> None:
    queue_id = synth.queue_consumed_by(spec)
    queue = synth.resources[queue_id]["Properties"]
    assert queue["VisibilityTimeout"] == spec.visibility_timeout_s
    redrive = queue["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == spec.max_receive_count
    dlq_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert synth.resources[dlq_id]["Properties"]["MessageRetentionPeriod"] == spec.dlq_retention_days * 86400

    function_id = synth.function_id(FUNCTIONS_BY_ID[spec.consumer])
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": function_id},
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "BatchSize": spec.batch_size,
            "MaximumBatchingWindowInSeconds": spec.max_batching_window_s,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_rules_match_the_description_and_target_their_queue(synth: Synth) -> None:
    bus_id, _ = synth.only("AWS::Events::EventBus")
    rules = {
        r["Properties"]["Description"]: (k, r["Properties"])
        for k, r in synth.of_type("AWS::Events::Rule").items()
    }
    assert sorted(rules) == sorted(spec.description for spec in RULES)
    queue_by_id = {q.id: q for q in QUEUES}
    delivery_dlq = _delivery_dlq_id(synth)
    for spec in RULES:
        rule_id, rule = rules[spec.description]
        assert rule["State"] == "ENABLED"
        # exactly one of a pattern (on its bus) and a schedule (on the default bus)
        assert (spec.pattern is None) != (spec.schedule is None), spec.id
        if spec.pattern is not None:
            assert rule["EventPattern"] == spec.pattern, spec.id
            assert rule["EventBusName"] == ({"Ref": bus_id} if spec.bus == BUS_NAME else spec.bus)
            assert "ScheduleExpression" not in rule
        else:
            assert rule["ScheduleExpression"] == spec.schedule, spec.id
            assert spec.bus == DEFAULT_BUS and "EventBusName" not in rule
            assert "EventPattern" not in rule
        (target,) = rule["Targets"]
        queue_id = synth.queue_consumed_by(queue_by_id[spec.queue])
        assert target["Arn"] == _arn(queue_id), spec.id
        assert target["DeadLetterConfig"] == {"Arn": _arn(delivery_dlq)}
        assert _queue_allows_rule(synth, queue_id, rule_id), spec.id
        assert _queue_allows_rule(synth, delivery_dlq, rule_id), spec.id


def test_every_track_event_is_offered_to_journeys(synth: Synth) -> None:
    (spec,) = [r for r in RULES if r.id == "to-journeys"]
    assert spec.pattern == {"source": ["boomerang.ingest"], "detail-type": ["track"]}  # no event-name filter
    assert spec.bus == BUS_NAME and spec.queue == "journey"
    bus_id, _ = synth.only("AWS::Events::EventBus")
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"]["Description"] == spec.description
    ]
    assert rule["EventPattern"] == {"source": ["boomerang.ingest"], "detail-type": ["track"]}
    assert rule["EventBusName"] == {"Ref": bus_id}
    assert rule["Targets"][0]["Arn"] == _arn(_journey_queue_id(synth))


def test_ses_feedback_rule_listens_on_the_default_bus_for_bounces_and_complaints(synth: Synth) -> None:
    (rule,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.ses"]
    ]
    assert rule["EventBusName"] == DEFAULT_BUS == "default"  # SES publishes nowhere else
    assert rule["EventPattern"] == {
        "source": ["aws.ses"],
        "detail-type": [EMAIL_BOUNCED, EMAIL_COMPLAINT, EMAIL_DELIVERED, EMAIL_OPENED, EMAIL_CLICKED],
    }
    (target,) = rule["Targets"]
    feedback_queue = synth.queue_consumed_by(next(q for q in QUEUES if q.id == "feedback"))
    assert target["Arn"] == {"Fn::GetAtt": [feedback_queue, "Arn"]}
    # the stack never creates or changes the default bus itself
    assert len(synth.of_type("AWS::Events::EventBus")) == 1


def test_configuration_set_publishes_bounces_and_complaints_to_the_default_bus(synth: Synth) -> None:
    config_set_id, _ = synth.only("AWS::SES::ConfigurationSet")
    _, destination = synth.only("AWS::SES::ConfigurationSetEventDestination")
    props = destination["Properties"]
    assert props["ConfigurationSetName"] == {"Ref": config_set_id}
    event_destination = props["EventDestination"]
    assert event_destination["Enabled"] is True
    assert (
        set(event_destination["MatchingEventTypes"])
        == set(SES_FEEDBACK_EVENT_TYPES)
        == {"BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK"}
    )
    bus_arn = json.dumps(event_destination["EventBridgeDestination"]["EventBusArn"])
    assert ":events:" in bus_arn and ":event-bus/default" in bus_arn


def test_configuration_set_destination_arn_renders_for_a_deploy(synth_with_sender: Synth) -> None:
    _, destination = synth_with_sender.only("AWS::SES::ConfigurationSetEventDestination")
    arn = destination["Properties"]["EventDestination"]["EventBridgeDestination"]["EventBusArn"]
    rendered = (
        arn if isinstance(arn, str) else "".join(p if isinstance(p, str) else "?" for p in arn["Fn::Join"][1])
    )
    assert rendered.endswith(":event-bus/default")


def test_feedback_writes_the_table_and_nothing_else(synth: Synth) -> None:
    table_id, _ = synth.only("AWS::DynamoDB::Table")
    spec = FUNCTIONS_BY_ID["feedback"]
    statements = synth.statements(synth.role_id(spec))
    actions = set().union(*(_actions(s) for s in statements))
    assert actions == LOG_ACTIONS | SQS_CONSUMER_ACTIONS | table_grant(spec, Grant.TABLE_READ) | table_grant(
        spec, Grant.TABLE_WRITE
    )
    for statement in statements:
        if _actions(statement) & TABLE_WRITES:
            assert _resources(statement) == [{"Fn::GetAtt": [table_id, "Arn"]}]


# --- journeys ------------------------------------------------------------------------------------


def test_state_machine_is_the_description_definition(synth: Synth) -> None:
    _, machine = synth.only("AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    step_id = synth.function_id(FUNCTIONS_BY_ID[STATE_MACHINE.step_function])
    (key,) = props["DefinitionSubstitutions"]
    assert props["DefinitionSubstitutions"][key] == {"Fn::GetAtt": [step_id, "Arn"]}
    assert STEP_FUNCTION_ARN_PLACEHOLDER == "${" + key + "}"
    # What CloudFormation deploys after substitution is exactly what the emulator runs.
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:step"
    definition = json.loads(props["DefinitionString"].replace(STEP_FUNCTION_ARN_PLACEHOLDER, arn))
    assert definition == STATE_MACHINE.definition(arn)


def test_state_machine_logs_errors_and_traces(synth: Synth) -> None:
    # errors only by default: ALL logs ~15 records an execution, as much as the step λ costs
    _, machine = synth.only("AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert STATE_MACHINE.log_level == "ERROR"
    assert props["LoggingConfiguration"]["Level"] == "ERROR"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_state_machine_role_invokes_only_the_step_function(synth: Synth) -> None:
    _, machine = synth.only("AWS::StepFunctions::StateMachine")
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    step_id = synth.function_id(FUNCTIONS_BY_ID[STATE_MACHINE.step_function])
    statements = synth.statements(role_id)
    invoke = [s for s in statements if any(a.startswith("lambda:") for a in _actions(s))]
    assert invoke == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": {"Fn::GetAtt": [step_id, "Arn"]}}
    ]
    # everything else is log delivery and X-Ray, which have no resource-level permissions
    for statement in statements:
        if statement not in invoke:
            assert {a.split(":")[0] for a in _actions(statement)} <= {"logs", "xray"}


# --- API -----------------------------------------------------------------------------------------


def test_the_api_choice_is_checked_with_a_clear_error() -> None:
    assert api_kind(None) == api_kind("") == API.default_kind == "http"
    assert api_kind("REST") == "rest"
    with pytest.raises(ValueError, match=r"api 'graphql' is not .*: http, rest"):
        api_kind("graphql")


def test_an_http_api_by_default_a_rest_api_on_request(synth: Synth, synth_rest: Synth) -> None:
    _, api = synth.only("AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert "CorsConfiguration" not in api["Properties"]  # the λ answers the form's preflight itself
    assert not synth.of_type("AWS::ApiGateway::RestApi")
    synth_rest.only("AWS::ApiGateway::RestApi")
    assert not synth_rest.of_type("AWS::ApiGatewayV2::Api")


def test_api_url_output_keeps_its_name_and_ends_in_a_slash(synth: Synth, synth_rest: Synth) -> None:
    http_url = json.dumps(synth.json["Outputs"]["ApiUrl"]["Value"])
    rest_url = json.dumps(synth_rest.json["Outputs"]["ApiUrl"]["Value"])
    # HTTP API: its $default stage at the root, https://<api>.execute-api.<region>.<suffix>/v1/batch
    assert http_url.endswith('"/"]]}') and "prod" not in http_url
    # REST: the stage in the path, https://<api>.execute-api.<region>.<suffix>/prod/v1/batch
    stage_id, stage = synth_rest.only("AWS::ApiGateway::Stage")
    assert stage["Properties"]["StageName"] == API.stage
    assert rest_url.endswith(f'"/", {{"Ref": "{stage_id}"}}, "/"]]}}')


def test_http_api_has_exactly_the_description_routes_proxied_to_ingest(synth: Synth) -> None:
    ingest_id = synth.function_id(FUNCTIONS_BY_ID[API.function])
    integrations = synth.of_type("AWS::ApiGatewayV2::Integration")
    routes = set()
    for route in synth.of_type("AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        routes.add(props["RouteKey"])
        # the λ authenticates: write key, webhook and link signatures, the form's publishable key
        assert props["AuthorizationType"] == "NONE"
        (integration_id,) = [i for i in integrations if i in json.dumps(props["Target"])]
        integration = integrations[integration_id]["Properties"]
        assert integration["IntegrationType"] == "AWS_PROXY"
        # 1.0: the REST proxy event the λ and the emulator already speak
        assert integration["PayloadFormatVersion"] == "1.0"
        assert ingest_id in json.dumps(integration["IntegrationUri"])
    assert routes == {route_key(m, p) for m, p in API.routes}
    # API Gateway may invoke the λ for each route, and only through this API
    permissions = [
        p["Properties"]
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(permissions) == len(API.routes)
    api_id, _ = synth.only("AWS::ApiGatewayV2::Api")
    assert all(f'{{"Ref": "{api_id}"}}' in json.dumps(p["SourceArn"]) for p in permissions)


def test_http_api_stage_throttles_and_logs(synth: Synth) -> None:
    _, stage = synth.only("AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    defaults = props["DefaultRouteSettings"]
    assert (defaults["ThrottlingRateLimit"], defaults["ThrottlingBurstLimit"]) == (
        API.throttle_rate_limit,
        API.throttle_burst_limit,
    )
    # the public signup form has its own, lower limits: a flood of it cannot use up the event API's
    assert props["RouteSettings"] == {
        "POST /v1/forms/{key}/submit": {
            "ThrottlingRateLimit": API.form_submit_rate_limit,
            "ThrottlingBurstLimit": API.form_submit_burst_limit,
        }
    }
    assert set(props["RouteSettings"]) <= {route_key(m, p) for m, p in API.routes}
    log_group_id = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert synth.resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert synth.resources[log_group_id]["Properties"]["RetentionInDays"] == 30
    # who called what and how it went: never a body or a header (emails, keys)
    # the format the bench renders to count access-log bytes (tests/bench_cost.py) is the deployed one
    assert props["AccessLogSettings"]["Format"] == template(HTTP_ACCESS_LOG_FORMAT)
    logged = json.loads(props["AccessLogSettings"]["Format"])
    assert {"requestId", "status", "routeKey"} <= set(logged)
    assert not any("body" in v.lower() or "header" in v.lower() for v in logged.values())


def _resource_path(synth: Synth, resource_ref: Any, api_id: str) -> str:
    if resource_ref == {"Fn::GetAtt": [api_id, "RootResourceId"]}:
        return ""
    resource = synth.resources[resource_ref["Ref"]]["Properties"]
    return f"{_resource_path(synth, resource['ParentId'], api_id)}/{resource['PathPart']}"


def test_rest_api_has_exactly_the_description_routes_proxied_to_ingest(synth_rest: Synth) -> None:
    synth = synth_rest
    api_id, _ = synth.only("AWS::ApiGateway::RestApi")
    ingest_id = synth.function_id(FUNCTIONS_BY_ID[API.function])
    routes = set()
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        routes.add((props["HttpMethod"], _resource_path(synth, props["ResourceId"], api_id)))
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert ingest_id in json.dumps(props["Integration"]["Uri"])
    assert routes == set(API.routes)
    assert {"/v1/webhooks/shopify/{store}", "/v1/webhooks/woocommerce/{store}"} <= {p for _, p in routes}


def test_rest_api_stage_throttles_and_logs(synth_rest: Synth) -> None:
    _, stage = synth_rest.only("AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == API.stage
    assert props["AccessLogSetting"]["DestinationArn"]
    assert props["AccessLogSetting"]["Format"] == template(REST_ACCESS_LOG_FORMAT)
    assert not any("body" in v.lower() or "header" in v.lower() for v in REST_ACCESS_LOG_FORMAT.values())
    settings, form = sorted(props["MethodSettings"], key=lambda m: m["ResourcePath"])
    assert settings["ResourcePath"] == "/*"
    assert settings["ThrottlingRateLimit"] == API.throttle_rate_limit
    assert settings["ThrottlingBurstLimit"] == API.throttle_burst_limit
    assert settings["DataTraceEnabled"] is False
    assert settings["LoggingLevel"] in {"ERROR", "INFO"}
    # the public signup form has its own, lower limits: a flood of it cannot use up the event API's
    assert (form["ResourcePath"], form["HttpMethod"]) == ("/~1v1~1forms~1{key}~1submit", "POST")
    assert (form["ThrottlingRateLimit"], form["ThrottlingBurstLimit"]) == (
        API.form_submit_rate_limit,
        API.form_submit_burst_limit,
    )


def test_rest_api_passes_bodies_as_bytes_and_tells_throttled_clients_when_to_retry(
    synth_rest: Synth,
) -> None:
    # gzip'd batches and webhooks' signed raw bodies reach the λ base64-encoded, byte for byte
    _, api = synth_rest.only("AWS::ApiGateway::RestApi")
    assert api["Properties"]["BinaryMediaTypes"] == list(API.binary_media_types) == ["*/*"]
    # stage throttling answers 429 itself, with Retry-After (an HTTP API cannot: a plain 429)
    responses = [r["Properties"] for r in synth_rest.of_type("AWS::ApiGateway::GatewayResponse").values()]
    [throttled] = [r for r in responses if r["ResponseType"] == "THROTTLED"]
    assert throttled["StatusCode"] == "429"
    assert (
        throttled["ResponseParameters"]["gatewayresponse.header.Retry-After"]
        == f"'{API.throttled_retry_after_s}'"
    )


# --- dashboard -------------------------------------------------------------------------------------


def _dashboard(synth: Synth) -> dict[str, Any]:
    """The dashboard body as JSON, each CloudFormation reference written as <Ref:id> / <id.Attr>."""
    _, dashboard = synth.only("AWS::CloudWatch::Dashboard")
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        elif "Ref" in part:
            text += f"<Ref:{part['Ref']}>"
        elif "Fn::GetAtt" in part:
            text += f"<{part['Fn::GetAtt'][0]}.{part['Fn::GetAtt'][1]}>"
        else:
            text += json.dumps(part)
    return dict(json.loads(text))


def _widget(synth: Synth, title: str) -> list[list[Any]]:
    """The metric arrays of the widget with this title."""
    (widget,) = [w for w in _dashboard(synth)["widgets"] if w["properties"].get("title") == title]
    return list(widget["properties"]["metrics"])


def _metric_names(rows: list[list[Any]]) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in rows]


def test_dashboard_shows_events_in_from_the_ingest_metric(synth: Synth) -> None:
    rows = _widget(synth, "Events in (ingest)")
    # the names functions/ingest/handler.py emits (Powertools: namespace Boomerang, service dimension)
    source = (Path(__file__).resolve().parents[2] / "functions/ingest/handler.py").read_text()
    assert 'name="EventsAccepted"' in source
    assert ("Boomerang", "EventsAccepted") in _metric_names(rows)
    accepted = next(r for r in rows if r[1] == "EventsAccepted")
    assert accepted[2:4] == ["service", "boomerang"]


def test_dashboard_shows_messages_out_for_every_channel(synth: Synth) -> None:
    rows = _widget(synth, "Messages out per channel")
    assert _metric_names(rows) == [
        ("Boomerang", "MessagesSent_email"),
        ("Boomerang", "MessagesSent_sms"),
        ("Boomerang", "MessagesSent_push"),
        ("Boomerang", "MessagesSent_webpush"),
    ]
    source = (Path(__file__).resolve().parents[2] / "functions/journey_step/handler.py").read_text()
    assert "name=f\"MessagesSent_{happened.get('channel', 'email')}\"" in source


def test_dashboard_shows_lambda_errors_of_every_function_and_failed_steps(synth: Synth) -> None:
    rows = _widget(synth, "Failures: Lambda errors per function")
    assert {(r[0], r[1]) for r in rows} == {("AWS/Lambda", "Errors")}
    shown = {r[3] for r in rows}
    assert shown == {f"<Ref:{synth.function_id(spec)}>" for spec in FUNCTIONS}
    failures = _metric_names(_widget(synth, "Failures: journey steps, reports and throttles"))
    assert {("Boomerang", "JourneyStep_failed"), ("Boomerang", "Report_failed")} <= set(failures)


def test_dashboard_shows_the_depth_of_every_dlq(synth: Synth) -> None:
    rows = _widget(synth, "DLQ depth (messages visible)")
    assert {(r[0], r[1]) for r in rows} == {("AWS/SQS", "ApproximateNumberOfMessagesVisible")}
    shown = {r[3] for r in rows}
    dlqs = {synth.queue_consumed_by(q) for q in QUEUES}
    redrive = {
        props["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for k, props in synth.of_type("AWS::SQS::Queue").items()
        if k in dlqs
    }
    expected = redrive | {_delivery_dlq_id(synth)}
    assert len(expected) == len(QUEUES) + 1
    assert shown == {f"<{q}.QueueName>" for q in expected}


def test_dashboard_shows_journey_executions_of_the_state_machine(synth: Synth) -> None:
    machine_id, _ = synth.only("AWS::StepFunctions::StateMachine")
    rows = _widget(synth, "Journey executions")
    names = [r[1] for r in rows]
    assert names[:3] == ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed"]
    for r in rows:
        assert r[0] == "AWS/States" and r[2] == "StateMachineArn" and r[3] == f"<Ref:{machine_id}>"
