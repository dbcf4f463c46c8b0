"""The emulator's console output: one readable line per thing that happened, as it happens."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ecr_pipeline.core.naming import BUILD_TAG_PREFIX, commit_of_build_tag

_MARKS = {"acted": "+", "ignored": "-", "rejected": "x", "failed": "!"}


def _short(function: str) -> str:
    return function.removesuffix("Function")


# Console names for AWS's long detail-types (the report keeps the real ones).
_SHORT_TYPES = {
    "CodeCommit Repository State Change": "CodeCommit push",
    "CodeBuild Build State Change": "CodeBuild build",
    "CodeDeploy Deployment State-change Notification": "CodeDeploy deployment",
    "ECR Image Action": "ECR image",
    "ECR Image Scan": "ECR scan",
    "Inspector2 Scan": "Inspector scan",
}


def _event_label(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    hints = [
        detail.get("referenceName"),
        detail.get("build-status"),
        detail.get("image-tag"),
        detail.get("scan-status"),
        detail.get("verdict"),
        detail.get("state"),
        detail.get("ref"),
    ]
    hint = next((str(item) for item in hints if item), "")
    if len(hint) == 40 and all(character in "0123456789abcdef" for character in hint):
        hint = hint[:8]  # a commit id
    elif commit_of_build_tag(hint):
        hint = hint[: len(BUILD_TAG_PREFIX) + 8]  # a build tag
    detail_type = str(event.get("detail-type"))
    return _SHORT_TYPES.get(detail_type, detail_type) + (f" [{hint[:40]}]" if hint else "")


class Printer:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True, events: bool = True) -> None:
        self._stream = stream or sys.stdout
        self.enabled = enabled
        self.events = events

    def line(self, text: str = "") -> None:
        if self.enabled:
            print(text, file=self._stream, flush=True)

    def setup(self, text: str) -> None:
        self.line(f"  setup  {text}")

    def warning(self, text: str) -> None:
        self.line(f"  WARN   {text}")

    def legend(self) -> None:
        self.line("  legend  + acted  - ignored  x rejected  ! failed  (function <- the event it got)  * emulated AWS")

    def step(self, index: int, total: int, title: str) -> None:
        self.line()
        self.line(f"[{index}/{total}] {title}")

    def action(self, text: str) -> None:
        self.line(f"  $ {text}")

    def event(self, event: dict[str, Any], targets: list[str]) -> None:
        if not self.events:
            return
        routed = ", ".join(_short(name) for name in targets) if targets else "no rule"
        self.line(f"    event  {_event_label(event)}  -> {routed}")

    def delivery(self, entry: dict[str, Any], event: Any) -> None:
        """One invocation: the function, what it got, what it came to and what it wrote."""
        mark = _MARKS.get(str(entry["outcome"]), "?")
        writes = [
            item["operation"]
            + (f"({item['tag'][:24]})" if item.get("tag") else "")
            + (f" refused: {item['error']}" if item.get("error") else "")
            for item in entry["writes"]
            if item["service"] not in ("dynamodb", "events")
        ]
        records = [item for item in entry["writes"] if item["service"] == "dynamodb" and not item.get("idempotency")]
        if records:
            writes.append(f"DynamoDB x{len(records)}")
        emitted = [item["detail_type"] for item in entry["emitted"] if not item["source"].startswith("aws.")]
        slack = [f"Slack({'ok' if item['accepted'] else 'refused'})" for item in entry.get("slack", [])]
        said = ", ".join(writes + slack + [f"-> {name}" for name in emitted])
        received = _event_label(event) if isinstance(event, dict) and "detail-type" in event else "queue messages"
        flags = " [duplicate]" if entry.get("duplicate") else ""
        flags += f" [attempt {entry['attempt']}]" if entry.get("attempt", 1) > 1 else ""
        reason = entry.get("reason") or ""
        detail = said if entry["outcome"] == "acted" else reason
        if entry["outcome"] == "acted" and reason:
            detail = f"{said} ({reason})" if said else reason
        self.line(
            f"  {mark} {_short(str(entry['function'])):<10} <- {received:<36} {entry['outcome']}: {detail}{flags}"
        )

    def task(self, text: str) -> None:
        self.line(f"  * {text}")
