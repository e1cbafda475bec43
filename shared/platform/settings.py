"""Environment contract between the infrastructure (CDK stack or local emulator) and the handlers.

Read once per cold start, at the handler boundary, never at import time. Each function names the
variables it cannot run without (shared/services/wiring.py); `require` checks them all at once, so a
deployment that forgot one fails naming it instead of on whichever event first needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache

from pydantic import BaseModel, Field, ValidationError

# Names of the environment variables; infra/description.py refers to these, so CDK and the emulator
# set exactly what the handlers read.
TABLE_NAME = "TABLE_NAME"
BUS_NAME = "BUS_NAME"
TEMPLATES_BUCKET = "TEMPLATES_BUCKET"
STATE_MACHINE_ARN = "STATE_MACHINE_ARN"
EMAIL_CONFIGURATION_SET = "EMAIL_CONFIGURATION_SET"
UNSUBSCRIBE_BASE_URL = "UNSUBSCRIBE_BASE_URL"
SIGNING_SECRET_ARN = "SIGNING_SECRET_ARN"
PUSH_APP_ID = "PUSH_APP_ID"  # the Pinpoint (End User Messaging Push) application id
VAPID_SECRET_ARN = "VAPID_SECRET_ARN"  # root secret each store's VAPID key pair is derived from
# optional: a CA bundle the push services' certificates are checked against (the emulator's stand-in)
WEBPUSH_CA_BUNDLE = "WEBPUSH_CA_BUNDLE"
JOURNEY_QUEUE_URL = "JOURNEY_QUEUE_URL"  # the trigger λ queues an audience's next page here
REPORTS_TOPIC_ARN = "REPORTS_TOPIC_ARN"  # SNS topic: template/journey files rejected by the validator
TABLE_ARN = "TABLE_ARN"  # ExportTableToPointInTime names the table by ARN
ANALYTICS_BUCKET = "ANALYTICS_BUCKET"  # table exports (exports/) and computed reports (metrics/)
REPORT_QUEUE_URL = "REPORT_QUEUE_URL"  # the report λ queues its next phase (collect) here
PARTNERS_QUEUE_URL = "PARTNERS_QUEUE_URL"  # the forwarder schedules its next attempt here (delayed)
PARTNERS_DLQ_URL = "PARTNERS_DLQ_URL"  # forwards given up after 24 h or refused by the partner
TEMPLATES_CACHE_SECONDS = "TEMPLATES_CACHE_SECONDS"  # optional: how long active versions are cached
FILES_CACHE_SECONDS = "FILES_CACHE_SECONDS"  # optional: how long journey and segment files are cached


class Settings(BaseModel):
    # Not every function has a table (the template validator): whether a variable must be set is
    # each function's REQUIRED list (shared/services/wiring.py), checked by `require`.
    table_name: str = ""
    bus_name: str = "boomerang"
    templates_bucket: str = ""
    state_machine_arn: str = ""
    email_configuration_set: str = ""
    unsubscribe_base_url: str = ""
    signing_secret_arn: str = ""
    push_app_id: str = ""
    vapid_secret_arn: str = ""
    webpush_ca_bundle: str = ""
    journey_queue_url: str = ""
    reports_topic_arn: str = ""
    templates_cache_seconds: float = Field(default=60, ge=0)
    files_cache_seconds: float = Field(default=60, ge=0)
    table_arn: str = ""
    analytics_bucket: str = ""
    report_queue_url: str = ""
    partners_queue_url: str = ""
    partners_dlq_url: str = ""
    # the variables above that were unset or empty when read (`require` checks against these)
    unset: frozenset[str] = frozenset()


class ConfigurationError(RuntimeError):
    pass


def require(names: Iterable[str]) -> Settings:
    """The settings, once every named variable is set to something (a deployment mistake otherwise)."""
    missing = [name for name in names if name in settings().unset]
    if missing:
        raise ConfigurationError(f"Boomerang environment variable(s) not set: {', '.join(missing)}")
    return settings()


_NAMES = (
    TABLE_NAME,
    BUS_NAME,
    TEMPLATES_BUCKET,
    STATE_MACHINE_ARN,
    EMAIL_CONFIGURATION_SET,
    UNSUBSCRIBE_BASE_URL,
    SIGNING_SECRET_ARN,
    PUSH_APP_ID,
    VAPID_SECRET_ARN,
    WEBPUSH_CA_BUNDLE,
    JOURNEY_QUEUE_URL,
    REPORTS_TOPIC_ARN,
    TABLE_ARN,
    ANALYTICS_BUCKET,
    REPORT_QUEUE_URL,
    PARTNERS_QUEUE_URL,
    PARTNERS_DLQ_URL,
    TEMPLATES_CACHE_SECONDS,
    FILES_CACHE_SECONDS,
)


@lru_cache(maxsize=1)
def settings() -> Settings:
    # Read once per container (tests call settings.cache_clear() when they change the environment).
    env = os.environ
    try:
        return Settings(
            table_name=env.get(TABLE_NAME, ""),
            bus_name=env.get(BUS_NAME, "boomerang"),
            templates_bucket=env.get(TEMPLATES_BUCKET, ""),
            state_machine_arn=env.get(STATE_MACHINE_ARN, ""),
            email_configuration_set=env.get(EMAIL_CONFIGURATION_SET, ""),
            unsubscribe_base_url=env.get(UNSUBSCRIBE_BASE_URL, ""),
            signing_secret_arn=env.get(SIGNING_SECRET_ARN, ""),
            push_app_id=env.get(PUSH_APP_ID, ""),
            vapid_secret_arn=env.get(VAPID_SECRET_ARN, ""),
            webpush_ca_bundle=env.get(WEBPUSH_CA_BUNDLE, ""),
            journey_queue_url=env.get(JOURNEY_QUEUE_URL, ""),
            reports_topic_arn=env.get(REPORTS_TOPIC_ARN, ""),
            templates_cache_seconds=env.get(TEMPLATES_CACHE_SECONDS) or 60,
            files_cache_seconds=env.get(FILES_CACHE_SECONDS) or 60,
            table_arn=env.get(TABLE_ARN, ""),
            analytics_bucket=env.get(ANALYTICS_BUCKET, ""),
            report_queue_url=env.get(REPORT_QUEUE_URL, ""),
            partners_queue_url=env.get(PARTNERS_QUEUE_URL, ""),
            partners_dlq_url=env.get(PARTNERS_DLQ_URL, ""),
            unset=frozenset(name for name in _NAMES if not env.get(name)),
        )
    except ValidationError as exc:  # a deployment mistake, not bad input: fail loudly
        raise ConfigurationError(f"invalid Boomerang environment: {exc}") from exc
