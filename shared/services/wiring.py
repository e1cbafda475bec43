"""Each λ's dependencies, built in one place from the settings, once per container.

Handlers (functions/*/handler.py) only call these factories. A cached factory builds its stores and
catalogs on first use and keeps them, with their caches, for the container's life; tests call
`reset()` when they switch environments. The first call checks every variable its function cannot
run without (REQUIRED), so a deployment missing one fails naming it, whichever event comes first;
in a Lambda container `check_at_cold_start` runs that check while the handler module is imported.

Adapters and services are imported inside the factories: a handler module stays cheap to import and
a function pays only for what it builds.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.platform import settings as env
from shared.platform.aws import client

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.adapters.privacy_store import PrivacyStore
    from shared.adapters.profile_store import ProfileStore
    from shared.adapters.reputation_store import ReputationStore
    from shared.adapters.segment_store import SegmentStore
    from shared.adapters.store_directory import StoreDirectory
    from shared.adapters.suppression import SuppressionList
    from shared.platform.vapid import VapidKeys
    from shared.services.analytics.report_job import ReportJobDeps
    from shared.services.consent.preferences import PreferenceCenter
    from shared.services.consent.unsubscribe import Confirmer, Unsubscriber
    from shared.services.forms.signup import FormService
    from shared.services.journeys.broadcast import BroadcastTools
    from shared.services.journeys.context import Deps
    from shared.services.journeys.trigger import TriggerDeps
    from shared.services.partners.forwarding import ForwardDeps
    from shared.services.partners.inbound import InboundDeps
    from shared.services.privacy.erase import Eraser
    from shared.services.webhooks import WebhookReceiver

# What each function (infra/description.py FUNCTIONS, by id) cannot run without. The rest of its
# environment may be empty: EMAIL_CONFIGURATION_SET (no SES event destination, e.g. locally),
# PUSH_APP_ID (push not set up) and REPORTS_TOPIC_ARN (rejections reported in S3 only).
REQUIRED: dict[str, tuple[str, ...]] = {
    "ingest": (env.TABLE_NAME, env.BUS_NAME, env.SIGNING_SECRET_ARN),
    "profile": (env.TABLE_NAME, env.BUS_NAME, env.TEMPLATES_BUCKET),
    "journey_trigger": (env.STATE_MACHINE_ARN, env.TABLE_NAME, env.TEMPLATES_BUCKET, env.JOURNEY_QUEUE_URL),
    "journey_step": (
        env.TABLE_NAME,
        env.TEMPLATES_BUCKET,
        env.UNSUBSCRIBE_BASE_URL,
        env.SIGNING_SECRET_ARN,
        env.JOURNEY_QUEUE_URL,  # a broadcast member who must wait is handed to the trigger λ
    ),
    "feedback": (env.TABLE_NAME,),
    "template_validator": (env.TEMPLATES_BUCKET,),
    "report": (env.TABLE_NAME, env.TABLE_ARN, env.ANALYTICS_BUCKET, env.REPORT_QUEUE_URL),
    "partner_forwarder": (env.TABLE_NAME, env.TEMPLATES_BUCKET, env.PARTNERS_QUEUE_URL, env.PARTNERS_DLQ_URL),
    "privacy": (env.TABLE_NAME, env.STATE_MACHINE_ARN),
    "key_rotation": (),
}
POLL_SECONDS_ENV = "REPORT_POLL_SECONDS"
# infra/description.py's privacy-requests rule matches these (shared/ never imports infra/)
PRIVACY_SOURCE = "boomerang.privacy"
ERASURE_REQUESTED = "Customer Erasure Requested"  # the local emulator polls its (instant) exports sooner


def settings_for(function: str) -> env.Settings:
    """The settings, once every variable `function` requires is set (ConfigurationError otherwise)."""
    return env.require(REQUIRED[function])


def check_at_cold_start(function: str) -> None:
    """In a Lambda container (the runtime sets AWS_LAMBDA_FUNCTION_NAME), check the settings now, so
    a missing variable fails the init. Elsewhere (tests and the emulator import handlers before their
    environment exists) the first factory call checks them instead."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        settings_for(function)


def _queue_sender(url: str) -> Callable[[dict[str, Any]], None]:
    sqs = client("sqs")
    return lambda task: sqs.send_message(QueueUrl=url, MessageBody=json.dumps(task))


