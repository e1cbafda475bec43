"""Feedback λ: SQS batch of SES events (from the default bus) -> the per-store suppression list,
each journey email's delivered/opened/clicked item for the report, and the account's hourly
delivered/bounced/complained counts (shared/domain/reputation.py)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform import clock
from shared.platform.aws import client
from shared.platform.function_log import function_logger, log_context
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.adapters.store_directory import StoreDirectory

logger = function_logger()
metrics = Metrics(namespace="Boomerang", service="boomerang")
wiring.check_at_cold_start("feedback")


def record_handler(record: SQSRecord, stores: StoreDirectory | None = None) -> dict[str, Any]:
    from shared.domain.reputation import counted_as
    from shared.services.consent import feedback

    # A body that is not an SES event raises: the record is reported failed and, after the queue's
    # retries, lands in the DLQ for a person to look at.
    plan = feedback.plan(feedback.parse(record.body), clock.now_ts())
    applied = feedback.apply(plan, wiring.suppression_list(), stores or wiring.feedback_directory())
    applied.engagement = feedback.record_engagement(
        plan, client("dynamodb"), wiring.settings_for("feedback").table_name
    )
    # the account's rolling bounce/complaint rates, which pause marketing email near SES's review
    if (kind := counted_as(plan.outcome)) is not None:
        wiring.feedback_reputation().count(kind, plan.message_id, plan.at)
    # ids and counts only: never the addresses
    logger.info(
        "ses feedback",
        extra={
            "store": applied.store_id,
            "ses_message_id": plan.message_id,
            "outcome": applied.outcome,
            "suppressed": applied.suppressed,
            "already_suppressed": applied.already,
            "skipped": applied.skipped,
            "engagement": applied.engagement,
        },
    )
    metrics.add_metric(name=f"Feedback_{applied.outcome}", unit=MetricUnit.Count, value=1)
    if applied.skipped:
        metrics.add_metric(name="FeedbackSkipped", unit=MetricUnit.Count, value=1)
    return {
        "outcome": applied.outcome,
        "suppressed": applied.suppressed,
        "already": applied.already,
        "skipped": applied.skipped,
        "engagement": applied.engagement,
    }


@metrics.log_metrics
@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # One store lookup per store per batch (wiring.feedback_directory builds a fresh directory).
    stores = wiring.feedback_directory()
    return wiring.process_sqs_batch(event, context, functools.partial(record_handler, stores=stores))
