"""What a delivery came to: acted, ignored (with the reason), rejected (with the reason) or failed."""

from __future__ import annotations

from typing import Any

from emulator.front import ApiCall
from emulator.lambdas import InvocationResult

_REJECTED = ("rejected", "malformed", "invalid")
_IGNORED = ("ignored", "skipped", "duplicate", "noop")


def _reasons(value: Any) -> list[str]:
    """Every `reason` / `ignored` text in a handler's result, in order."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("reason", "ignored", "ignored_reason") and isinstance(item, str) and item:
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
    """The outcome and its reason, from the handler's answer and the AWS calls it made."""
    if result.failed:
        error = result.error or {}
        return "failed", f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}".strip()
    answer = result.result
    status = str(answer.get("status") or answer.get("outcome") or "").lower() if isinstance(answer, dict) else ""
    reasons = "; ".join(_reasons(answer))
    if status in _REJECTED:
        return "rejected", reasons or status
    effects = [call for call in calls if _is_effect(call, idempotency_table)]
    if effects or emitted or slack_messages:
        return "acted", reasons
    if repeat:
        return "ignored", "duplicate delivery: no new effect"
    if status in _IGNORED:
        return "ignored", reasons or status
    return "ignored", reasons or "no AWS write"
