"""An SQS queue of delayed messages (per-message delay): a deployment waiting for a busy group,
a branch waiting for its quiet window. The function that sends them also receives them."""

from __future__ import annotations

import json
from typing import Any

from ecr_pipeline.adapters.clients import client

# SQS refuses a per-message delay above 15 minutes.
MAX_DELAY_SECONDS = 900


class DelayedQueue:
    def __init__(self, queue_url: str, sqs_client: Any = None) -> None:
        self._queue_url = queue_url
        self._client = sqs_client or client("sqs")

    def send(self, body: dict[str, Any], delay_seconds: int) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(body, sort_keys=True),
            DelaySeconds=max(0, min(delay_seconds, MAX_DELAY_SECONDS)),
        )
