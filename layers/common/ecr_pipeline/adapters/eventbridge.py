"""Publishing the pipeline's own outcome events (source "ecr-pipeline") on the event bus.

Only records of the contract (events/pipeline.py) are published: the detail-type and the detail
both come from the record.
"""

from __future__ import annotations

import json
from typing import Any

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.events.pipeline import Record, detail_type, to_detail


class EventNotPublished(RuntimeError):
    """EventBridge accepted the call but rejected an entry (FailedEntryCount > 0)."""


class EventPublisher:
    def __init__(self, source: str, bus_name: str = "default", events_client: Any = None, stack: str = "") -> None:
        self._source = source
        self._bus_name = bus_name
        self._stack = stack
        self._client = events_client or client("events")

    def publish(self, record: Record, resources: list[str] | None = None) -> None:
        detail = to_detail(record)
        if self._stack:
            # Every stack's rules match on it, so two stacks in one account never act on each other's events.
            detail["stack"] = self._stack
        kind = detail_type(record)
        entry: dict[str, Any] = {
            "Source": self._source,
            "DetailType": kind,
            "Detail": json.dumps(detail, sort_keys=True, default=str),
            "EventBusName": self._bus_name,
        }
        if resources:
            entry["Resources"] = resources
        response = self._client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            raise EventNotPublished(
                f"{kind!r} was not published: {failure.get('ErrorCode')} {failure.get('ErrorMessage')}"
            )
