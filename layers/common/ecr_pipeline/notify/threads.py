"""Slack bot-token mode: the messages of one push are one thread.

The first message of a push posts the thread's head (chat.postMessage) to the configured
channel: the push (repository, ref, commit, author, message) and one status line per stage.
Each later message of the push keeps its stage's line in the ledger and updates the head in
place (chat.update, all lines at once, so several stages are folded into one update); a
failure, a blocked image or a rolled-back deployment is also told in full as a reply in the
thread (chat.postMessage with thread_ts). A message that names no push is posted on its own.

Exactly one head per push: the thread is claimed in the ledger (adapters/thread_ledger.py) before
the head is posted. Of two invocations racing, the other waits for the head's ts. The whole
sending runs under notify's once-per-(fact, channel) delivery, so a completed delivery is never
repeated; within a retried one, the head is never posted twice: a claim left by an earlier
attempt of the same event without a ts means that attempt may have posted it (`DeliveryAmbiguous`,
kept for replay). A claim whose owner never posted is taken over after `STALE_SECONDS`.

Pacing: Slack allows about one chat.postMessage per second per channel. Per push this mode posts
one head and a reply per failure only (every other stage is an update), and the Web API client
waits out each 429's Retry-After (adapters/slack.py), so a burst of pushes is slowed, not refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from ecr_pipeline.adapters.thread_ledger import StageLine, ThreadClaim, ThreadKey
from ecr_pipeline.notify.delivery import DeliveryAmbiguous
from ecr_pipeline.notify.model import Message, display_time
from ecr_pipeline.notify.render.fit import fit, fit_lines
from ecr_pipeline.notify.render.slack import (
    CONTEXT_TEXT,
    FALLBACK_TEXT,
    HEADER_TEXT,
    SECTION_TEXT,
    emoji,
    escape,
    render_slack,
)

# How long an invocation waits for the head another one is posting, and when that claim is abandoned.
WAIT_SECONDS = 20.0
POLL_SECONDS = 0.25
STALE_SECONDS = 120.0
# The kinds (pipeline.yaml's notify kinds) that are also told in full, as a reply in the thread.
REPLY_KINDS = ("failures", "blocked")
COMMIT_MESSAGE = 300


class SlackApi(Protocol):
    """chat.postMessage and chat.update (adapters/slack.py SlackBotApi)."""

    def post_message(self, channel: str, payload: dict[str, Any], thread_ts: str = "") -> str:
        """Post; the message's ts."""
        ...

    def update_message(self, channel: str, ts: str, payload: dict[str, Any]) -> None: ...


class ThreadStore(Protocol):
    def record_line(self, key: ThreadKey, line: StageLine) -> bool: ...

    def claim(self, key: ThreadKey, owner: str, now: float, head: dict[str, str]) -> ThreadClaim: ...

    def read_claim(self, key: ThreadKey) -> ThreadClaim | None: ...

    def set_ts(self, key: ThreadKey, owner: str, ts: str) -> bool: ...

    def take_over(self, key: ThreadKey, stale_owner: str, owner: str, now: float) -> bool: ...

    def release(self, key: ThreadKey, owner: str) -> None: ...

    def lines(self, key: ThreadKey) -> list[StageLine]: ...


class ThreadNotReady(RuntimeError):
    """Another invocation is posting the push's thread and has not recorded it yet: retried later."""


# --- the words of a thread (pure) ------------------------------------------------------------


def stage_of(message: Message) -> str:
    """One line per stage of a push: its build, scan and promotion per image, its deployment per environment."""
    parts = [message.event, message.ecr_repository or message.repository]
    if message.event == "deployment":
        parts.append(message.environment)
    return "#".join(parts)


def status_line(message: Message) -> str:
    """`:white_check_mark: Build succeeded · demo-app · 10:05:30 UTC`."""
    parts = [f"{emoji(message)} *{escape(message.headline)}*"]
    about = message.ecr_repository or message.repository
    if about:
        parts.append(f"`{escape(about)}`")
    if message.environment:
        parts.append(f"→ `{escape(message.environment)}`")
    if message.deployment_id:
        parts.append(escape(message.deployment_id))
    parts.append(escape(display_time(message.time)))
    return fit(" · ".join(parts), 500)


def needs_reply(message: Message) -> bool:
    return any(kind in message.kinds for kind in REPLY_KINDS)


def thread_head(message: Message) -> dict[str, str]:
    """What the head says about the push, whichever of its messages posts or updates it."""
    return {
        "repository": message.repository,
        "ref_type": message.ref_type,
        "ref": message.ref,
        "commit": message.commit,
        "author": message.author,
        "commit_message": message.commit_message,
        "stage": message.stage,
    }


def render_head(head: dict[str, str], push: str, lines: list[StageLine]) -> dict[str, Any]:
    """The thread's first message: the push, then its stages' lines in event order."""
    commit = head.get("commit", "")[:7]
    about = " ".join(part for part in (head.get("repository"), head.get("ref"), commit) if part)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": fit(f"Push: {about}", HEADER_TEXT), "emoji": True}}
    ]
    who = []
    if head.get("author"):
        who.append(f"*{fit(head['author'], 200, escape=escape)}*")
    if head.get("ref"):
        who.append(f"{escape(head.get('ref_type') or 'ref')} `{fit(head['ref'], 200, escape=escape)}`")
    if commit:
        who.append(f"`{escape(commit)}`")
    summary = " · ".join(who)
    if head.get("commit_message"):
        summary += "\n> " + fit(head["commit_message"], COMMIT_MESSAGE, escape=escape)
    if summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": fit(summary, SECTION_TEXT)}})
    if lines:
        text = fit_lines((line.text for line in lines), SECTION_TEXT)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    origin = f"ecr-pipeline {head.get('stage', '')}".strip()
    context = f"{escape(origin)} · push `{fit(push, 200, escape=escape)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": fit(context, CONTEXT_TEXT)}]})
    latest = lines[-1].text if lines else ""
    fallback = fit(f"{about}: {latest}" if latest else about or "Push", FALLBACK_TEXT)
    return {"text": fallback, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}


