"""Partner forwarder λ: SQS batch of order events and attempt tasks -> requests to fulfilment partners.

Thin: each record is one message for shared/services/partners/forwarding.py; a record that raises
(DynamoDB or SQS unavailable) is reported failed and retried by the queue, and every attempt it may
already have made is guarded by its claim, so a retry never sends twice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform.function_log import function_logger, log_context
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
metrics = Metrics(namespace="Boomerang", service="boomerang")
wiring.check_at_cold_start("partner_forwarder")


def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    from shared.services.partners.forwarding import handle_message

    results = handle_message(json.loads(record.body), wiring.forward_deps())
    for r in results:
        if r["outcome"] in ("accepted", "retry", "rejected", "failed"):
            metrics.add_metric(name=f"PartnerForward_{r['outcome']}", unit=MetricUnit.Count, value=1)
        # ids only: the body (addresses, names) is never logged
        logger.info(
            "partner forward", extra={k: r.get(k) for k in ("partner_id", "action", "attempt", "outcome")}
        )
    return results


@metrics.log_metrics
@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.process_sqs_batch(event, context, record_handler)
