"""Bot-token mode (notify/threads.py): one push, one Slack thread; with fakes for Slack and the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from ecr_pipeline.adapters.slack import (
    SLACK_API_URL,
    BotCredentials,
    BotTokenSecretInvalid,
    SlackDeliveryFailed,
    bot_credentials_from_secret,
)
from ecr_pipeline.adapters.thread_ledger import StageLine, ThreadClaim, ThreadKey
from ecr_pipeline.notify.delivery import DeliveryAmbiguous
from ecr_pipeline.notify.model import Message
from ecr_pipeline.notify.render.chatbot import render_chatbot
from ecr_pipeline.notify.threads import STALE_SECONDS, ThreadedSlackChannel, ThreadNotReady, render_head, stage_of
from ecr_pipeline.settings import SettingsError, read_settings, slack_mode
from tests.notify_fakes import message_for

CHANNEL = "C0TESTCHAN"
PUSH = "7a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d#branch#main"


@dataclass
class FakeSlack:
    """chat.postMessage and chat.update, recorded; `fail_posts` refuses the next posts as Slack would."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_posts: int = 0
    sequence: int = 0

    def post_message(self, channel: str, payload: dict[str, Any], thread_ts: str = "") -> str:
        if self.fail_posts:
            self.fail_posts -= 1
            raise SlackDeliveryFailed("Slack chat.postMessage answered 200 channel_not_found")
        self.sequence += 1
        ts = f"1700000000.{self.sequence:06d}"
        self.calls.append({"method": "post", "channel": channel, "ts": ts, "thread_ts": thread_ts, "payload": payload})
        return ts

    def update_message(self, channel: str, ts: str, payload: dict[str, Any]) -> None:
        self.calls.append({"method": "update", "channel": channel, "ts": ts, "payload": payload})

    def of(self, method: str, *, reply: bool | None = None) -> list[dict[str, Any]]:
        return [
            call
            for call in self.calls
            if call["method"] == method and (reply is None or bool(call.get("thread_ts")) == reply)
        ]


@dataclass
class MemoryThreads:
    """The thread ledger's semantics (adapters/thread_ledger.py) in memory."""

    claims: dict[ThreadKey, ThreadClaim] = field(default_factory=dict)
    stage_lines: dict[tuple[ThreadKey, str], StageLine] = field(default_factory=dict)

    def record_line(self, key: ThreadKey, line: StageLine) -> bool:
        kept = self.stage_lines.get((key, line.stage))
        if kept is not None and kept.time > line.time:
            return False
        self.stage_lines[(key, line.stage)] = line
        return True

    def claim(self, key: ThreadKey, owner: str, now: float, head: dict[str, str]) -> ThreadClaim:
        if key in self.claims:
            return self.claims[key]
        self.claims[key] = ThreadClaim(owner, now)
        return ThreadClaim(owner, now, created=True)

    def read_claim(self, key: ThreadKey) -> ThreadClaim | None:
        return self.claims.get(key)

    def set_ts(self, key: ThreadKey, owner: str, ts: str) -> bool:
        claim = self.claims.get(key)
        if claim is None or claim.owner != owner or claim.ts:
            return False
        self.claims[key] = claim._replace(ts=ts)
        return True

    def take_over(self, key: ThreadKey, stale_owner: str, owner: str, now: float) -> bool:
        claim = self.claims.get(key)
        if claim is None or claim.owner != stale_owner or claim.ts:
            return False
        self.claims[key] = ThreadClaim(owner, now)
        return True

    def release(self, key: ThreadKey, owner: str) -> None:
        claim = self.claims.get(key)
        if claim is not None and claim.owner == owner and not claim.ts:
            del self.claims[key]

    def lines(self, key: ThreadKey) -> list[StageLine]:
        return sorted((line for (k, _), line in self.stage_lines.items() if k == key), key=lambda line: line.time)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def channel(
    slack: FakeSlack, threads: MemoryThreads, clock: Clock | None = None, **options: Any
) -> ThreadedSlackChannel:
    clock = clock or Clock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    return ThreadedSlackChannel(slack, threads, CHANNEL, clock=clock, sleep=sleep, **options)


def send(thread_channel: ThreadedSlackChannel, message: Message) -> dict[str, Any]:
    # As delivery does it: rendered once, and what is rendered is JSON (kept and replayed as such).
    return thread_channel.post(json.loads(json.dumps(thread_channel.render(message))))


def stages_of_a_push() -> list[Message]:
    return [
        message_for("build_started"),
        message_for("codebuild_succeeded"),
        message_for("notify_scan_verdict_passed"),
        message_for("deployment_started"),
        message_for("deployment_rolled_back"),
    ]


