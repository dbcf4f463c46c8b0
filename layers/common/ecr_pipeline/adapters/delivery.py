"""Delivery once per (event, channel), on the stack's Powertools idempotency table.

A completed delivery is remembered with its result, so a Lambda retry after SNS succeeded
and Slack failed sends to Slack only. A failed delivery leaves no record: it is tried again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from ecr_pipeline.core.notify import DeliverOnce

KEY_PREFIX = "notify-delivery"
# The delivery key: {"event_id": ..., "channel": ...}.
KEY_JMESPATH = "[event_id, channel]"


def once_per_channel(persistence: BasePersistenceLayer, config: IdempotencyConfig) -> DeliverOnce:
    @idempotent_function(
        data_keyword_argument="delivery", persistence_store=persistence, config=config, key_prefix=KEY_PREFIX
    )
    def deliver_once(*, delivery: dict[str, str], send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return send()

    return deliver_once
