"""Key rotation λ: Secrets Manager's four rotation steps for the link-signing key ring
(shared/services/privacy/keys.py). Logs step names and key ids only, never a key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.platform.aws import client
from shared.platform.function_log import function_logger, log_context

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = function_logger()


@log_context(logger)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from shared.services.privacy.keys import rotation_step

    outcome = rotation_step(
        client("secretsmanager"), event["SecretId"], event["ClientRequestToken"], event["Step"]
    )
    logger.info("signing key rotation", extra={"step": event["Step"], "outcome": outcome})
    return {"step": event["Step"], "outcome": outcome}
