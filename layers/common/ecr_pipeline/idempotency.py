"""Powertools idempotency on the stack's idempotency table, set up one way for every handler."""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from ecr_pipeline.adapters.clients import client

# EventBridge redelivers within hours at most; a day keeps duplicates out with room to spare.
EXPIRES_AFTER_SECONDS = 24 * 3600


def persistence_layer(table_name: str) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client("dynamodb"))


def idempotency_config(event_key_jmespath: str = "") -> IdempotencyConfig:
    """Keyed on `event_key_jmespath` of the payload (the whole payload when empty)."""
    return IdempotencyConfig(
        event_key_jmespath=event_key_jmespath,
        raise_on_no_idempotency_key=bool(event_key_jmespath),
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
    )
