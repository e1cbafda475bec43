"""The local emulator: Boomerang's real handlers on an embedded AWS emulation (moto), one process.

Everything is created from infra/description.py, the same description the CDK stack uses:
- a moto server on loopback holds DynamoDB, EventBridge (rules deliver to SQS), SQS, S3, SES,
  Secrets Manager and Step Functions, whose ASL interpreter really runs the journey state machine;
- Lambda tasks in that state machine are routed to the real handlers in this process (moto's
  Docker-free Lambda only echoes);
- pollers read each SQS queue and call its consumer with a real SQS batch event, as an event source
  mapping does (delete on success, leave failures to be retried and then moved to the DLQ);
- one compressed clock: handlers see Boomerang time, and every Wait state sleeps 1/speed as long;
  so do SQS redeliveries (the queue's visibility timeout) and back-offs;
- moto's DynamoDB made atomic (infra/local/moto_dynamodb.py) and its memory bounded with AWS's own
  retention (infra/local/retention.py).
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_string
from email.message import Message
from pathlib import Path
from typing import Any

from infra import aws_calls
from infra import description as d
from infra.local.faults import Faults, StepKilled
from shared.adapters.store_directory import StoreDirectory
from shared.domain.stores import PostalAddress, Store
from shared.platform import clock
from shared.platform import settings as env_names
from shared.platform.log_safe import ScrubbedError, summary_text

REGION = "us-east-1"
ACCOUNT = "123456789012"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_STORE = Store(
    store_id="demo",
    name="Boomerang Demo Store",
    url="https://shop.example.com",
    sender_email="hello@shop.example.com",
    sender_name="Demo Store",
    unsubscribe_email="unsubscribe@shop.example.com",
    address=PostalAddress(lines=["1 Harbour Street"], city="Bristol", postal_code="BS1 4AA", country="GB"),
)


def load_store_settings(path: str) -> Store:
    """The demo store with a file's settings over it (JSON or YAML: any `Store` field, e.g.
    `timezone`, `locale`, `delivery`, `retention`). Raises ValueError naming the field at fault."""
    import yaml
    from pydantic import ValidationError

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)  # JSON is YAML
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not JSON or YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of store settings, got {type(data).__name__}")
    unknown = sorted(set(data) - set(Store.model_fields))
    if unknown:
        allowed = ", ".join(sorted(Store.model_fields))
        raise ValueError(f"{path}: unknown store setting {', '.join(unknown)} (allowed: {allowed})")
    try:
        return Store.model_validate({**DEMO_STORE.model_dump(exclude_unset=True), **data})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ValueError(f"{path}: {problems}") from exc


def _set_lifecycle(s3: Any, bucket: str, expiries: tuple[d.Expiry, ...]) -> None:
    """The bucket's lifecycle rules as the stack states them; the sweeper runs them (moto does not)."""
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [e.s3_rule() for e in expiries]}
    )


def resource_name(kind: str, ident: str) -> str:
    return f"{d.APP_NAME}-{kind}-{ident}".replace("_", "-")


