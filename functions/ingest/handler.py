"""Ingest λ: the Segment-compatible event API, platform webhooks, one-click unsubscribe, preferences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform import clock
from shared.platform.aws import client
from shared.services import wiring
from shared.services.ingest import (
    RETRY_AFTER_S,
    UNAUTHORIZED,
    ApiProblem,
    api_key_from_headers,
    parse_calls,
    parse_json,
    read_body,
    sent_at,
    validate,
    write_key_from_body,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")
app = APIGatewayRestResolver()
wiring.check_at_cold_start("ingest")


def _html(page: Any) -> Response:
    return Response(status_code=page.status, content_type="text/html; charset=utf-8", body=page.html)


def _form_body() -> str:
    event = app.current_event
    return read_body(event.body, bool(event.is_base64_encoded), event.headers).decode("utf-8", "replace")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers or {})


@app.exception_handler(ApiProblem)
def _problem(exc: ApiProblem) -> Response:
    metrics.add_metric(name="RequestsRejected", unit=MetricUnit.Count, value=1)
    logger.info(
        "request rejected", extra={"status": exc.status, "error": exc.error, "problems": len(exc.errors)}
    )
    headers = {"WWW-Authenticate": 'Basic realm="boomerang"'} if exc.status == 401 else {}
    if exc.status in (429, 503):  # SDKs back off by it instead of hammering a struggling endpoint
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return _json(exc.status, exc.body(), headers)


def _accept(route: str) -> Response:
    from shared.adapters.bus import PublishFailed, publish

    directory = wiring.ingest_directory()
    headers = app.current_event.headers
    header_key = api_key_from_headers(headers)
    # a key in the headers is checked before the body is even inflated
    store_id = directory.store_id_for_key(header_key) if header_key else None
    if header_key and store_id is None:
        raise ApiProblem(401, "unauthorized", UNAUTHORIZED)
    payload = parse_json(
        read_body(app.current_event.body, bool(app.current_event.is_base64_encoded), headers)
    )
    if store_id is None:
        store_id = directory.store_id_for_key(write_key_from_body(payload) or "")
        if store_id is None:
            raise ApiProblem(401, "unauthorized", UNAUTHORIZED)
    events = validate(parse_calls(payload, route), store_id, clock.now_ts(), sent_at(payload))
    try:
        publish(client("events"), wiring.settings_for("ingest").bus_name, events)
    except PublishFailed as exc:
        logger.warning("publish failed", extra={"store": store_id, "failed": exc.failed, "codes": exc.codes})
        metrics.add_metric(name="PublishFailures", unit=MetricUnit.Count, value=exc.failed)
        raise ApiProblem(
            503, "unavailable", "events could not be stored right now; retry the same request"
        ) from exc
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(events))
    logger.info("accepted", extra={"store": store_id, "route": route, "accepted": len(events)})
    return _json(200, {"success": True, "accepted": len(events)})


@app.post("/v1/batch")
def batch() -> Response:
    return _accept("batch")


@app.post("/v1/track")
def track() -> Response:
    return _accept("track")


@app.post("/v1/identify")
def identify() -> Response:
    return _accept("identify")


def _webhook(platform: str, store: str) -> Response:
    from shared.adapters.bus import PublishFailed

    event = app.current_event
    try:
        result = wiring.webhook_receiver().receive(
            platform, store, event.headers, event.body, bool(event.is_base64_encoded), clock.now_ts()
        )
    except PublishFailed as exc:
        logger.warning(
            "webhook publish failed", extra={"store": store, "platform": platform, "failed": exc.failed}
        )
        metrics.add_metric(name="PublishFailures", unit=MetricUnit.Count, value=exc.failed)
        # the platform retries with the same delivery id: the same messageIds, folded once
        raise ApiProblem(
            503, "unavailable", "the webhook could not be stored right now; it is safe to resend"
        ) from exc
    metrics.add_metric(name="WebhooksReceived", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=result.accepted)
    if not result.known_topic:
        metrics.add_metric(name="WebhookTopicsUnknown", unit=MetricUnit.Count, value=1)
    if result.rejected:
        metrics.add_metric(name="WebhookCallsRejected", unit=MetricUnit.Count, value=result.rejected)
    # topic and counts only: the payload holds names, emails and addresses
    logger.info(
        "webhook",
        extra={
            "store": store,
            "platform": platform,
            "topic": result.topic,
            "accepted": result.accepted,
            "rejected": result.rejected,
            "archived": result.archived,
            "known_topic": result.known_topic,
        },
    )
    return _json(200, result.body())


@app.post("/v1/webhooks/shopify/<store>")
def shopify_webhook(store: str) -> Response:
    return _webhook("shopify", store)


@app.post("/v1/webhooks/woocommerce/<store>")
def woocommerce_webhook(store: str) -> Response:
    return _webhook("woocommerce", store)


@app.get("/v1/unsubscribe")
def unsubscribe_page() -> Response:
    return _html(wiring.unsubscriber().page(app.current_event.query_string_parameters or {}))


@app.post("/v1/unsubscribe")
def unsubscribe_post() -> Response:
    return _html(wiring.unsubscriber().confirm(app.current_event.query_string_parameters or {}, _form_body()))


@app.get("/v1/confirm")
def confirm_page() -> Response:
    return _html(wiring.confirmer().page(app.current_event.query_string_parameters or {}))


@app.post("/v1/confirm")
def confirm_post() -> Response:
    return _html(wiring.confirmer().confirm(app.current_event.query_string_parameters or {}, _form_body()))


@app.get("/v1/preferences")
def preferences_page() -> Response:
    return _html(wiring.preference_center().page(app.current_event.query_string_parameters or {}))


@app.post("/v1/preferences")
def preferences_post() -> Response:
    from shared.adapters.bus import PublishFailed

    params = app.current_event.query_string_parameters or {}
    try:
        return _html(wiring.preference_center().save(params, _form_body()))
    except PublishFailed as exc:
        logger.warning("preferences publish failed", extra={"failed": exc.failed, "codes": exc.codes})
        raise ApiProblem(
            503, "unavailable", "your preferences could not be saved right now; try again"
        ) from exc


@app.not_found
def _not_found(_: Exception) -> Response:
    return _json(
        404,
        {
            "success": False,
            "error": "not_found",
            "message": "routes: POST /v1/batch, /v1/track, /v1/identify, /v1/webhooks/shopify/<store>, "
            "/v1/webhooks/woocommerce/<store>; GET|POST /v1/unsubscribe, /v1/preferences, /v1/confirm",
        },
    )


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