def _profiles_with_segments(s: env.Settings) -> ProfileStore:
    """As the profile fold runs: with the bucket's segment files (evaluated on every change)."""
    from shared.adapters.profile_store import ProfileStore
    from shared.adapters.segment_catalog import SegmentCatalog

    segments = SegmentCatalog(client("s3"), s.templates_bucket, s.files_cache_seconds)
    return ProfileStore(client("dynamodb"), s.table_name, segments=segments)


# --- ingest ---------------------------------------------------------------------------------------


@functools.cache
def ingest_directory() -> StoreDirectory:
    from shared.adapters.store_directory import StoreDirectory

    table = settings_for("ingest").table_name
    return StoreDirectory(client("dynamodb"), table)


@functools.cache
def form_service() -> FormService:
    from shared.adapters.bus import publish
    from shared.adapters.form_keys import FormKeys
    from shared.adapters.rate_limits import RateLimiter
    from shared.services.forms.signup import FormService

    s = settings_for("ingest")
    return FormService(
        store_for_key=FormKeys(client("dynamodb"), s.table_name).store_for,
        store=ingest_directory().get,
        limiter=RateLimiter(client("dynamodb"), s.table_name),
        publish=lambda events: publish(client("events"), s.bus_name, events),
    )


@functools.cache
def webhook_receiver() -> WebhookReceiver:
    from shared.adapters.bus import archive, publish
    from shared.services.webhooks import WebhookReceiver

    directory = ingest_directory()
    bus_name = settings_for("ingest").bus_name
    return WebhookReceiver(
        secret_for=directory.webhook_secret,
        publish=lambda events: publish(client("events"), bus_name, events),
        archive=lambda record: archive(client("events"), bus_name, record),
    )


@functools.cache
def unsubscriber() -> Unsubscriber:
    from shared.platform.signing import SigningKeyProvider
    from shared.services.consent.unsubscribe import Unsubscriber

    s = settings_for("ingest")
    keys = SigningKeyProvider(client("secretsmanager"), s.signing_secret_arn)
    return Unsubscriber(keys, client("events"), s.bus_name)


def confirmer() -> Confirmer:
    from shared.services.consent.unsubscribe import Confirmer

    return Confirmer(unsubscriber().key_provider, client("events"), settings_for("ingest").bus_name)


def preference_center() -> PreferenceCenter:
    # Shares the unsubscriber's cached signing key; the rest is cheap to build per request.
    from shared.adapters.profile_store import ProfileStore
    from shared.services.consent.preferences import PreferenceCenter

    s = settings_for("ingest")
    profiles = ProfileStore(client("dynamodb"), s.table_name)
    return PreferenceCenter(unsubscriber().key_provider, client("events"), s.bus_name, profiles)


# --- profile --------------------------------------------------------------------------------------


@functools.cache
def profile_store() -> ProfileStore:
    # one per container: its caches (store settings, RFM edges, segment files) last across batches
    return _profiles_with_segments(settings_for("profile"))


# --- journeys -------------------------------------------------------------------------------------


@functools.cache
def trigger_deps() -> TriggerDeps:
    from shared.adapters.index_pages import IndexPages
    from shared.adapters.journey_catalog import JourneyCatalog
    from shared.adapters.journey_store import JourneyStore
    from shared.adapters.store_directory import StoreDirectory
    from shared.services.journeys.trigger import TriggerDeps

    s = settings_for("journey_trigger")
    ddb = client("dynamodb")
    return TriggerDeps(
        sfn=client("stepfunctions"),
        state_machine_arn=s.state_machine_arn,
        stores=StoreDirectory(ddb, s.table_name),
        catalog=JourneyCatalog(client("s3"), s.templates_bucket, s.files_cache_seconds),
        journeys=JourneyStore(ddb, s.table_name),
        profiles=_profiles_with_segments(s),
        audiences=IndexPages(ddb, s.table_name),
        tasks=_queue_sender(s.journey_queue_url),
        send_rate=_send_rate(),
    )


@functools.cache
def segment_store() -> SegmentStore:
    """The journey-trigger λ's daily segments run reads the buyers and segments-due indexes."""
    from shared.adapters.segment_store import SegmentStore

    table = settings_for("journey_trigger").table_name
    return SegmentStore(client("dynamodb"), table)


@functools.cache
def _send_rate() -> Callable[[], int]:
    from shared.adapters.send_pace import ses_max_send_rate

    return ses_max_send_rate(client("ses"))


