"""The EventBridge bus "boomerang" with its archive, and one SQS queue (with DLQ) per rule.

Most rules listen on Boomerang's bus; rules for AWS service events (SES feedback) listen on the
account's default bus, the only bus those services publish to. The default bus is referenced, never
created or changed.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.nag import Waiver, suppress
from infra.description import ARCHIVE_RETENTION_DAYS, BUS_NAME, DEFAULT_BUS, QUEUES, RULES, QueueSpec


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """A description pattern ({"detail-type": [...]}) as CDK's EventPattern (detail_type=[...])."""
    fields = {key.replace("-", "_"): value for key, value in pattern.items()}
    unknown = set(fields) - {
        "source",
        "detail_type",
        "detail",
        "account",
        "region",
        "resources",
        "id",
        "time",
    }
    if unknown:
        raise ValueError(f"event pattern keys CDK cannot express: {sorted(unknown)}")
    return events.EventPattern(**fields)


def _queue(scope: Construct, construct_id: str, **kwargs: Any) -> sqs.Queue:
    # SQS-managed SSE: encrypted at rest with no KMS key policy to keep in step with EventBridge.
    return sqs.Queue(
        scope, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, **kwargs
    )


class Bus(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=BUS_NAME)
        # Every event published to the bus, kept for replay after a bug fix or a lost queue.
        self.archive = self.bus.archive(
            "Archive",
            description="Boomerang: every event on the bus, for replay",
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=Duration.days(ARCHIVE_RETENTION_DAYS),
        )

        # Events EventBridge could not deliver to a rule's queue (e.g. queue policy mistakes).
        self.delivery_dlq = _queue(self, "DeliveryDLQ", retention_period=Duration.days(14))
        suppress(
            self.delivery_dlq,
            Waiver(
                "AwsSolutions-SQS3",
                "This queue is itself a dead-letter queue: the rules' targets send undeliverable events "
                "here (cdk-nag only recognises queue-to-queue redrive).",
            ),
        )

        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        for spec in QUEUES:
            dlq = _queue(self, f"{spec.id}-dlq", retention_period=Duration.days(spec.dlq_retention_days))
            self.dlqs[spec.id] = dlq
            self.queues[spec.id] = _queue(
                self,
                f"{spec.id}-queue",
                visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
            )

        self.default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_BUS)
        buses: dict[str, events.IEventBus] = {BUS_NAME: self.bus, DEFAULT_BUS: self.default_bus}
        self.rules: dict[str, events.Rule] = {}
        for rule in RULES:
            if rule.bus not in buses:
                raise ValueError(f"rule {rule.id}: unknown bus {rule.bus!r}")
            self.rules[rule.id] = events.Rule(
                self,
                f"{rule.id}-rule",
                # a schedule rule has no bus of its own choosing: it lives on the default bus
                event_bus=buses[rule.bus] if rule.schedule is None else None,
                description=rule.description,
                event_pattern=event_pattern(rule.pattern) if rule.pattern is not None else None,
                schedule=events.Schedule.expression(rule.schedule) if rule.schedule else None,
                targets=[
                    targets.SqsQueue(
                        self.queues[rule.queue],
                        dead_letter_queue=self.delivery_dlq,
                        retry_attempts=185,  # EventBridge's maximum, over its 24 h window
                        max_event_age=Duration.hours(24),
                    )
                ],
            )

    def connect(self, spec: QueueSpec, consumer: lambda_.Function) -> None:
        """Feed a queue to its consumer; failed records return to the queue, then go to the DLQ."""
        consumer.add_event_source(
            event_sources.SqsEventSource(
                self.queues[spec.id],
                batch_size=spec.batch_size,
                max_batching_window=Duration.seconds(spec.max_batching_window_s),
                report_batch_item_failures=True,  # Powertools BatchProcessor's partial failures
            )
        )
