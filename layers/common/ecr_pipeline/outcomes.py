"""What a core entry point came to: one `Outcome` type, a `Literal` status per entry point, and
for every status its effect (acted, ignored, rejected).

Handlers return `Outcome.as_result()`, which carries the status and its effect; metric names are
`metric_name(kind, status)` of these statuses, and the emulator classifies a delivery by the
effect, so a renamed status is a type error rather than a silently broken metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, get_args

from ecr_pipeline.events.envelope import MalformedEvent

Effect = Literal["acted", "ignored", "rejected"]

# Each entry point's statuses.
PushStatus = Literal["handled", "ignored"]  # start_build, per push
BuildDecision = Literal["started", "skipped", "promotion", "queued"]  # start_build, per image of a push
SettleStatus = Literal["settled", "waiting", "ignored"]  # start_build, a branch's quiet window ending
TagStatus = Literal[
    "registered", "blocked", "promoted", "nothing to promote", "waiting", "image deleted", "ignored", "rejected"
]
ScanStatus = Literal["decided", "ignored"]
DeployStatus = Literal["handled", "retried", "ended", "ignored", "rejected"]
EnvironmentStatus = Literal[
    "started", "queued", "skipped", "superseded", "already deployed", "dropped", "misconfigured"
]
NotifyStatus = Literal["delivered", "ignored"]
GateStatus = Literal["passed", "refused", "ignored"]  # traffic_gate
Rejected = Literal["rejected"]  # any handler, for a malformed event

EFFECTS: Mapping[str, Effect] = MappingProxyType(
    {
        "handled": "acted",
        "ignored": "ignored",
        "rejected": "rejected",
        "started": "acted",
        "skipped": "acted",  # the skip is told ("Build Skipped", "Deployment Skipped")
        "promotion": "acted",
        "registered": "acted",
        "blocked": "acted",  # the BLOCKED verdict is recorded
        "promoted": "acted",
        "nothing to promote": "ignored",
        "waiting": "ignored",
        "image deleted": "ignored",
        "decided": "acted",
        "retried": "acted",
        "queued": "acted",  # a deployment's retry, or a build waiting for the branch's quiet window
        "settled": "acted",
        "superseded": "ignored",
        "already deployed": "ignored",
        "dropped": "ignored",
        "misconfigured": "acted",  # told as "Deployment Skipped", naming the missing target
        "delivered": "acted",
        "ended": "acted",  # a deployment's end, recorded in the ledger and told
        "passed": "acted",  # the gate's answer lets traffic move
        "refused": "acted",  # the gate's answer stops the deployment
    }
)
STATUS_TYPES = (
    PushStatus,
    BuildDecision,
    SettleStatus,
    TagStatus,
    ScanStatus,
    DeployStatus,
    EnvironmentStatus,
    NotifyStatus,
    GateStatus,
    Rejected,
)


def statuses() -> frozenset[str]:
    """Every status any entry point can return."""
    return frozenset(status for kind in STATUS_TYPES for status in get_args(kind))


class Untrusted(MalformedEvent):
    """An event the stack must not act on: another account's or region's, or a claim the ledger
    does not back (core/trust.py). Rejected like a malformed event, never retried, counted apart."""


class Outcome[S: str](NamedTuple):
    status: S
    reason: str | None = None
    facts: Mapping[str, Any] = MappingProxyType({})  # what the log and the stored result say besides
    parts: tuple[Outcome[Any], ...] = ()  # per environment, for deploy

    @property
    def effect(self) -> Effect:
        return EFFECTS[self.status]

    def as_result(self) -> dict[str, Any]:
        """The handler's answer, JSON-serialisable (the idempotency store keeps it)."""
        result: dict[str, Any] = {"status": self.status, "effect": self.effect}
        if self.reason:
            result["reason"] = self.reason
        result.update(self.facts)
        return result


def effect_of(result: Any) -> Effect | None:
    """The effect a handler's answer declares; None for an answer that is not an outcome."""
    if not isinstance(result, dict):
        return None
    effect = result.get("effect")
    return effect if effect in get_args(Effect) else None