def test_the_first_message_of_a_push_posts_the_thread_and_later_stages_update_it() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    notify = channel(slack, threads)

    results = [send(notify, message) for message in stages_of_a_push()]

    [head] = slack.of("post", reply=False)
    updates = slack.of("update")
    assert results[0]["posted"] == head["ts"]
    assert len(updates) == 4
    assert {update["ts"] for update in updates} == {head["ts"]}
    last_lines = updates[-1]["payload"]["blocks"][2]["text"]["text"].splitlines()
    assert [line.split("*")[1] for line in last_lines] == [
        "Build succeeded",
        "Scan passed",
        "Deployment rolled back",
    ]


def test_a_rolled_back_deployment_is_also_told_in_full_in_the_thread() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    notify = channel(slack, threads)

    for message in stages_of_a_push():
        send(notify, message)

    head = slack.of("post", reply=False)[0]
    [reply] = slack.of("post", reply=True)
    assert reply["thread_ts"] == head["ts"]
    assert reply["payload"]["blocks"][0]["text"]["text"].startswith(":rewind: Deployment rolled back")


def test_a_blocked_image_replies_in_the_thread_of_its_push() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    notify = channel(slack, threads)

    send(notify, message_for("build_started"))
    send(notify, message_for("notify_scan_verdict_blocked"))

    [reply] = slack.of("post", reply=True)
    assert reply["thread_ts"] == slack.of("post", reply=False)[0]["ts"]
    assert threads.claims[ThreadKey(CHANNEL, PUSH)].ts == reply["thread_ts"]


def test_two_pushes_make_two_threads() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    notify = channel(slack, threads)

    send(notify, message_for("build_started"))
    send(notify, message_for("build_started", push_id="0b1c2d3e-0000-4000-8000-000000000001#branch#feature"))

    assert len(slack.of("post", reply=False)) == 2
    assert slack.of("update") == []


def test_a_push_whose_head_another_invocation_is_posting_waits_and_updates_it() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    clock = Clock()
    key = ThreadKey(CHANNEL, PUSH)
    threads.claims[key] = ThreadClaim("the-other-event", clock.now)  # the racer claimed it, not posted yet
    notify = channel(slack, threads, clock)

    def racer_posts(seconds: float) -> None:
        clock.now += seconds
        threads.set_ts(key, "the-other-event", "1700000000.000042")

    notify._sleep = racer_posts  # the other invocation records its ts while this one waits

    result = send(notify, message_for("codebuild_succeeded"))

    assert slack.of("post") == []
    assert [update["ts"] for update in slack.of("update")] == ["1700000000.000042"]
    assert result["updated"] == "1700000000.000042"


def test_a_head_that_never_comes_is_retried_later_not_posted_twice() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    clock = Clock()
    threads.claims[ThreadKey(CHANNEL, PUSH)] = ThreadClaim("the-other-event", clock.now)
    notify = channel(slack, threads, clock, wait_seconds=2.0)

    with pytest.raises(ThreadNotReady, match="the-other-event"):
        send(notify, message_for("codebuild_succeeded"))
    assert slack.calls == []


def test_a_stale_claim_is_taken_over_and_the_head_posted() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    clock = Clock()
    key = ThreadKey(CHANNEL, PUSH)
    threads.claims[key] = ThreadClaim("a-dead-invocation", clock.now - STALE_SECONDS - 1)
    notify = channel(slack, threads, clock)

    send(notify, message_for("codebuild_succeeded"))

    [head] = slack.of("post", reply=False)
    assert threads.claims[key].ts == head["ts"]
    assert threads.claims[key].owner == message_for("codebuild_succeeded").event_id


def test_a_retry_of_the_event_that_claimed_the_thread_does_not_post_it_again() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    clock = Clock()
    message = message_for("build_started")
    # An earlier attempt of this event claimed the thread and died before recording a ts.
    threads.claims[ThreadKey(CHANNEL, PUSH)] = ThreadClaim(message.event_id, clock.now)
    notify = channel(slack, threads, clock)

    with pytest.raises(DeliveryAmbiguous, match="may have posted"):
        send(notify, message)
    assert slack.calls == []


def test_a_refused_head_releases_the_claim_so_the_next_event_posts_it() -> None:
    slack, threads = FakeSlack(fail_posts=1), MemoryThreads()
    notify = channel(slack, threads)

    with pytest.raises(SlackDeliveryFailed):
        send(notify, message_for("build_started"))
    assert threads.claims == {}

    send(notify, message_for("codebuild_succeeded"))

    [head] = slack.of("post", reply=False)
    text = head["payload"]["blocks"][2]["text"]["text"]
    assert "Build succeeded" in text and "Build started" not in text  # the build's one line, its latest


