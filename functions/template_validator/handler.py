"""Template validator λ: SQS batch of S3 "Object Created/Deleted" events (from the default bus) for
templates/ and journeys/ -> validate, activate what passes, write the report, notify on rejection.

A push uploads a whole folder, one event per file: the batch is checked once per folder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform.aws import client
from shared.platform.function_log import function_logger, log_context
from shared.platform.log_safe import error_summary
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.templates.bucket_events import S3Change
    from shared.templates.reports import Outcome

logger = function_logger()
metrics = Metrics(namespace="Boomerang", service="boomerang")
wiring.check_at_cold_start("template_validator")


def check_batch(records: list[dict[str, Any]]) -> dict[str, Outcome | Exception]:
    """Each record's outcome (or why it failed), validating each template folder once."""
    # Imported here: the linter and trial renderer are the bulk of this λ's code.
    from shared.templates.bucket_events import parse_s3_event, sns_notifier
    from shared.templates.publish import validate_changes
    from shared.templates.reports import Outcome

    s = wiring.settings_for("template_validator")
    results: dict[str, Outcome | Exception] = {}
    changes: dict[str, S3Change] = {}
    for record in records:
        try:
            changes[record["messageId"]] = parse_s3_event(record["body"])
        except ValueError as exc:  # not an S3 event: the record fails and, retried, goes to the DLQ
            results[record["messageId"]] = exc
    ours = {mid: c for mid, c in changes.items() if c.bucket == s.templates_bucket}
    for mid, change in changes.items():
        if mid not in ours:
            logger.info("ignored: another bucket", extra={"bucket": change.bucket})
            results[mid] = Outcome(change.key, "ignored")
    if ours:
        notify = sns_notifier(client("sns"), s.reports_topic_arn) if s.reports_topic_arn else None
        try:
            outcomes = validate_changes(
                client("s3"),
                s.templates_bucket,
                [(c.key, c.version_id) for c in ours.values()],
                notify=notify,
            )
        except Exception as exc:  # S3 unavailable, too many concurrent updates: retry the records
            logger.warning("validation failed", extra=error_summary(exc))
            outcomes = {}
            results.update(dict.fromkeys(ours, exc))
        for mid, change in ours.items():
            if change.key in outcomes:
                results[mid] = outcomes[change.key]
                logger.info(
                    "template checked", extra={"key": change.key, "status": outcomes[change.key].status}
                )
    return results


@metrics.log_metrics
@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results = check_batch(event.get("Records", []))

    def record_handler(record: SQSRecord) -> dict[str, Any]:
        result = results[record.message_id]
        if isinstance(result, Exception):
            raise result
        metrics.add_metric(name=f"Template_{result.status}", unit=MetricUnit.Count, value=1)
        return result.as_dict()

    return wiring.process_sqs_batch(event, context, record_handler)
