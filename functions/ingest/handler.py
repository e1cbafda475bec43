"""Ingest λ: the Segment-compatible event API, platform webhooks, one-click unsubscribe, the
preferences page, and the store backend's data-subject requests (export answered here; erasure
queued for the privacy λ)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform import clock
from shared.platform.aws import client
from shared.platform.function_log import function_logger, log_context
from shared.platform.log_safe import scrub_errors
from shared.services import wiring
from shared.services.ingest import (
    RETRY_AFTER_S,
    UNAUTHORIZED,
    ApiProblem,
    api_key_from_headers,
    check_envelope,
    parse_calls,
    parse_json,
    read_body,
    sent_at,
    validate,
    write_key_from_body,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()
metrics = Metrics(namespace="Boomerang", service="boomerang")
app = APIGatewayRestResolver()
wiring.check_at_cold_start("ingest")


def _html(page: Any) -> Response:
    if getattr(page, "refused", None):
        metrics.add_metric(name="PagePostsRefused", unit=MetricUnit.Count, value=1)
        logger.info("page post refused", extra={"reason": page.refused, "status": page.status})
    return Response(
        status_code=page.status, content_type="text/html; charset=utf-8", body=page.html, headers=page.headers
    )


def _page_post() -> Any:
    """The POST as the public pages judge it: a same-origin form post, or RFC 8058 one-click."""
    from shared.services.consent.guard import page_post

    event = app.current_event
    body = read_body(event.body, bool(event.is_base64_encoded), event.headers)
    return page_post(event.headers, body, event.raw_event.get("requestContext"))


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
    check_envelope(payload, route)
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


# --- the signup form (README "Signup forms"): public, with the publishable form key ----------------


def _form_answer(answer: Any) -> Response:
    metrics.add_metric(name=f"Form{answer.outcome.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    body = answer.body if answer.status != 204 else None
    return Response(
        status_code=answer.status, content_type="application/json", body=body, headers=answer.headers
    )


@app.get("/v1/forms/boomerang.js", compress=True)
def form_script() -> Response:
    from shared.services.forms.script import script

    found = script()
    lower = {k.lower(): v for k, v in (app.current_event.headers or {}).items()}
    if lower.get("if-none-match") == found.etag:
        return Response(status_code=304, body=None, headers=found.headers())
    return Response(
        status_code=200,
        content_type="text/javascript; charset=utf-8",
        body=found.body,
        headers=found.headers(),
    )


@app.get("/v1/forms/<key>/config")
def form_config(key: str) -> Response:
    return _form_answer(wiring.form_service().config(key, app.current_event.headers))


@app.route("/v1/forms/<key>/submit", method="OPTIONS")
def form_preflight(key: str) -> Response:
    return _form_answer(wiring.form_service().preflight(key, app.current_event.headers))


@app.post("/v1/forms/<key>/submit")
def form_submit(key: str) -> Response:
    from shared.adapters.bus import PublishFailed

    event = app.current_event
    service = wiring.form_service()
    try:
        answer = service.submit(
            key,
            event.headers,
            event.body,
            bool(event.is_base64_encoded),
            event.request_context.identity.source_ip or "",
            clock.now_ts(),
        )
    except PublishFailed as exc:
        logger.warning("form publish failed", extra={"failed": exc.failed, "codes": exc.codes})
        metrics.add_metric(name="PublishFailures", unit=MetricUnit.Count, value=exc.failed)
        answer = service.unavailable(event.headers)
    # the outcome only: a submission holds an email, a phone, a name and a birthday
    logger.info("form submission", extra={"status": answer.status, "outcome": answer.outcome})
    return _form_answer(answer)


@app.get("/v1/webpush/<store>/<name>")
def webpush_asset(store: str, name: str) -> Response:
    """The store's service worker, subscribe helper or VAPID public key (shared/services/webpush)."""
    from shared.services.webpush import site_asset

    found = site_asset(name, store, wiring.ingest_directory(), wiring.vapid_keys("ingest"))
    return Response(
        status_code=found.status, content_type=found.content_type, body=found.body, headers=found.headers
    )


@app.get("/v1/unsubscribe")
def unsubscribe_page() -> Response:
    return _html(wiring.unsubscriber().page(app.current_event.query_string_parameters or {}))


@app.post("/v1/unsubscribe")
def unsubscribe_post() -> Response:
    return _html(wiring.unsubscriber().confirm(app.current_event.query_string_parameters or {}, _page_post()))


@app.get("/v1/confirm")
def confirm_page() -> Response:
    return _html(wiring.confirmer().page(app.current_event.query_string_parameters or {}))


@app.post("/v1/confirm")
def confirm_post() -> Response:
    return _html(wiring.confirmer().confirm(app.current_event.query_string_parameters or {}, _page_post()))


@app.get("/v1/preferences")
def preferences_page() -> Response:
    return _html(wiring.preference_center().page(app.current_event.query_string_parameters or {}))


