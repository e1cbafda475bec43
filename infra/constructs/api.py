"""The storefront-facing REST API (`-c api=rest`): exactly the routes in description.API, all proxied
to ingest.

The HTTP API (infra/constructs/api_http.py) is the default, $2.50 less per million requests; REST
stays for a store that must attach AWS WAF to the endpoint itself, and it answers its own throttling
429 with Retry-After (README "HTTP API or REST API for storefront traffic").
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.access_logs import REST_ACCESS_LOG_FORMAT, template
from infra.constructs.nag import Waiver, suppress
from infra.description import API, APP_NAME


class Api(Construct):
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
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{APP_NAME}-api",
            description="Boomerang: storefront events (Segment-compatible) and one-click unsubscribe",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # bodies as bytes (base64 to the λ): gzip/deflate batches and webhooks' signed raw bodies
            binary_media_types=list(API.binary_media_types),
            # Execution logs need the account-level API Gateway logging role; create it here so a
            # fresh account deploys without a manual step.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=API.stage,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(template(REST_ACCESS_LOG_FORMAT)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry customer emails: keep them out of logs
                metrics_enabled=True,
                throttling_rate_limit=API.throttle_rate_limit,
                throttling_burst_limit=API.throttle_burst_limit,
                # the public signup form gets its own, lower limits (a usage plan needs API keys,
                # which a browser cannot keep secret; method throttling needs none)
                method_options={
                    "/v1/forms/{key}/submit/POST": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=API.form_submit_rate_limit,
                        throttling_burst_limit=API.form_submit_burst_limit,
                    )
                },
            ),
        )
        # Stage throttling answers 429 before the λ runs: tell SDKs when to come back
        self.rest_api.add_gateway_response(
            "Throttled",
            type=apigw.ResponseType.THROTTLED,
            status_code="429",
            response_headers={"Retry-After": f"'{API.throttled_retry_after_s}'"},
            templates={
                "application/json": '{"success": false, "error": "throttled", '
                '"message": "too many requests; retry after the Retry-After seconds"}'
            },
        )
        # One proxy integration for every route: the ingest function routes internally
        # (Powertools APIGatewayRestResolver), exactly as the emulator does.
        integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        self.methods: list[apigw.Method] = []
        for method, path in API.routes:
            resource = self.rest_api.root.resource_for_path(path)
            self.methods.append(resource.add_method(method, integration))

        suppress(
            self.rest_api,
            Waiver(
                "AwsSolutions-APIG2",
                "Requests are validated once, in the ingest function (pydantic models shared with the "
                "emulator), which also enforces the Segment size limits; a second copy as API Gateway "
                "models would drift.",
            ),
            Waiver(
                "AwsSolutions-APIG3",
                "WAF costs at least $5/month plus per-request fees; it is opt-in for stores that need it. "
                "Stage throttling limits abuse meanwhile.",
            ),
            Waiver(
                "AwsSolutions-APIG4",
                "Segment-compatible clients authenticate with HTTP Basic auth (write key as user name), "
                "checked per store in the ingest function; unsubscribe links are HMAC-signed instead.",
            ),
            Waiver(
                "AwsSolutions-COG4",
                "Storefront servers and email recipients are not Cognito users; see APIG4.",
            ),
            apply_to_children=True,  # APIG4/COG4 are reported on each Method resource
        )
        # The account-level logging role uses the one managed policy AWS provides for it.
        cloud_watch_role = self.rest_api.node.try_find_child("CloudWatchRole")
        if cloud_watch_role is not None:
            suppress(
                cloud_watch_role,
                Waiver(
                    "AwsSolutions-IAM4",
                    "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-documented policy for API Gateway's "
                    "account-wide logging role; it grants only CloudWatch Logs writes.",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AmazonAPIGatewayPushToCloudWatchLogs"
                    ],
                ),
            )

    @property
    def url(self) -> str:
        return self.rest_api.url