@functools.cache
def broadcast_tools() -> BroadcastTools:
    """The step λ's broadcast mode: send pages, the shared SES pacing, the queue for deferred members."""
    from shared.adapters.broadcast_pages import BroadcastPages
    from shared.adapters.send_pace import SendPace
    from shared.services.journeys.broadcast import BroadcastTools

    s = settings_for("journey_step")
    ddb = client("dynamodb")
    return BroadcastTools(
        pages=BroadcastPages(ddb, s.table_name),
        pace=SendPace(ddb, s.table_name, _send_rate()),
        defer=_queue_sender(s.journey_queue_url),
    )


@functools.cache
def step_deps() -> Deps:
    from shared.adapters.fulfilment_store import FulfilmentStore
    from shared.adapters.journey_catalog import JourneyCatalog
    from shared.adapters.journey_store import JourneyStore
    from shared.adapters.offer_store import OfferStore
    from shared.adapters.product_catalog import ProductCatalog
    from shared.adapters.profile_store import ProfileStore
    from shared.adapters.reputation_store import ReputationStore
    from shared.adapters.segment_catalog import SegmentCatalog
    from shared.adapters.store_directory import StoreDirectory
    from shared.adapters.suppression import SuppressionList
    from shared.platform.signing import SigningKeyProvider
    from shared.services.journeys.context import Deps
    from shared.templates.store import TemplateStore

    s = settings_for("journey_step")
    ddb, s3 = client("dynamodb"), client("s3")
    return Deps(
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
        vapid=vapid_keys("journey_step"),
        webpush_session=_webpush_session(s.webpush_ca_bundle),
        suppressions=SuppressionList(ddb, s.table_name),
        catalog=JourneyCatalog(s3, s.templates_bucket, s.files_cache_seconds),
        offers=OfferStore(ddb, s.table_name),
        products=ProductCatalog(s3, s.templates_bucket),
        segments=SegmentCatalog(s3, s.templates_bucket, s.files_cache_seconds),
        fulfilment=FulfilmentStore(ddb, s.table_name),
        reputation=ReputationStore(ddb, s.table_name),
    )


@functools.cache
def vapid_keys(function: str) -> VapidKeys | None:
    """Each store's VAPID key pair from the root secret; None where web push is not set up."""
    from shared.platform.vapid import VapidKeys

    arn = settings_for(function).vapid_secret_arn
    return VapidKeys(client("secretsmanager"), arn) if arn else None


def _webpush_session(ca_bundle: str) -> Any:
    import requests

    session = requests.Session()
    session.trust_env = False  # push services are reached directly, never through an env proxy
    if ca_bundle:
        session.verify = ca_bundle
    return session


# --- feedback -------------------------------------------------------------------------------------


def feedback_directory() -> StoreDirectory:
    # built per batch: feedback is rare enough not to need a store lookup cached any longer
    from shared.adapters.store_directory import StoreDirectory

    table = settings_for("feedback").table_name
    return StoreDirectory(client("dynamodb"), table)


@functools.cache
def feedback_reputation() -> ReputationStore:
    """The account's delivered / bounced / complained counts the feedback λ adds to."""
    from shared.adapters.reputation_store import ReputationStore

    return ReputationStore(client("dynamodb"), settings_for("feedback").table_name)


@functools.cache
def suppression_list() -> SuppressionList:
    from shared.adapters.suppression import SuppressionList

    table = settings_for("feedback").table_name
    return SuppressionList(client("dynamodb"), table)


# --- report ---------------------------------------------------------------------------------------


@functools.cache
def report_deps() -> ReportJobDeps:
    from shared.adapters.store_directory import StoreDirectory
    from shared.services.analytics.report_job import DEFAULT_POLL_SECONDS, ReportJobDeps

    s = settings_for("report")
    ddb, sqs = client("dynamodb"), client("sqs")

    def send(task: dict[str, Any], delay: int) -> None:
        sqs.send_message(QueueUrl=s.report_queue_url, MessageBody=json.dumps(task), DelaySeconds=delay)

    return ReportJobDeps(
        ddb=ddb,
        s3=client("s3"),
        table_arn=s.table_arn,
        bucket=s.analytics_bucket,
        store_ids=StoreDirectory(ddb, s.table_name).store_ids,
        send=send,
        poll_seconds=int(os.environ.get(POLL_SECONDS_ENV) or DEFAULT_POLL_SECONDS),
    )


# --- fulfilment partners -------------------------------------------------------------------------


