"""The messages SNS and Slack got, grouped by the push they tell of, in push order (the demo summary).

A message's push: SNS carries it as the `push_id` message attribute; a Slack message names its
event (`event <id>` in its context line) or, a thread's head, its push (`push <id>`). An event's
push is read from the events the run emitted (the timeline): a pipeline event's `push_id`, and a
CodeBuild event's through the commit and branch its build was started for.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ecr_pipeline.core.naming import commit_of_build_tag

_NAMED = re.compile(r"(event|push) `([^`]+)`")
NO_PUSH = ""


def _plain(text: str) -> str:
    """mrkdwn's bold and code marks left out, for a terminal."""
    return text.replace("*", "").replace("`", "")


class PushIndex:
    """Every push the run's events told of (id -> its time, repository, ref, commit) and each event's push."""

    def __init__(self, timeline: list[dict[str, Any]]) -> None:
        self.pushes: dict[str, dict[str, str]] = {}
        self.event_push: dict[str, str] = {}
        builds: list[tuple[str, str, str]] = []  # (event id, commit, branch) of CodeBuild events
        by_commit_and_ref: dict[tuple[str, str], str] = {}
        for entry in timeline:
            if entry.get("kind") != "event":
                continue
            event = entry["event"]
            detail = event.get("detail") or {}
            push = detail if detail.get("push_id") else next(iter(detail.get("pushes") or []), {})
            if isinstance(push, dict) and push.get("push_id"):
                push_id = str(push["push_id"])
                self.event_push[str(event.get("id"))] = push_id
                self.pushes.setdefault(
                    push_id,
                    {
                        "push_time": str(push.get("push_time", "")),
                        "repository": str(push.get("repository", "")),
                        "ref": str(push.get("ref", "")),
                        "commit": str(push.get("commit", "")),
                    },
                )
                by_commit_and_ref.setdefault((str(push.get("commit", "")), str(push.get("ref", ""))), push_id)
            elif event.get("source") == "aws.codebuild":
                variables = {
                    item.get("name"): item.get("value")
                    for item in ((detail.get("additional-information") or {}).get("environment") or {}).get(
                        "environment-variables", []
                    )
                }
                commit = commit_of_build_tag(str(variables.get("IMAGE_TAG", ""))) or ""
                builds.append((str(event.get("id")), commit, str(variables.get("SOURCE_BRANCH", ""))))
        for event_id, commit, branch in builds:
            built = by_commit_and_ref.get((commit, branch))
            if built:
                self.event_push[event_id] = built

    def push_of_slack(self, payload: dict[str, Any]) -> str:
        for kind, value in _NAMED.findall(json.dumps(payload, ensure_ascii=False)):
            if kind == "push":
                return str(value)
            if value in self.event_push:
                return self.event_push[value]
        return NO_PUSH

    def order(self, push_id: str) -> tuple[int, str, str]:
        """Pushes by push time (then id); messages of no push last."""
        if push_id == NO_PUSH or push_id not in self.pushes:
            return (1, "", push_id)
        return (0, self.pushes[push_id]["push_time"], push_id)

    def title(self, push_id: str) -> str:
        push = self.pushes.get(push_id)
        if push is None:
            return "not of a push"
        return f"push of {push['repository']} {push['ref']} {push['commit'][:7]} at {push['push_time']}"


def messages_by_push(
    timeline: list[dict[str, Any]], sns: list[dict[str, Any]], slack: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """[{push, title, sns: [subject], slack: [line]}] in push order; a Slack line says what it was
    (post, update, reply in the thread) and whether Slack refused it."""
    index = PushIndex(timeline)
    groups: dict[str, dict[str, Any]] = {}

    def group(push_id: str) -> dict[str, Any]:
        if push_id not in groups:
            groups[push_id] = {"push": push_id, "title": index.title(push_id), "sns": [], "slack": []}
        return groups[push_id]

    for message in sns:
        push_id = str((message.get("attributes") or {}).get("push_id") or NO_PUSH)
        group(push_id)["sns"].append(message.get("subject") or "")
    for message in slack:
        payload = message.get("payload") or {}
        line = str(message.get("header") or message.get("text") or "")
        method = message.get("method", "webhook")
        head = method == "chat.update" or (method == "chat.postMessage" and not message.get("thread_ts"))
        if head:
            # A thread's head says its newest stage in its preview text: `<push>: <status line>`.
            line = _plain(str(message.get("text") or line))
        if method == "chat.update":
            line = f"(update) {line}"
        elif method == "chat.postMessage":
            line = f"(reply) {line}" if message.get("thread_ts") else f"(thread) {line}"
        if not message.get("accepted"):
            line += f"  REFUSED: {message.get('error')}"
        group(index.push_of_slack(payload))["slack"].append(line)
    return [groups[push_id] for push_id in sorted(groups, key=index.order)]
