"""Journey step λ: invoked by the journey state machine after each wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform.function_log import function_logger, log_context
from shared.platform.log_safe import scrub_errors
from shared.services import wiring

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.services.journeys.context import StepOutput

logger = function_logger()
metrics = Metrics(namespace="Boomerang", service="boomerang")
wiring.check_at_cold_start("journey_step")


@metrics.log_metrics
@log_context(logger)
@scrub_errors  # the runtime logs an unhandled error's message: never a customer value
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on the first invocation: the step's engine and its adapters are the bulk of this λ.
    from shared.services.journeys.context import StepInput
    from shared.services.journeys.step import run_step

    if event.get("mode") == "broadcast":  # one send instant's pages (shared/services/journeys/broadcast.py)
        return _broadcast(event, context)
    out = run_step(StepInput.model_validate(event), wiring.step_deps())
    _count(out)
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


def _count(out: StepOutput) -> None:
    """Metrics for what one step did (an execution's step, or one member of a broadcast page)."""
    for happened in out.events:
        metrics.add_metric(name=f"JourneyStep_{happened['type']}", unit=MetricUnit.Count, value=1)
        if happened["type"] == "sent":
            metrics.add_metric(
                name=f"MessagesSent_{happened.get('channel', 'email')}", unit=MetricUnit.Count, value=1
            )
        if str(happened.get("reason", "")).startswith("offer pool"):
            # a store's unique codes ran out: an alarm-worthy condition, not just a log line
            metrics.add_metric(name="OfferPoolExhausted", unit=MetricUnit.Count, value=1)
        if "marketing email paused" in str(happened.get("reason", "")):
            # the account's bounce/complaint rate nears SES's review: infra/constructs/alarms.py
            metrics.add_metric(name="MarketingEmailPaused", unit=MetricUnit.Count, value=1)
        if happened["type"] == "deferred" and ": parked, " in str(happened.get("reason", "")):
            metrics.add_metric(name="SendParked", unit=MetricUnit.Count, value=1)


# The local emulator reads an ordinary step's sends from its result; a broadcast page's members'
# results are not returned (the execution's payload stays small), so it registers here to see them.
STEP_OBSERVERS: list[Callable[[dict[str, Any]], None]] = []


def _observe(out: StepOutput) -> None:
    _count(out)
    if STEP_OBSERVERS:
        result = out.model_dump(mode="json")
        for observer in STEP_OBSERVERS:
            observer(result)


def _broadcast(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from shared.services.journeys.broadcast import run_instant

    out = run_instant(
        event, wiring.step_deps(), wiring.broadcast_tools(), context.get_remaining_time_in_millis, _observe
    )
    done = {k: v - int((event.get("counts") or {}).get(k, 0)) for k, v in out["counts"].items()}
    for kind, n in done.items():
        if n:
            metrics.add_metric(name=f"Broadcast_{kind.replace(' ', '_')}", unit=MetricUnit.Count, value=n)
    logger.info(
        "broadcast pages",
        extra={
            "store": out["store_id"],
            "journey": out["journey"],
            "instant": out["instant"],
            "action": out["action"],
            "reason": out["reason"],
            "done": done,
        },
    )
    return out