@dataclass
class FakeContext:
    """What Powertools reads from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "local"
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline + self.timeout_s - time.monotonic()) * 1000))


class Emulator:
    def __init__(
        self,
        speed: float = 3600.0,
        api_key: str = "local-dev-key",
        start: float | None = None,
        store: Store = DEMO_STORE,
    ) -> None:
        self.speed = speed
        self.api_key = api_key
        self.store = store  # the one store the emulator serves (`boomerang local --store FILE`)
        self.clock = clock.CompressedClock(speed, start=start)
        self.start_at = start
        # injected provider throttling
        self.faults: dict[str, int] = {"email": 0, "sms": 0, "push": 0, "webpush": 0}
        self._faults_lock = threading.Lock()
        self.moto: Any = None
        self.endpoint = ""
        self.arns: dict[str, str] = {}
        self.queue_urls: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._handlers: dict[str, Any] = {}
        self._sent_meta: dict[str, dict[str, Any]] = {}
        self._meta_lock = threading.Lock()
        self.invocations: dict[str, int] = {}
        self.push: Any = None  # wire-level fake of Pinpoint SendMessages (moto has none)
        self.webpush: Any = None  # a local push service with fake browsers (infra/local/webpush_fake.py)
        self._vapid_root = secrets.token_urlsafe(48).encode()  # this run's VAPID root: keys per store
        self.retention: Any = None  # infra/local/retention.py: bounded memory
        self.aws_calls: Any = None  # infra/aws_calls.py's recorder, when a test run asks for one

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Emulator:
        from moto.server import ThreadedMotoServer

        if os.environ.get(aws_calls.RECORD_DIR_ENV):  # e2e runs: what each function calls, for the IAM check
            self.aws_calls = aws_calls.Recorder(
                aws_calls.record_file(aws_calls.record_dir(), "emulator")
            ).install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        from infra.local.pinpoint_fake import PinpointFake

        self.push = PinpointFake().start()
        from infra.local.webpush_fake import PushServiceFake

        self.webpush = PushServiceFake().start()
        self._configure_process(port)
        self._patch_moto()
        self._create_resources()
        if self.start_at is not None:
            self.clock.restart(self.start_at)  # a few real seconds of setup would be hours here
        for queue in d.QUEUES:
            t = threading.Thread(target=self._poll, args=(queue,), name=f"poller-{queue.id}", daemon=True)
            t.start()
            self._threads.append(t)
        from infra.local.retention import Sweeper

        # what AWS forgets (TTL, closed executions, archive retention) the emulator forgets too
        self.retention = Sweeper(ACCOUNT, REGION, self.table, d.TABLE.ttl_attribute, self.push).start()
        for rule in d.RULES:
            if rule.schedule:
                t = threading.Thread(
                    target=self._schedule, args=(rule,), name=f"schedule-{rule.id}", daemon=True
                )
                t.start()
                self._threads.append(t)
        return self

    def _schedule(self, rule: d.RuleSpec) -> None:
        """EventBridge's part: the rule's schedule (daily, monthly) on the compressed clock, into its queue.

        Each rule fires at its own times (description.next_fire reads its cron), so the monthly report
        runs once a month here too, not with every daily run."""
        assert rule.schedule is not None
        sqs = self.client("sqs")
        next_fire = d.next_fire(rule.schedule, clock.now_ts())
        while not self._stop.is_set():
            if self._stop.wait(timeout=max(0.01, self.clock.real_seconds(next_fire - clock.now_ts()))):
                return
            if clock.now_ts() < next_fire:
                continue
            self.fire_schedule(rule, next_fire, sqs)
            next_fire = d.next_fire(rule.schedule, next_fire)

    def fire_schedule(self, rule: d.RuleSpec, at: float, sqs: Any = None) -> None:
        body = {
            "version": "0",
            "id": f"local-{rule.id}-{int(at)}",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": clock.iso(at),
            "resources": [self.arns.get(f"rule:{rule.id}", rule.id)],
            "detail": {},
        }
        (sqs or self.client("sqs")).send_message(
            QueueUrl=self.queue_urls[rule.queue], MessageBody=json.dumps(body)
        )

    def stop(self) -> None:
        self._stop.set()
        if self.retention is not None:
            self.retention.stop()
        for t in self._threads:
            t.join(timeout=5)
        if self.moto is not None:
            import requests

            # moto's backends are process-wide: reset them so another emulator can start here
            requests.post(f"{self.endpoint}/moto-api/reset", timeout=10)
            self.moto.stop()
        if self.push is not None:
            self.push.stop()
        if self.webpush is not None:
            self.webpush.stop()
        if self.aws_calls is not None:
            self.aws_calls.uninstall()
            self.aws_calls.write(aws_calls.record_dir(), "emulator")
        clock.reset_clock()

    def _configure_process(self, port: int) -> None:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "MOTO_PORT": str(port),
                "AWS_ENDPOINT_URL_PINPOINT": self.push.url,
                env_names.WEBPUSH_CA_BUNDLE: self.webpush.ca_file,  # its self-signed certificate only
                "MOTO_ACCOUNT_ID": ACCOUNT,
                "POWERTOOLS_SERVICE_NAME": "boomerang",
                "POWERTOOLS_METRICS_NAMESPACE": "Boomerang",
                "POWERTOOLS_METRICS_DISABLED": "true",  # no EMF blobs on the terminal
                "POWERTOOLS_DEV": "false",
            }
        )
        from shared.platform.aws import reset_clients
        from shared.platform.settings import settings

        reset_clients()
        settings.cache_clear()
        clock.set_clock(self.clock)
        import requests

        requests.post(
            f"{self.endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
            timeout=10,
        ).raise_for_status()

    def _patch_moto(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        from infra.local import moto_dynamodb

        moto_dynamodb.install()  # transactions that never undo other writes (see the module)
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )

        emulator = self

        def invoke(
            backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
        ) -> bytes:
            payload = json.loads(body) if body else {}
            name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
            try:
                result = emulator.invoke(name, payload)
            except StepKilled as exc:  # injected (infra/local/faults.py): Lambda answers a timeout
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": exc.error_type, "errorMessage": str(exc)}).encode()
            except Exception as exc:  # what Lambda answers for an unhandled error: Retry/Catch see errorType
                # never the message itself: it may quote a customer's values (shared/platform/log_safe.py)
                summary = exc if isinstance(exc, ScrubbedError) else summary_text(exc)
                logging.getLogger("boomerang.local").info(
                    "%s raised %s: %s", name, type(exc).__name__, summary
                )
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {"errorType": type(exc).__name__, "errorMessage": str(summary)[:500]}
                ).encode()
            return json.dumps(result).encode()

        def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
            # Journey time is compressed in two places: Wait states here, Retry intervals below.
            real = wait_seconds / emulator.speed
            if real > 0:
                env.program_state_event.wait(real)

        import botocore.endpoint
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

        # Every back-off sleeps compressed too (Step Functions Retry and the SDK's retries):
        # otherwise a 4 s SDK back-off would be 4 h of Boomerang time, and a message checked
        # against quiet hours or caps would go out hours later than decided.
        compressed = _CompressedTime(self.speed)
        for module in (retrier_decl, botocore.endpoint):
            module.time = compressed  # type: ignore[attr-defined]

        from moto.core.exceptions import JsonRESTError, ServiceException
        from moto.sesv2.models import SESV2Backend
        from moto.sns.models import SNSBackend

        class SesThrottled(JsonRESTError):
            code = 429

        class SnsThrottled(ServiceException):
            code = "Throttling"
            message = "Rate exceeded"

        real_ses, real_sns = SESV2Backend.send_raw_email, SNSBackend.publish

        def ses_send(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if emulator.take_fault("email"):
                raise SesThrottled("TooManyRequestsException", "Maximum sending rate exceeded.")
            return real_ses(backend, *args, **kwargs)

        def sns_publish(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("phone_number") and emulator.take_fault("sms"):
                raise SnsThrottled()
            return real_sns(backend, *args, **kwargs)

        SESV2Backend.send_raw_email = ses_send  # type: ignore[method-assign, assignment]
        SNSBackend.publish = sns_publish  # type: ignore[method-assign, assignment]
        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign, assignment]
        self.injected = Faults(clock.now_ts)  # throttling, SES quota, killed steps (POST /_local/faults)
        self.injected.install()
        WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]

    def inject_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """The next N sends on a channel are throttled by the provider (tests of retries); the keys of
        infra/local/faults.py (throttle, ses_quota, kill_after_claim) go to it."""
        faults = dict(faults)
        knobs: dict[str, Any] = {
            k: faults.pop(k) for k in ("throttle", "ses_quota", "kill_after_claim") if k in faults
        }
        for channel, n in faults.items():
            if channel not in self.faults or not isinstance(n, int) or n < 0:
                raise ValueError(f"faults: {{channel: count}} with channel in {sorted(self.faults)}")
        if knobs:
            self.injected.configure(knobs)  # validates every knob before changing any
        with self._faults_lock:
            for channel, n in faults.items():
                if channel == "push":
                    self.push.throttle_requests(n)  # the fake answers 429 itself
                elif channel == "webpush":
                    self.webpush.throttle_requests(n)  # 429 with Retry-After
                else:
                    self.faults[channel] = n
            return {**self.injected.state(), **self.faults}

    def take_fault(self, channel: str) -> bool:
        with self._faults_lock:
            if self.faults.get(channel, 0) > 0:
                self.faults[channel] -= 1
                return True
        return False

    # -- resources from the description ------------------------------------------------------------
    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def _create_resources(self) -> None:
        ddb, events, sqs, s3 = (self.client(s) for s in ("dynamodb", "events", "sqs", "s3"))
        table = resource_name("table", "main")
        table_arn = ddb.create_table(**d.TABLE.create_table_args(table))["TableDescription"]["TableArn"]
        # as on AWS (infra/constructs/storage.py): the report λ exports the table to point in time
        ddb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        ddb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": d.TABLE.ttl_attribute}
        )
        bus_arn = events.create_event_bus(Name=d.BUS_NAME)["EventBusArn"]
        events.create_archive(
            ArchiveName=f"{d.BUS_NAME}-archive",
            EventSourceArn=bus_arn,
            RetentionDays=d.ARCHIVE_RETENTION_DAYS,
        )
        for q in d.QUEUES:
            dlq_url = sqs.create_queue(QueueName=resource_name("dlq", q.id))["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            url = sqs.create_queue(
                QueueName=resource_name("queue", q.id),
                Attributes={
                    "VisibilityTimeout": str(q.visibility_timeout_s),
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": q.max_receive_count}
                    ),
                },
            )["QueueUrl"]
            self.queue_urls[q.id] = url
            self.queue_urls[f"dlq:{q.id}"] = dlq_url
            self.arns[f"queue:{q.id}"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        for rule in d.RULES:
            # moto keeps a schedule rule but never fires it: the scheduler thread below does
            events.put_rule(
                Name=resource_name("rule", rule.id),
                EventBusName=rule.bus,
                **(
                    {"ScheduleExpression": rule.schedule}
                    if rule.schedule
                    else {"EventPattern": json.dumps(rule.pattern)}
                ),
            )
            if rule.schedule:
                continue  # moto would hand a pattern-less rule every default-bus event; the thread fires it
            events.put_targets(
                Rule=resource_name("rule", rule.id),
                EventBusName=rule.bus,
                Targets=[{"Id": rule.queue, "Arn": self.arns[f"queue:{rule.queue}"]}],
            )
        bucket = resource_name("templates", "bucket")
        self._create_templates_bucket(s3, bucket)
        self.analytics_bucket = resource_name("analytics", "bucket")
        s3.create_bucket(Bucket=self.analytics_bucket)
        _set_lifecycle(s3, self.analytics_bucket, d.ANALYTICS_LIFECYCLE)
        secret_arn = self.client("secretsmanager").create_secret(
            Name=resource_name("secret", "signing"), SecretString=secrets.token_urlsafe(48)
        )["ARN"]
        self.client("ses").verify_email_identity(EmailAddress=self.store.sender_email)

        iam = self.client("iam")
        role = iam.create_role(RoleName="boomerang-local", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = self.client("lambda")
        for fn in d.FUNCTIONS:
            arn = lam.create_function(
                FunctionName=resource_name("fn", fn.id),
                Runtime=d.LAMBDA_RUNTIME,
                Role=role,
                Handler=fn.handler,
                Code={"ZipFile": b"local"},
                Timeout=fn.timeout_s,
                MemorySize=fn.memory_mb,
            )["FunctionArn"]
            self.arns[f"fn:{fn.id}"] = arn
        sm_arn = self.client("stepfunctions").create_state_machine(
            name=resource_name("sm", d.STATE_MACHINE.id),
            definition=d.STATE_MACHINE.definition_json(self.arns[f"fn:{d.STATE_MACHINE.step_function}"]),
            roleArn=role,
            type="STANDARD",
        )["stateMachineArn"]
        self.arns["state_machine"] = sm_arn
        self.env_values = {
            env_names.TABLE_NAME: table,
            env_names.BUS_NAME: d.BUS_NAME,
            env_names.TEMPLATES_BUCKET: bucket,
            env_names.STATE_MACHINE_ARN: sm_arn,
            env_names.EMAIL_CONFIGURATION_SET: "",
            env_names.UNSUBSCRIBE_BASE_URL: "",  # set by the HTTP server once its port is known
            env_names.SIGNING_SECRET_ARN: secret_arn,
            env_names.PUSH_APP_ID: "boomerang-local",
            env_names.VAPID_SECRET_ARN: self.client("secretsmanager").create_secret(
                Name=resource_name("secret", "vapid"), SecretString=self._vapid_root.decode()
            )["ARN"],
            env_names.JOURNEY_QUEUE_URL: self.queue_urls["journey"],
            env_names.REPORTS_TOPIC_ARN: self.client("sns").create_topic(
                Name=resource_name("topic", "reports")
            )["TopicArn"],
            env_names.TEMPLATES_CACHE_SECONDS: "1",  # a marketer's validated edit shows up at once
            # journey and segment edits within seconds (each reload lists and reads every file)
            env_names.FILES_CACHE_SECONDS: "5",
            env_names.TABLE_ARN: table_arn,
            env_names.ANALYTICS_BUCKET: self.analytics_bucket,
            env_names.REPORT_QUEUE_URL: self.queue_urls["report"],
            env_names.PARTNERS_QUEUE_URL: self.queue_urls["partners"],
            env_names.PARTNERS_DLQ_URL: self.queue_urls["dlq:partners"],
            "REPORT_POLL_SECONDS": "1",  # moto's exports finish at once; SQS delays are real seconds
        }
        os.environ.update(self.env_values)
        self.table = table
        StoreDirectory(ddb, table).put(self.store, self.api_key)

    def _create_templates_bucket(self, s3: Any, bucket: str) -> None:
        """Versioned, seeded with the default templates (validated and activated before we are
        ready), then sending its S3 events to EventBridge, as the CDK bucket does."""
        from shared.templates.publish import validate_prefix

        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        _set_lifecycle(s3, bucket, d.TEMPLATES_LIFECYCLE)
        for path in sorted((REPO_ROOT / d.JOURNEYS_DIR).glob("*.yaml")):
            s3.put_object(Bucket=bucket, Key=f"{d.DEFAULT_JOURNEY_PREFIX}{path.name}", Body=path.read_bytes())
        for path in sorted((REPO_ROOT / d.SEGMENTS_DIR).glob("*.yaml")):
            s3.put_object(Bucket=bucket, Key=f"{d.DEFAULT_SEGMENT_PREFIX}{path.name}", Body=path.read_bytes())
        templates_dir = REPO_ROOT / d.TEMPLATES_DIR
        for path in sorted(templates_dir.rglob("*")):
            if path.is_file():
                s3.put_object(
                    Bucket=bucket,
                    Key=f"templates/{path.relative_to(templates_dir).as_posix()}",
                    Body=path.read_bytes(),
                )
        validate_prefix(s3, bucket)
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        self.templates_bucket = bucket

    def reports(self) -> list[dict[str, Any]]:
        """What the validator published on the reports topic (marketers would get it by email)."""
        from moto.sns.models import sns_backends

        topic = sns_backends[ACCOUNT][REGION].topics.get(os.environ.get(env_names.REPORTS_TOPIC_ARN, ""))
        if topic is None:
            return []
        return [
            {"message_id": mid, "subject": subject, "message": message}
            for mid, message, subject, *_ in list(topic.sent_notifications)
        ]

    def set_public_url(self, url: str) -> None:
        from shared.platform.settings import settings

        os.environ[env_names.UNSUBSCRIBE_BASE_URL] = url
        settings.cache_clear()

    # -- Lambda ----------------------------------------------------------------------------------
    def handler(self, function_id: str) -> Any:
        if function_id not in self._handlers:
            spec = d.FUNCTIONS_BY_ID[function_id]
            module = importlib.import_module(spec.module)
            if function_id == d.STATE_MACHINE.step_function:
                # a broadcast page's members' sends are not in the step's result: seen one by one here
                module.STEP_OBSERVERS[:] = [self._remember_sends]
            self._handlers[function_id] = getattr(module, spec.attribute)
        return self._handlers[function_id]

    def invoke(self, name: str, payload: dict[str, Any]) -> Any:
        function_id = next(f.id for f in d.FUNCTIONS if resource_name("fn", f.id) == name)
        spec = d.FUNCTIONS_BY_ID[function_id]
        ctx = FakeContext(
            function_name=name,
            memory_limit_in_mb=spec.memory_mb,
            invoked_function_arn=self.arns[f"fn:{function_id}"],
            timeout_s=spec.timeout_s,
        )
        self.invocations[function_id] = self.invocations.get(function_id, 0) + 1
        result = self.handler(function_id)(payload, ctx)
        if function_id == d.STATE_MACHINE.step_function:
            self._remember_sends(result)
        return result

    def _remember_sends(self, result: dict[str, Any]) -> None:
        for happened in result.get("events", []):
            if happened.get("type") == "sent" and happened.get("channel", "email") == "email":
                self._simulate_feedback(result, happened)
            if happened.get("type") == "sent" and happened.get("message_id"):
                with self._meta_lock:
                    self._sent_meta[happened["message_id"]] = {
                        "channel": happened.get("channel", "email"),
                        "journey": result.get("journey"),
                        "step": happened.get("step_id"),
                        "customer_id": happened.get("customer_id"),
                        "sent_at": clock.iso(happened.get("sent_at") or 0),
                        "sent_ts": happened.get("sent_at"),
                        "instance": result.get("instance"),
                    }
                    from infra.local.retention import OUTBOX_CAP

                    while len(self._sent_meta) > 3 * OUTBOX_CAP:  # all channels' outboxes, then the oldest go
                        del self._sent_meta[next(iter(self._sent_meta))]

    # -- SQS event source mappings ----------------------------------------------------------------
    def _poll(self, queue: d.QueueSpec) -> None:
        sqs = self.client("sqs")
        url = self.queue_urls[queue.id]
        arn = self.arns[f"queue:{queue.id}"]
        while not self._stop.is_set():
            try:
                msgs = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=queue.batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # the server is shutting down
                if self._stop.is_set():
                    return
                time.sleep(0.2)
                continue
            if not msgs:
                continue
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                for m in msgs
            ]
            try:
                result = self.invoke(resource_name("fn", queue.consumer), {"Records": records})
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            except Exception as exc:
                logging.getLogger("boomerang.local").error(
                    "consumer %s failed: %s",
                    queue.consumer,
                    exc if isinstance(exc, ScrubbedError) else summary_text(exc),
                )
                failed = {r["messageId"] for r in records}
            for m in msgs:
                if m["MessageId"] in failed:
                    # retried after the queue's visibility timeout, on Boomerang's clock
                    sqs.change_message_visibility(
                        QueueUrl=url,
                        ReceiptHandle=m["ReceiptHandle"],
                        VisibilityTimeout=math.ceil(self.clock.real_seconds(queue.visibility_timeout_s)),
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    # -- outbox ------------------------------------------------------------------------------------
    def privacy_resources(self) -> dict[str, str]:
        """The table, state machine and signing secret (`boomerang customers|keys --local`)."""
        return {
            "table": self.env_values[env_names.TABLE_NAME],
            "state_machine_arn": self.env_values[env_names.STATE_MACHINE_ARN],
            "signing_secret_arn": self.env_values[env_names.SIGNING_SECRET_ARN],
        }

    def outbox(self) -> list[dict[str, Any]]:
        from moto.ses.models import RawMessage, ses_backends

        out = []
        for msg in list(ses_backends[ACCOUNT][REGION].sent_messages):
            if not isinstance(msg, RawMessage):
                continue
            with self._meta_lock:
                meta = dict(self._sent_meta.get(msg.id, {}))
            parsed = message_from_string(msg.raw_data)
            out.append(
                {
                    "id": msg.id,
                    "channel": "email",
                    "to": ", ".join(dict.fromkeys(msg.destinations)),  # moto lists To twice for raw mail
                    "from": msg.source,
                    "subject": str(_header(parsed, "Subject")),
                    "text": _part(parsed, "text/plain"),
                    "html": _part(parsed, "text/html"),
                    "headers": {
                        k: str(_header(parsed, k)) for k in dict(parsed.items()) if k.lower() != "subject"
                    },
                    "journey": meta.get("journey"),
                    "step": meta.get("step"),
                    "customer_id": meta.get("customer_id"),
                    "instance": meta.get("instance"),
                    "sent_at": meta.get("sent_at"),
                }
            )
        out += self._sms_outbox() + self._push_outbox() + self._webpush_outbox()
        return sorted(out, key=lambda m: m["sent_at"] or "")

    def _simulate_feedback(self, result: dict[str, Any], sent: dict[str, Any]) -> None:
        """SES mailbox simulator: mail to bounce@ / complaint@simulator.amazonses.com comes back as the
        SES event SES itself would put on the default bus, so the real feedback path runs."""
        from moto.ses.models import ses_backends

        from infra.local.ses_simulator import feedback_entries

        found = [m for m in ses_backends[ACCOUNT][REGION].sent_messages if m.id == sent["message_id"]]
        if not found:
            return
        entries = feedback_entries(
            message_id=sent["message_id"],
            destinations=list(dict.fromkeys(found[0].destinations)),
            tags={
                "store": result.get("store_id", ""),
                "journey": result.get("journey", ""),
                "step": sent["step_id"],
            },
            now=clock.now_ts(),
        )
        if entries:
            self.client("events").put_events(Entries=entries)

    def _meta(self, message_id: str) -> dict[str, Any]:
        with self._meta_lock:
            meta = dict(self._sent_meta.get(message_id, {}))
        return {k: meta.get(k) for k in ("journey", "step", "customer_id", "instance", "sent_at")}

    def _sms_outbox(self) -> list[dict[str, Any]]:
        from moto.sns.models import sns_backends

        sent = list(sns_backends[ACCOUNT][REGION].sms_messages.items())
        return [
            {
                "id": mid,
                "channel": "sms",
                "to": phone,
                "from": None,
                "subject": None,
                "text": body,
                "html": None,
                "headers": {},
                **self._meta(mid),
            }
            for mid, (phone, body) in sent
        ]

    def _push_outbox(self) -> list[dict[str, Any]]:
        return [
            {
                "id": m["message_id"],
                "channel": "push",
                "to": f"{m['platform']}:{m['token'][:12]}...",
                "from": None,
                "subject": m["title"],
                "text": m["body"],
                "html": None,
                "headers": {"deep_link": m.get("deep_link") or "", "image_url": m.get("image_url") or ""},
                **self._meta(m["message_id"]),
            }
            for m in self.push.messages
        ]

    def _webpush_outbox(self) -> list[dict[str, Any]]:
        """Each notification as the fake browser decrypted it, shown as a browser would."""
        return [
            {
                "id": m["message_id"],
                "channel": "webpush",
                "to": m["browser"],
                "from": None,
                "subject": m["notification"].get("title"),
                "text": m["notification"].get("body"),
                "html": None,
                "headers": {
                    "deep_link": m["notification"].get("url") or "",
                    "icon": m["notification"].get("icon") or "",
                    "image_url": m["notification"].get("image") or "",
                    "ttl": str(m["ttl"]),
                    "urgency": m["urgency"],
                },
                **self._meta(m["message_id"]),
            }
            for m in self.webpush.messages
        ]

    def webpush_subscribe(self, store: str, label: str = "Firefox on Linux") -> dict[str, Any]:
        """A fake browser on the store's site allows notifications: its PushSubscription.toJSON()."""
        from shared.platform.vapid import derive

        return dict(self.webpush.subscribe(derive(self._vapid_root, store).public_key, label))

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=self.arns["state_machine"])
        return [
            {"name": e["name"], "status": e["status"], "executionArn": e["executionArn"]}
            for page in pages
            for e in page["executions"]
        ]

    def profile(self, store: str, customer_id: str) -> dict[str, Any] | None:
        """Developer view of one profile (the local emulator only; no such route exists on AWS)."""
        from shared.adapters.profile_store import ProfileStore
        from shared.platform.aws import client

        found = ProfileStore(client("dynamodb"), self.table).load_profile(store, customer_id)
        return found.model_dump(mode="json") if found else None

    def history(self, store: str, customer_id: str) -> list[dict[str, Any]]:
        """A customer's journey history, merged anonymous visits included ("why did I get this?")."""
        from shared.adapters.journey_store import JourneyStore
        from shared.adapters.profile_store import ProfileStore
        from shared.platform.aws import client

        ddb = client("dynamodb")
        profile = ProfileStore(ddb, self.table).load_profile(store, customer_id)
        ids = [customer_id, *(f"a:{a}" for a in (profile.anonymous_ids if profile else []))]
        found = JourneyStore(ddb, self.table).customer_history(store, ids)
        return json.loads(json.dumps(found, default=str))

    def dlq_depths(self) -> dict[str, int]:
        sqs = self.client("sqs")
        return {
            q.id: int(
                sqs.get_queue_attributes(
                    QueueUrl=self.queue_urls[f"dlq:{q.id}"], AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            for q in d.QUEUES
        }


class _CompressedTime:
    """The `time` module as a back-off loop sees it: sleeps run `speed` times faster."""

    def __init__(self, speed: float) -> None:
        self.speed = speed

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)


def _header(msg: Message, name: str) -> str:
    from email.header import decode_header, make_header

    raw = msg.get(name, "")
    return str(make_header(decode_header(raw))) if raw else ""


def _part(msg: Message, content_type: str) -> str:
    for part in msg.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""