@app.post("/v1/preferences")
def preferences_post() -> Response:
    from shared.adapters.bus import PublishFailed

    params = app.current_event.query_string_parameters or {}
    try:
        return _html(wiring.preference_center().save(params, _page_post()))
    except PublishFailed as exc:
        logger.warning("preferences publish failed", extra={"failed": exc.failed, "codes": exc.codes})
        raise ApiProblem(
            503, "unavailable", "your preferences could not be saved right now; try again"
        ) from exc


@app.post("/v1/partners/<store>/<partner>/shipments")
def partner_shipment(store: str, partner: str) -> Response:
    """A fulfilment partner's signed shipping update -> Order Shipped / Order Delivered on the bus."""
    from shared.adapters.bus import PublishFailed, publish
    from shared.services.partners.inbound import shipment_event

    body = read_body(app.current_event.body, bool(app.current_event.is_base64_encoded))
    event = shipment_event(store, partner, dict(app.current_event.headers or {}), body, wiring.inbound_deps())
    try:
        publish(client("events"), wiring.settings_for("ingest").bus_name, [event])
    except PublishFailed as exc:
        raise ApiProblem(
            503, "unavailable", "the update could not be stored right now; send it again"
        ) from exc
    logger.info("shipment update", extra={"store": store, "partner": partner, "event": event.event})
    return _json(200, {"success": True, "event": event.event})


# --- data-subject requests from the store's backend (README "Personal data") ---------------------


def _store_for_request() -> str:
    store_id = wiring.ingest_directory().store_id_for_key(
        api_key_from_headers(app.current_event.headers) or ""
    )
    if store_id is None:
        raise ApiProblem(401, "unauthorized", UNAUTHORIZED)
    return store_id


def _privacy_params() -> dict[str, Any]:
    from shared.services.privacy.requests import parse_body

    params: dict[str, Any] = dict(app.current_event.query_string_parameters or {})
    if app.current_event.http_method == "POST":
        params.update(
            parse_body(read_body(app.current_event.body, bool(app.current_event.is_base64_encoded)))
        )
    return params


def _bad_request(exc: Exception) -> ApiProblem:
    from shared.domain.api_calls import ApiError

    return ApiProblem(
        400, "invalid", str(exc), [ApiError(index=0, field=getattr(exc, "field", ""), message=str(exc))]
    )


@app.post("/v1/customers/erase")
def customers_erase() -> Response:
    from shared.adapters.bus import PublishFailed
    from shared.services.privacy.collect import BadRequest
    from shared.services.privacy.requests import erasure_request, who_from

    store_id = _store_for_request()
    try:
        who = who_from(store_id, _privacy_params())
    except BadRequest as exc:
        raise _bad_request(exc) from exc
    detail = erasure_request(who, clock.now_ts())
    try:
        wiring.publish_erasure_request(detail)
    except PublishFailed as exc:
        raise ApiProblem(503, "unavailable", "the request could not be queued; send it again") from exc
    # counts and ids only: the request id, never who
    logger.info("erasure requested", extra={"store": store_id, "request_id": detail["request_id"]})
    return _json(202, {"success": True, "status": "accepted", "request_id": detail["request_id"]})


@app.route("/v1/customers/export", method=["GET", "POST"])
def customers_export() -> Response:
    from shared.services.privacy import export as exporting
    from shared.services.privacy.collect import BadRequest
    from shared.services.privacy.requests import who_from

    store_id = _store_for_request()
    params = _privacy_params()
    fmt = str(params.pop("format", "json"))
    if fmt not in ("json", "html"):
        raise _bad_request(BadRequest("format", "expected json or html"))
    try:
        document = exporting.export(wiring.ingest_privacy_store(), who_from(store_id, params))
    except BadRequest as exc:
        raise _bad_request(exc) from exc
    logger.info("customer exported", extra={"store": store_id, "counts": exporting.counts(document)})
    if fmt == "html":
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=exporting.to_html(document),
            headers=exporting.HTML_HEADERS,
        )
    return Response(status_code=200, content_type="application/json", body=exporting.to_json(document))


@app.not_found
def _not_found(_: Exception) -> Response:
    return _json(
        404,
        {
            "success": False,
            "error": "not_found",
            "message": "routes: POST /v1/batch, /v1/track, /v1/identify, /v1/webhooks/shopify/<store>, "
            "/v1/webhooks/woocommerce/<store>, /v1/forms/<key>/submit; GET /v1/forms/boomerang.js, "
            "/v1/forms/<key>/config; GET|POST /v1/unsubscribe, /v1/preferences, /v1/confirm; "
            "POST /v1/customers/erase; GET|POST /v1/customers/export; POST /v1/partners/<store>/<partner>/shipments",
        },
    )


@metrics.log_metrics
@log_context(logger, correlation_paths.API_GATEWAY_REST)
@scrub_errors  # the runtime logs an unhandled error's message: never a customer value
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
