"""The storefront-facing HTTP API (the default, `-c api=http`): exactly the routes in description.API,
each a Lambda proxy integration to ingest with payload format 1.0 (the REST proxy event the λ and the
emulator already speak).

Why HTTP API (README "HTTP API or REST API for storefront traffic"): $1.00 per million requests
against REST's $3.50, and browser SDKs send one call per request. What it lacks: AWS WAF on the
endpoint itself and a custom 429 with Retry-After (its throttled answer is a plain 429); a store that
needs those deploys `-c api=rest` (infra/constructs/api.py).
"""

from __future__ import annotations

from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra.access_logs import HTTP_ACCESS_LOG_FORMAT, template
from infra.constructs.nag import Waiver, suppress
from infra.description import API, APP_NAME

# The $default stage serves the API at its root: https://<api>.execute-api.<region>.amazonaws.com/
DEFAULT_STAGE = "$default"


def route_key(method: str, path: str) -> str:
    """An HTTP API route's key, as its stage's RouteSettings name it: "POST /v1/forms/{key}/submit"."""
    return f"{method} {path}"


class HttpStorefrontApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention)
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{APP_NAME}-api",
            description="Boomerang: storefront events (Segment-compatible) and one-click unsubscribe",
            # no cors_preflight: API Gateway would answer every OPTIONS itself; the signup form's
            # preflight is the λ's (it allows exactly the origins the store's form config lists)
            create_default_stage=False,  # the stage below, with throttling and access logs
        )
        # One integration for every route (the λ routes internally, exactly as the emulator does);
        # 1.0: the v1 proxy event (path, multiValueHeaders, requestContext.identity.sourceIp).
        integration = HttpLambdaIntegration(
            "Ingest", handler, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_1_0
        )
        self.routes: list[apigwv2.HttpRoute] = []
        for method, path in API.routes:
            self.routes.extend(
                self.http_api.add_routes(
                    path=path, methods=[apigwv2.HttpMethod(method)], integration=integration
                )
            )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name=DEFAULT_STAGE,
            auto_deploy=True,
            detailed_metrics_enabled=False,  # per-route metrics cost per metric; the λ counts its own
            throttle=apigwv2.ThrottleSettings(
                rate_limit=API.throttle_rate_limit, burst_limit=API.throttle_burst_limit
            ),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=template(HTTP_ACCESS_LOG_FORMAT)
        )
        # the public signup form gets its own, lower limits (route throttling; no API key needed)
        cfn_stage.route_settings = {
            route_key("POST", "/v1/forms/{key}/submit"): {
                "ThrottlingRateLimit": API.form_submit_rate_limit,
                "ThrottlingBurstLimit": API.form_submit_burst_limit,
            }
        }

        suppress(
            self.http_api,
            Waiver(
                "AwsSolutions-APIG4",
                "Segment-compatible clients authenticate with HTTP Basic auth (write key as user name), "
                "checked per store in the ingest function; webhooks and partner updates by their HMAC "
                "signatures, unsubscribe and preference links are HMAC-signed, the signup form is public "
                "by design (publishable key, rate-limited per IP and store in the function).",
            ),
            apply_to_children=True,  # APIG4 is reported on each Route resource
        )

    @property
    def url(self) -> str:
        url = self.stage.url  # "https://<api id>.execute-api.<region>.<suffix>/" for $default
        assert url is not None
        return url
