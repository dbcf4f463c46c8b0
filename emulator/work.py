"""The work of a run and its record: the pending items, the item being run, the timeline, the clock.

One `WorkState` per run, shared by the bus (which adds deliveries), the SQS event sources, the
scheduler (which runs the items) and the services (which add tasks). Every item waits in one
pending list and runs one at a time, so every AWS call and every event is attributed to the
item that made it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.front import ApiCall
from emulator.output import Printer
from emulator.slack import SlackMessage


@dataclass
class Delivery:
    """An event on its way to one rule's target function (or a batch from an SQS event source)."""

    event: dict[str, Any]
    rule: str
    function: str
    attempt: int = 1
    duplicate: bool = False
    # (queue URL, receipt handle, message id) of an SQS batch, and whether the function reports partial failures.
    queue_receipts: list[tuple[str, str, str]] = field(default_factory=list)
    partial_batch: bool = False
    # A service's own invocation (a deployment's lifecycle hook): its answer goes back to the service,
    # which decides what a failure means (no Lambda retries).
    on_result: Callable[[Any], None] | None = None


@dataclass
class Task:
    kind: str
    label: str
    action: Callable[[], None]


@dataclass
class Running:
    """What the item being run did: its AWS calls and the events it caused."""

    calls: list[ApiCall] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)
    slack: list[SlackMessage] = field(default_factory=list)


class Clock:
    """Event times: the wall clock, but strictly increasing by whole seconds (EventBridge's precision)."""

    def __init__(self) -> None:
        self._last = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)

    def tick(self) -> datetime:
        self._last = max(self._last + timedelta(seconds=1), datetime.now(UTC).replace(microsecond=0))
        return self._last

    @staticmethod
    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class WorkState:
    """The lock, the pending items, the item being run and the timeline, with the printer that shows them."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.lock = threading.RLock()
        self.clock = Clock()
        self.pending: list[Delivery | Task] = []
        self.timeline: list[dict[str, Any]] = []
        self.running: Running | None = None
        self.started_at = 0.0

    def elapsed(self, moment: float | None = None) -> float:
        """Seconds since the emulator started (the timeline's clock)."""
        return round((time.monotonic() if moment is None else moment) - self.started_at, 4)

    def schedule(self, kind: str, label: str, action: Callable[[], None]) -> None:
        with self.lock:
            self.pending.append(Task(kind, label, action))

    def record_task(self, text: str, **fields: Any) -> None:
        with self.lock:
            self.timeline.append(
                {"kind": "task", "seq": len(self.timeline), "at_seconds": self.elapsed(), "text": text, **fields}
            )
        self.printer.task(text)

    def record_step(self, index: int, title: str, **fields: Any) -> None:
        with self.lock:
            self.timeline.append(
                {
                    "kind": "step",
                    "seq": len(self.timeline),
                    "at_seconds": self.elapsed(),
                    "step": index,
                    "title": title,
                    **fields,
                }
            )

    def record_call(self, call: ApiCall) -> None:
        """The front's observer: a call belongs to the item being run."""
        with self.lock:
            if self.running is not None:
                self.running.calls.append(call)

    def record_slack(self, message: SlackMessage) -> None:
        """The webhook's listener: a Slack message belongs to the item being run."""
        with self.lock:
            if self.running is not None:
                self.running.slack.append(message)
