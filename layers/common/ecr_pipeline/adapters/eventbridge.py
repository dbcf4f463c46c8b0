"""Publishing the pipeline's own outcome events (source "ecr-pipeline") on the event bus."""

from __future__ import annotations

import json
from typing import Any

from ecr_pipeline.adapters.clients import client


class PublishFailed(RuntimeError):
    """EventBridge accepted the call but rejected an entry (FailedEntryCount > 0)."""


class EventPublisher:
    def __init__(self, source: str, bus_name: str = "default", events_client: Any = None, stack: str = "") -> None:
        self._source = source
        self._bus_name = bus_name
        self._stack = stack
        self._client = events_client or client("events")

    def publish(self, detail_type: str, detail: dict[str, Any], resources: list[str] | None = None) -> None:
        if self._stack:
            # Every stack's rules match on it, so two stacks in one account never act on each other's events.
            detail = {**detail, "stack": self._stack}
        entry: dict[str, Any] = {
            "Source": self._source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, sort_keys=True, default=str),
            "EventBusName": self._bus_name,
        }
        if resources:
            entry["Resources"] = resources
        response = self._client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            raise PublishFailed(
                f"{detail_type!r} was not published: {failure.get('ErrorCode')} {failure.get('ErrorMessage')}"
            )
