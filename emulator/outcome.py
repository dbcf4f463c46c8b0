"""What a delivery came to: acted, ignored (with the reason), rejected (with the reason) or failed.

The handlers declare it (ecr_pipeline.outcomes); the AWS calls seen tell a duplicate apart."""

from __future__ import annotations

from typing import Any

from ecr_pipeline.outcomes import effect_of
from emulator.front import ApiCall
from emulator.lambdas import InvocationResult


def _reasons(value: Any) -> list[str]:
    """Every `reason` in a handler's result, nested ones included, in order."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reason" and isinstance(item, str) and item:
                found.append(item)
            else:
                found.extend(_reasons(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_reasons(item))
    return list(dict.fromkeys(found))


def _is_effect(call: ApiCall, idempotency_table: str) -> bool:
    """A successful write other than the idempotency record every invocation makes."""
    if not call.is_write or not call.succeeded:
        return False
    return not (call.service == "dynamodb" and idempotency_table and call.params.get("TableName") == idempotency_table)


def classify(
    result: InvocationResult,
    calls: list[ApiCall],
    emitted: list[dict[str, Any]],
    idempotency_table: str,
    repeat: bool,
    slack_messages: int = 0,
) -> tuple[str, str]:
    """The outcome and its reason: the effect the handler's answer declares (ecr_pipeline.outcomes),
    except that a repeated delivery which changed nothing is a duplicate."""
    if result.failed:
        error = result.error or {}
        return "failed", f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}".strip()
    answer = result.result
    effect = effect_of(answer)
    if effect is None:
        return "failed", f"the handler's answer declares no outcome: {answer!r}"[:300]
    reasons = "; ".join(_reasons(answer))
    changed = any(_is_effect(call, idempotency_table) for call in calls) or bool(emitted) or slack_messages > 0
    if effect == "acted" and not changed and repeat:
        return "ignored", "duplicate delivery: no new effect"
    return effect, reasons or str(answer.get("status", ""))