def test_a_message_of_no_push_is_posted_on_its_own() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    notify = channel(slack, threads)
    message = message_for("build_started")._replace(repository="", commit="", push_id="")

    result = send(notify, message)

    [post] = slack.calls
    assert (post["thread_ts"], result["ts"]) == ("", post["ts"])
    assert threads.claims == {}


def test_each_stage_has_its_own_line_and_a_deployment_one_per_environment() -> None:
    started, rolled_back = message_for("deployment_started"), message_for("deployment_rolled_back")
    assert stage_of(started) == stage_of(rolled_back) == "deployment#demo-app#dev"
    assert stage_of(message_for("build_started")) == stage_of(message_for("codebuild_failed")) == "build#demo-app"
    assert stage_of(started._replace(environment="prod")) != stage_of(started)


def test_the_thread_head_fits_slacks_limits_whatever_the_push_says() -> None:
    head = {"repository": "r" * 500, "ref": "b" * 500, "commit": "c" * 40, "author": "<!channel>" * 100}
    lines = [StageLine(f"stage{index}", f"2026-11-28T10:{index:02d}:00Z", "x" * 400) for index in range(40)]

    payload = render_head(head, PUSH, lines)

    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in payload["blocks"])
    assert "<!channel>" not in json.dumps(payload)


def test_chatbot_messages_of_one_push_share_its_thread_id() -> None:
    threads = {render_chatbot(message)["metadata"]["threadId"] for message in stages_of_a_push()}
    other = message_for("build_started", push_id="0b1c2d3e-0000-4000-8000-000000000001#branch#feature")

    assert threads == {PUSH}
    assert render_chatbot(other)["metadata"]["threadId"] != PUSH


def test_a_bot_token_without_a_channel_fails_at_start_up_naming_the_field() -> None:
    settings = read_settings({"SLACK_BOT_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:bot"})
    with pytest.raises(SettingsError, match="SLACK_CHANNEL_ID"):
        slack_mode(settings)


def test_the_bot_token_chooses_threads_and_a_lone_webhook_separate_messages() -> None:
    both = read_settings(
        {"SLACK_BOT_TOKEN_SECRET_ARN": "arn:bot", "SLACK_CHANNEL_ID": CHANNEL, "SLACK_WEBHOOK_SECRET_ARN": "arn:hook"}
    )
    assert slack_mode(both) == "threads"
    assert slack_mode(read_settings({"SLACK_WEBHOOK_SECRET_ARN": "arn:hook"})) == "webhook"
    assert slack_mode(read_settings({})) == ""


def test_a_bot_token_secret_is_the_token_or_json_with_its_api_url() -> None:
    assert bot_credentials_from_secret(" xoxb-1-2-abc\n", "bot") == BotCredentials("xoxb-1-2-abc", SLACK_API_URL)
    given = json.dumps({"token": "xoxb-1-2-abc", "api_url": "https://slack-gov.com/api"})
    assert bot_credentials_from_secret(given, "bot") == BotCredentials("xoxb-1-2-abc", "https://slack-gov.com/api/")


@pytest.mark.parametrize("value", ["not-a-token", '{"token": 3}', '{"token": "xoxb-1", "api_url": "ftp://x"}', "{"])
def test_a_secret_without_a_bot_token_is_refused_without_repeating_it(value: str) -> None:
    with pytest.raises(BotTokenSecretInvalid) as raised:
        bot_credentials_from_secret(value, "bot")
    assert value not in str(raised.value) or value == "{"


def test_a_replayed_head_is_posted_when_its_own_earlier_claim_never_got_a_ts() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    clock = Clock()
    message = message_for("build_started")
    threads.claims[ThreadKey(CHANNEL, PUSH)] = ThreadClaim(message.event_id, clock.now)  # no answer back then
    replaying = channel(slack, threads, clock, replaying=True)

    send(replaying, message)

    [head] = slack.of("post", reply=False)
    assert threads.claims[ThreadKey(CHANNEL, PUSH)].ts == head["ts"]


def test_a_message_kept_by_webhook_mode_is_replayed_as_it_was_rendered() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    webhook_payload = {"text": "Build failed: demo-app main a3b2c1d", "blocks": [{"type": "divider"}]}

    channel(slack, threads).post(webhook_payload)

    [post] = slack.calls
    assert post["payload"] == webhook_payload and post["thread_ts"] == ""
    assert threads.claims == {}


def test_a_late_event_of_a_stage_updates_nothing_and_hides_nothing() -> None:
    slack, threads = FakeSlack(), MemoryThreads()
    notify = channel(slack, threads)
    send(notify, message_for("codebuild_succeeded"))

    send(notify, message_for("build_started"))  # delivered after the build's end

    assert slack.of("update") == []
    [line] = threads.lines(ThreadKey(CHANNEL, PUSH))
    assert "Build succeeded" in line.text