# --- the channel -----------------------------------------------------------------------------


class ThreadedSlackChannel:
    """notify's `slack` channel in bot-token mode (the webhook's is notifier.SlackChannel)."""

    __slots__ = ("_clock", "_sleep", "api", "channel_id", "name", "replaying", "store", "wait_seconds")

    def __init__(
        self,
        api: SlackApi,
        store: ThreadStore,
        channel_id: str,
        *,
        name: str = "slack",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: float = WAIT_SECONDS,
        replaying: bool = False,
    ) -> None:
        self.api = api
        self.store = store
        self.channel_id = channel_id
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self.wait_seconds = wait_seconds
        # Replay (scripts/replay_notifications.py): ops looked in the channel, so a claim this event
        # left without a ts means the head never arrived, and it is posted.
        self.replaying = replaying

    def render(self, message: Message) -> dict[str, Any]:
        """Everything a post needs, JSON-serialisable (a kept notification is replayed from it)."""
        return {
            "mode": "thread",
            "thread": message.thread,
            "owner": message.event_id,
            "head": thread_head(message),
            "line": {"stage": stage_of(message), "time": message.time, "text": status_line(message)},
            "message": render_slack(message),
            "reply": needs_reply(message),
        }

    def post(self, rendered: dict[str, Any]) -> dict[str, Any]:
        # Imported here: slack_sdk is loaded only where Slack is configured (functions/notify/app.py).
        from ecr_pipeline.adapters.slack import SlackDeliveryAmbiguous

        try:
            return self._post(rendered)
        except SlackDeliveryAmbiguous as error:
            raise DeliveryAmbiguous(str(error)) from None

    def _post(self, rendered: dict[str, Any]) -> dict[str, Any]:
        if rendered.get("mode") != "thread":  # kept by webhook mode, replayed in this one
            return {"status": "sent", "ts": self.api.post_message(self.channel_id, rendered)}
        if not rendered.get("thread"):
            return {"status": "sent", "ts": self.api.post_message(self.channel_id, rendered["message"])}
        key = ThreadKey(self.channel_id, str(rendered["thread"]))
        owner, head = str(rendered["owner"]), dict(rendered["head"])
        # False: a later event of the stage is told already, so the head has nothing new from this one.
        kept = self.store.record_line(key, StageLine(**rendered["line"]))
        claim = self.store.claim(key, owner, self._clock(), head)
        result: dict[str, Any] = {"status": "sent"}
        if claim.ts:
            ts = claim.ts
        elif claim.created or (claim.owner == owner and self.replaying):
            ts = self._post_head(key, owner, head)
            result["posted"] = ts
        elif claim.owner == owner:
            raise DeliveryAmbiguous(
                f"an earlier attempt of this event claimed the thread of {key.push} and may have posted it"
            )
        else:
            ts, posted = self._wait_for_head(key, claim, owner, head)
            if posted:
                result["posted"] = ts
        if "posted" not in result and kept:
            self.api.update_message(self.channel_id, ts, render_head(head, key.push, self.store.lines(key)))
            result["updated"] = ts
        result["ts"] = ts
        if rendered.get("reply"):
            result["reply"] = self.api.post_message(self.channel_id, rendered["message"], thread_ts=ts)
        return result

    def _post_head(self, key: ThreadKey, owner: str, head: dict[str, str]) -> str:
        from ecr_pipeline.adapters.slack import SlackDeliveryAmbiguous

        payload = render_head(head, key.push, self.store.lines(key))
        try:
            ts = self.api.post_message(self.channel_id, payload)
        except SlackDeliveryAmbiguous:
            raise  # the claim stays: the head may be there, so no one posts another until it is stale
        except Exception:
            self.store.release(key, owner)  # certainly not posted: the next event of the push posts it
            raise
        self.store.set_ts(key, owner, ts)
        return ts

    def _wait_for_head(self, key: ThreadKey, claim: ThreadClaim, owner: str, head: dict[str, str]) -> tuple[str, bool]:
        """The ts of the head another invocation posts (False), or of the one this one posts (True)
        once that claim is stale or released."""
        deadline = self._clock() + self.wait_seconds
        current: ThreadClaim | None = claim
        while True:
            if current is None:
                current = self.store.claim(key, owner, self._clock(), head)
                if current.created:
                    return self._post_head(key, owner, head), True
            if current.ts:
                return current.ts, False
            now = self._clock()
            if now - current.claimed_at > STALE_SECONDS and self.store.take_over(key, current.owner, owner, now):
                return self._post_head(key, owner, head), True
            if now >= deadline:
                raise ThreadNotReady(f"the thread of push {key.push} is being posted by event {current.owner}")
            self._sleep(POLL_SECONDS)
            current = self.store.read_claim(key)