@functools.cache
def forward_deps() -> ForwardDeps:
    from shared.adapters.fulfilment_store import FulfilmentStore
    from shared.adapters.partner_catalog import PartnerCatalog
    from shared.adapters.partner_http import OAuthTokens, PartnerSecrets, post
    from shared.services.partners.forwarding import ForwardDeps
    from shared.templates.sandbox import compile_template

    s = settings_for("partner_forwarder")
    sqs = client("sqs")

    def render(source: str, variables: dict[str, Any]) -> str:
        template = compile_template(source, file="template", html=False, template_name="partner")
        return str(template.render(variables))

    return ForwardDeps(
        catalog=PartnerCatalog(client("s3"), s.templates_bucket, s.files_cache_seconds),
        store=FulfilmentStore(client("dynamodb"), s.table_name),
        secrets=PartnerSecrets(client("secretsmanager")),
        post=post,
        send_task=lambda task, delay: sqs.send_message(
            QueueUrl=s.partners_queue_url, MessageBody=json.dumps(task), DelaySeconds=delay
        ),
        dead_letter=lambda task: sqs.send_message(QueueUrl=s.partners_dlq_url, MessageBody=json.dumps(task)),
        render=render,
        tokens=OAuthTokens(),
    )


@functools.cache
def inbound_deps() -> InboundDeps:
    """The ingest λ's partners route: partner files, their secrets, the forward records."""
    from shared.adapters.fulfilment_store import FulfilmentStore
    from shared.adapters.partner_catalog import PartnerCatalog
    from shared.adapters.partner_http import PartnerSecrets
    from shared.services.partners.inbound import InboundDeps

    s = env.require((*REQUIRED["ingest"], env.TEMPLATES_BUCKET))
    return InboundDeps(
        catalog=PartnerCatalog(client("s3"), s.templates_bucket, s.files_cache_seconds),
        secrets=PartnerSecrets(client("secretsmanager")),
        fulfilment=FulfilmentStore(client("dynamodb"), s.table_name),
    )


# --- privacy ----------------------------------------------------------------------------------------


@functools.cache
def eraser() -> Eraser:
    from shared.adapters.privacy_store import PrivacyStore
    from shared.services.privacy.erase import Eraser

    s = settings_for("privacy")
    return Eraser(
        PrivacyStore(client("dynamodb"), s.table_name), client("stepfunctions"), s.state_machine_arn
    )


def privacy_stores() -> StoreDirectory:
    from shared.adapters.store_directory import StoreDirectory

    return StoreDirectory(client("dynamodb"), settings_for("privacy").table_name)


def publish_erasure_request(detail: dict[str, Any]) -> None:
    """Onto the bus, whose privacy-requests rule queues it for the privacy λ."""
    from shared.adapters.bus import publish_detail

    publish_detail(
        client("events"), settings_for("ingest").bus_name, PRIVACY_SOURCE, ERASURE_REQUESTED, detail
    )


def ingest_privacy_store() -> PrivacyStore:
    """Exports read at the API's door (the ingest λ reads the table; it deletes nothing)."""
    from shared.adapters.privacy_store import PrivacyStore

    return PrivacyStore(client("dynamodb"), settings_for("ingest").table_name)


# --- SQS batches ----------------------------------------------------------------------------------


def process_sqs_batch(
    event: dict[str, Any], context: LambdaContext, record_handler: Callable[[SQSRecord], Any]
) -> dict[str, Any]:
    """Powertools' partial batch response: a record that raises is reported failed (and retried)."""
    # Imported here: Powertools' batch utilities are a sizeable part of a cold import.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from shared.platform.log_safe import scrub_errors

    processor = BatchProcessor(event_type=EventType.SQS)  # per batch: it holds the batch's outcomes
    # Powertools logs a failed record's exception (and the runtime an all-failed batch's): scrubbed
    return dict(
        process_partial_response(
            event=event, record_handler=scrub_errors(record_handler), processor=processor, context=context
        )
    )


_CACHED = (
    ingest_directory,
    form_service,
    webhook_receiver,
    unsubscriber,
    profile_store,
    trigger_deps,
    segment_store,
    step_deps,
    broadcast_tools,
    _send_rate,
    suppression_list,
    report_deps,
    forward_deps,
    inbound_deps,
    eraser,
)


def reset() -> None:
    """Forget every built dependency (tests switch environments and moto endpoints between cases)."""
    for factory in _CACHED:
        factory.cache_clear()
    vapid_keys.cache_clear()
