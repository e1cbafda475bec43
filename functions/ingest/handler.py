"""Ingest λ: the Segment-compatible event API, one-click unsubscribe and the preferences page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from shared.platform import clock
from shared.platform.aws import client
from shared.services import wiring
from shared.services.ingest import (
    UNAUTHORIZED,
    ApiProblem,
    api_key_from_headers,
    parse_calls,
    read_body,
    validate,
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
    return read_body(app.current_event.body, bool(app.current_event.is_base64_encoded)).decode(
        "utf-8", "replace"
    )


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers or {})


@app.exception_handler(ApiProblem)
def _problem(exc: ApiProblem) -> Response:
    metrics.add_metric(name="RequestsRejected", unit=MetricUnit.Count, value=1)
    logger.info(
        "request rejected", extra={"status": exc.status, "error": exc.error, "problems": len(exc.errors)}
    )
    headers = {"WWW-Authenticate": 'Basic realm="boomerang"'} if exc.status == 401 else None
    return _json(exc.status, exc.body(), headers)


def _accept(route: str) -> Response:
    from shared.adapters.bus import PublishFailed, publish

    store_id = wiring.ingest_directory().store_id_for_key(
        api_key_from_headers(app.current_event.headers) or ""
    )
    if store_id is None:
        raise ApiProblem(401, "unauthorized", UNAUTHORIZED)
    body = read_body(app.current_event.body, bool(app.current_event.is_base64_encoded))
    events = validate(parse_calls(body, route), store_id, clock.now_ts())
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


@app.not_found
def _not_found(_: Exception) -> Response:
    return _json(
        404,
        {
            "success": False,
            "error": "not_found",
            "message": "routes: POST /v1/batch, /v1/track, /v1/identify; GET|POST /v1/unsubscribe, /v1/preferences, /v1/confirm; POST /v1/partners/<store>/<partner>/shipments",
        },
    )


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
