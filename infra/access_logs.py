"""The storefront API's access-log formats: one JSON line per request, for the HTTP API
(infra/constructs/api_http.py) and the REST API (infra/constructs/api.py).

Kept free of the CDK so `make bench` renders the deployed format itself to count its bytes
(tests/bench_cost.py). Who called what and how it went: never a body or a header value (emails, keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

HTTP_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}
# The fields of the CDK's AccessLogFormat.json_with_standard_fields (without user and caller: IAM
# callers only, the storefront has none), written out so the bench can render them.
REST_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
}
FORMATS = {"http": HTTP_ACCESS_LOG_FORMAT, "rest": REST_ACCESS_LOG_FORMAT}
_VARIABLE = re.compile(r"\$context\.[A-Za-z.]+")


def template(fields: Mapping[str, str]) -> str:
    """The stage's format string. Compact: API Gateway copies the template's spaces into every line."""
    return json.dumps(fields, separators=(",", ":"))


def render(kind: str, context: Mapping[str, str]) -> str:
    """The line API Gateway writes for a request whose `$context` variables are `context` (a
    variable without a value renders as "-", as API Gateway writes it)."""
    return _VARIABLE.sub(lambda m: context.get(m.group(0)[len("$context.") :], "-"), template(FORMATS[kind]))
