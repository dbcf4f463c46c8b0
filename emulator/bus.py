"""The EventBridge buses, emulated: events from AWS's services and the functions' PutEvents, routed by the
template's rules.

moto stores PutEvents but cannot invoke a Lambda target: every enabled rule of the template on the
event's bus whose pattern matches (moto's EventPattern) gets a pending delivery instead. AWS's own
events are on the default bus; a PutEvents entry goes to the bus it names (the stack's own bus, whose
resource policy the IAM guard enforces before the call gets here).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from moto.events.models import EventPattern

from emulator.front import ApiCall
from emulator.template import ACCOUNT_ID, REGION, EventRule
from emulator.work import Delivery, WorkState


class Bus:
    """The default bus and the stack's own: each event is recorded on the timeline (with its bus) and routed at once."""

    def __init__(self, work: WorkState, duplicate: bool = False) -> None:
        self._work = work
        # --duplicate: every delivery is made twice, as EventBridge's at-least-once delivery may.
        self._duplicate = duplicate
        self.rules: list[tuple[EventRule, EventPattern]] = []

    def load_rules(self, rules: list[EventRule]) -> None:
        """The template's enabled rules, with their patterns parsed once."""
        self.rules = [(rule, EventPattern.load(rule.pattern_json)) for rule in rules if rule.state == "ENABLED"]

    def emit(
        self,
        source: str,
        detail_type: str,
        detail: dict[str, Any],
        resources: list[str],
        event_id: str | None = None,
        when: str | None = None,
    ) -> dict[str, Any]:
        """An event on the default bus (AWS's own, emulated), routed at once by the template's rules."""
        clock = self._work.clock
        event = {
            "version": "0",
            "id": event_id or str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT_ID,
            "time": when or clock.iso(clock.tick()),
            "region": REGION,
            "resources": resources,
            "detail": detail,
        }
        self.route(event)
        return event

    def route(self, event: dict[str, Any], bus: str = "default") -> list[str]:
        """Emulated EventBridge delivery (moto cannot invoke a Lambda target): every rule of the
        template whose pattern matches (moto's EventPattern) gets a pending delivery."""
        work = self._work
        with work.lock:
            matched = [rule for rule, pattern in self.rules if rule.bus == bus and pattern.matches_event(event)]  # type: ignore[arg-type]
            origin = work.running
            if origin is not None:
                origin.emitted.append(event)
            work.timeline.append(
                {
                    "kind": "event",
                    "seq": len(work.timeline),
                    "at_seconds": work.elapsed(),
                    "event": event,
                    "bus": bus,
                    "rules": [rule.name for rule in matched],
                }
            )
            work.printer.event(event, [rule.function for rule in matched])
            for rule in matched:
                payload = _input(event, rule.input_path)
                copies = 2 if self._duplicate else 1
                for copy in range(copies):
                    work.pending.append(Delivery(payload, rule.name, rule.function, duplicate=copy > 0))
            return [rule.name for rule in matched]

    def put_events(self, call: ApiCall) -> None:
        """PutEvents from a function (stored by moto): each accepted entry becomes an event on its bus."""
        if call.service != "events" or call.operation != "PutEvents" or not call.succeeded:
            return
        clock = self._work.clock
        answers = call.response.get("Entries") or []
        for index, entry in enumerate(call.params.get("Entries") or []):
            answer = answers[index] if index < len(answers) else {}
            if answer.get("ErrorCode"):
                continue
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except ValueError:
                continue
            event = {
                "version": "0",
                "id": answer.get("EventId") or str(uuid.uuid4()),
                "detail-type": entry.get("DetailType", ""),
                "source": entry.get("Source", ""),
                "account": ACCOUNT_ID,
                "time": clock.iso(clock.tick()),
                "region": REGION,
                "resources": entry.get("Resources") or [],
                "detail": detail,
            }
            self.route(event, str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1])


def _input(event: dict[str, Any], input_path: str | None) -> Any:
    """The target's input: the whole event, or the part an InputPath selects."""
    if not input_path or input_path == "$":
        return event
    value: Any = event
    for part in input_path.removeprefix("$.").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
