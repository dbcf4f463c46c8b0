"""Publishing the pipeline's own outcome events (source "ecr-pipeline") on the event bus.

Only records of the contract (events/pipeline.py) are published: the detail-type and the detail
both come from the record.

`with publisher.batch():` collects what is published inside the block and sends it on leaving,
in as few PutEvents calls as EventBridge allows (10 entries and 256 KB per call). A handler wraps
the handling of one event in it, so the several events of one invocation cost one call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.events.pipeline import Record, detail_type, to_detail
from ecr_pipeline.observability import logger

# PutEvents limits: entries per call, and the sum of the entries' sizes (entry_size), which must
# stay below 256 KB per call.
MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 256 * 1024
# EventBridge counts a given Time as 14 bytes, whatever its text.
TIME_BYTES = 14

Entry = dict[str, Any]


class EventNotPublished(RuntimeError):
    """EventBridge accepted the call but refused entries (FailedEntryCount > 0)."""

    def __init__(self, refused: list[tuple[str, str, str]]) -> None:
        # (detail-type, error code, error message) of each refused entry
        self.refused = refused
        super().__init__(
            "; ".join(f"{kind!r} was not published: {code} {message}".rstrip() for kind, code, message in refused)
        )


def entry_size(entry: Entry) -> int:
    """An entry's size as EventBridge measures it against the per-call limit: the UTF-8 bytes of
    Source, DetailType, Detail and each Resources entry, plus 14 for a Time (EventBusName is free)."""
    size = TIME_BYTES if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        if entry.get(name) is not None:
            size += len(str(entry[name]).encode("utf-8"))
    size += sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources") or ())
    return size


def calls_of(entries: list[Entry]) -> list[list[Entry]]:
    """The entries in order, cut into PutEvents calls within both limits. An entry too large for
    any call goes alone, so EventBridge's refusal names it."""
    calls: list[list[Entry]] = []
    current: list[Entry] = []
    current_bytes = 0
    for entry in entries:
        size = entry_size(entry)
        if current and (len(current) == MAX_ENTRIES_PER_CALL or current_bytes + size >= MAX_BYTES_PER_CALL):
            calls.append(current)
            current, current_bytes = [], 0
        current.append(entry)
        current_bytes += size
    if current:
        calls.append(current)
    return calls


def _refusal(entry: Entry, result: dict[str, Any]) -> tuple[str, str, str]:
    return str(entry["DetailType"]), str(result.get("ErrorCode", "")), str(result.get("ErrorMessage", ""))


class EventPublisher:
    def __init__(self, source: str, bus_name: str = "default", events_client: Any = None, stack: str = "") -> None:
        self._source = source
        self._bus_name = bus_name
        self._stack = stack
        self._client = events_client or client("events")
        # The entries of the open batch; None outside one. A Lambda process handles one event at a time.
        self._pending: list[Entry] | None = None

    def _entry(self, record: Record, resources: list[str] | None = None) -> Entry:
        detail = to_detail(record)
        if self._stack:
            # Every stack's rules match on it, so two stacks in one account never act on each other's events.
            detail["stack"] = self._stack
        entry: Entry = {
            "Source": self._source,
            "DetailType": detail_type(record),
            "Detail": json.dumps(detail, sort_keys=True, default=str),
            "EventBusName": self._bus_name,
        }
        if resources:
            entry["Resources"] = resources
        return entry

    def publish(self, record: Record, resources: list[str] | None = None) -> None:
        """Send the record now (one PutEvents call), or, inside `batch()`, when the batch ends."""
        entry = self._entry(record, resources)
        if self._pending is not None:
            self._pending.append(entry)
            return
        response = self._client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise EventNotPublished([_refusal(entry, response["Entries"][0])])

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect what is published in the block; send it when the block ends without an exception.

        A nested batch joins the outer one: the outermost block sends. On an exception nothing is
        sent: every exception leaves the handler, Powertools idempotency deletes its in-progress
        record, and Lambda's retry (or an operator's replay of the failed-invocations queue) runs
        the handling again, which publishes these events again from the ledger's state (a claim or
        tag already taken is accepted again, a created deployment is announced again). Sending them
        now as well would tell each twice.
        """
        if self._pending is not None:
            yield
            return
        pending: list[Entry] = []
        self._pending = pending
        try:
            yield
        except BaseException:
            if pending:
                logger.info(
                    "events not sent: the handling failed and its retry publishes them",
                    detail_types=[entry["DetailType"] for entry in pending],
                )
            raise
        finally:
            self._pending = None
        self._send(pending)

    def _send(self, entries: list[Entry]) -> None:
        """Every entry in the fewest calls; a refused entry is sent again once, alone, so no
        accepted entry goes twice. Raises EventNotPublished naming those refused twice."""
        refused: list[Entry] = []
        for call in calls_of(entries):
            response = self._client.put_events(Entries=call)
            if response.get("FailedEntryCount"):
                results = response.get("Entries", [])
                refused.extend(entry for entry, result in zip(call, results, strict=False) if result.get("ErrorCode"))
        still_refused: list[tuple[str, str, str]] = []
        for entry in refused:
            response = self._client.put_events(Entries=[entry])
            if response.get("FailedEntryCount"):
                still_refused.append(_refusal(entry, response["Entries"][0]))
        if still_refused:
            raise EventNotPublished(still_refused)
