"""The functions' Powertools Logger, writing only the keys an operator reads.

Powertools' `inject_lambda_context` puts function_name, function_arn, function_memory_size and
cold_start on every line, and its formatter adds location, timestamp and service: ~190 B a line (over
a third of a browser event's function log bytes, tests/bench_cost.py) that the log group (one per
function), the stream and each log event's own timestamp already say. A line keeps its level (Lambda
filters application logs on it), its message and fields, function_request_id (the invocation: it ties
one run's lines together and to Lambda's own error lines) and, on the API's function, correlation_id:
API Gateway's request id, the requestId of the request's access-log line.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import jmespath_utils

SERVICE = "boomerang"  # the logger's name: shared/ code logs through logging.getLogger("boomerang")
# Keys the Powertools formatter writes that a line does not need (see the module docstring)
DROPPED_KEYS = ("location", "timestamp", "service")

H = TypeVar("H", bound=Callable[..., Any])
# An invocation that added no metric (the profile λ's usual batch, its outcomes in the batch's line)
# writes no metrics blob, as intended: Powertools would warn about it on every new container.
warnings.filterwarnings("ignore", message="No application metrics to publish")
# The fields of a batch's one line (BatchLog; tests/bench_cost.py spreads its bytes over the batch)
BATCH_KEYS = ("records", "failed", "outcomes", "message_ids")


def function_logger() -> Logger:
    """The Logger a handler logs with."""
    logger = Logger(service=SERVICE)
    logger.remove_keys(DROPPED_KEYS)
    return logger


def log_context(logger: Logger, correlation_id_path: str | None = None) -> Callable[[H], H]:
    """Decorate a handler: its lines carry the invocation's request id (and, with
    `correlation_id_path`, the id found there in the event)."""

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        def run(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            logger.append_keys(function_request_id=context.aws_request_id)
            # (None drops the key: a logger shared in one process keeps no other function's id)
            found = (
                jmespath_utils.query(envelope=correlation_id_path, data=event)
                if correlation_id_path
                else None
            )
            logger.set_correlation_id(found)
            return handler(event, context, *args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


class BatchLog:
    """One INFO line per invocation for a batch's routine outcomes (counts by outcome, and the event
    ids so one event can still be followed), in place of a line per event that repeats the metrics;
    an outcome an operator acts on (a skip with its reason, a reject) keeps its own line."""

    def __init__(self, logger: Logger, message: str) -> None:
        self.logger, self.message = logger, message
        self.outcomes: dict[str, int] = {}
        self.message_ids: list[str] = []

    def routine(self, outcome: str, message_id: str | None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if message_id and message_id not in self.message_ids:
            self.message_ids.append(message_id)

    def write(self, records: int, response: dict[str, Any]) -> None:
        failed = len(response.get("batchItemFailures") or [])
        if not self.outcomes and not failed:  # every record has its own line
            return
        self.logger.info(
            self.message,
            extra=dict(zip(BATCH_KEYS, (records, failed, self.outcomes, self.message_ids), strict=True)),
        )
