"""Powertools idempotency on the stack's idempotency table, set up one way for every handler.

A failed "success" save (the UpdateItem after the work is done, still throttled after botocore's
own retries) is logged and counted, not raised: raising would make Lambda retry and do the
completed work again (publish "Build Started" twice, tell SNS and Slack twice). The record then
stays INPROGRESS until its in-progress expiry (the invocation's remaining time, at most the
function's timeout): a duplicate within that window gets IdempotencyAlreadyInProgressError and is
retried by Lambda; one after it runs again. That is a duplicate only for an independent
redelivery arriving within a day, where raising makes one certain.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from botocore.exceptions import BotoCoreError, ClientError

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.observability import logger, metrics

# EventBridge redelivers within hours at most; a day keeps duplicates out with room to spare.
EXPIRES_AFTER_SECONDS = 24 * 3600
SAVE_FAILED_METRIC = "IdempotencySuccessNotSaved"


class CompletedWorkPersistenceLayer(DynamoDBPersistenceLayer):
    """DynamoDBPersistenceLayer whose failed success-save never turns into a retry of completed work."""

    def save_success(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        try:
            super().save_success(data=data, result=result)
        except (ClientError, BotoCoreError) as error:
            code = error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__
            logger.warning("idempotency record not completed: the work is done and not retried", error=code)
            metrics.add_metric(name=SAVE_FAILED_METRIC, unit="Count", value=1)


def persistence_layer(table_name: str, dynamodb_client: Any = None) -> DynamoDBPersistenceLayer:
    return CompletedWorkPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client or client("dynamodb"))


def idempotency_config(event_key_jmespath: str = "") -> IdempotencyConfig:
    """Keyed on `event_key_jmespath` of the payload (the whole payload when empty)."""
    return IdempotencyConfig(
        event_key_jmespath=event_key_jmespath,
        raise_on_no_idempotency_key=bool(event_key_jmespath),
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
    )
