"""Privacy λ: erasure requests (from POST /v1/customers/erase, through the bus) -> the customer's
items deleted, their running journeys stopped, hashed tombstones left; and the monthly retention
sweep (shared/services/privacy/retention.py). Counts only in the logs."""

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
wiring.check_at_cold_start("privacy")


def record_handler(record: SQSRecord) -> dict[str, Any]:
    from shared.services.privacy.requests import is_retention_run, run_erasure_request

    body = json.loads(record.body)
    if is_retention_run(body):
        from shared.platform import clock
        from shared.services.privacy.retention import sweep_all

        eraser = wiring.eraser()
        swept = sweep_all(eraser.store, eraser, wiring.privacy_stores(), clock.now_ts())
        expired = sum(s.customers_expired for s in swept)
        metrics.add_metric(name="RetentionExpired", unit=MetricUnit.Count, value=expired)
        return {"stores": len(swept), "customers_expired": expired}
    result = run_erasure_request(body, eraser=wiring.eraser())
    logger.info("erasure request", extra=result)
    metrics.add_metric(name=f"Erasure_{result['status']}", unit=MetricUnit.Count, value=1)
    return result


@metrics.log_metrics
@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.process_sqs_batch(event, context, record_handler)
