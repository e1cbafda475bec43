"""Journey step λ: invoked by the journey state machine after each wait."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.adapters.journey_catalog import JourneyCatalog
from shared.adapters.journey_store import JourneyStore
from shared.adapters.offer_store import OfferStore
from shared.adapters.product_catalog import ProductCatalog
from shared.adapters.profile_store import ProfileStore
from shared.adapters.segment_catalog import SegmentCatalog
from shared.adapters.store_directory import StoreDirectory
from shared.adapters.suppression import SuppressionList
from shared.platform.aws import client
from shared.platform.settings import settings
from shared.platform.signing import SigningKeyProvider
from shared.services.journeys.context import Deps, StepInput
from shared.services.journeys.step import run_step
from shared.templates.store import TemplateStore

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
_deps: Deps | None = None


def deps() -> Deps:
    global _deps
    if _deps is None:
        s = settings()
        ddb, s3 = client("dynamodb"), client("s3")
        _deps = Deps(
            profiles=ProfileStore(ddb, s.table_name),
            journeys=JourneyStore(ddb, s.table_name),
            stores=StoreDirectory(ddb, s.table_name),
            templates=TemplateStore(s3, s.templates_bucket, ttl_seconds=s.templates_cache_seconds),
            ses=client("sesv2"),
            signing_keys=SigningKeyProvider(client("secretsmanager"), s.signing_secret_arn),
            unsubscribe_base_url=s.unsubscribe_base_url,
            configuration_set=s.email_configuration_set or None,
            sns=client("sns"),
            pinpoint=client("pinpoint"),
            push_app_id=s.push_app_id,
            suppressions=SuppressionList(ddb, s.table_name),
            catalog=JourneyCatalog(s3, s.templates_bucket, s.files_cache_seconds),
            offers=OfferStore(ddb, s.table_name),
            products=ProductCatalog(s3, s.templates_bucket),
            segments=SegmentCatalog(s3, s.templates_bucket, s.files_cache_seconds),
        )
    return _deps


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    out = run_step(StepInput.model_validate(event), deps())
    for happened in out.events:
        metrics.add_metric(name=f"JourneyStep_{happened['type']}", unit=MetricUnit.Count, value=1)
        if happened["type"] == "sent":
            metrics.add_metric(
                name=f"MessagesSent_{happened.get('channel', 'email')}", unit=MetricUnit.Count, value=1
            )
        if str(happened.get("reason", "")).startswith("offer pool"):
            # a store's unique codes ran out: an alarm-worthy condition, not just a log line
            metrics.add_metric(name="OfferPoolExhausted", unit=MetricUnit.Count, value=1)
    logger.info(
        "journey step",
        extra={
            "store": out.store_id,
            "journey": out.journey,
            "instance": out.instance,
            "step": out.step,
            "action": out.action,
            "wait_seconds": out.wait_seconds,
            "reason": out.reason,
            "events": [
                {k: v for k, v in e.items() if k in ("type", "step_id", "channel", "variant", "reason")}
                for e in out.events
            ],
        },
    )
    return out.model_dump(mode="json")
