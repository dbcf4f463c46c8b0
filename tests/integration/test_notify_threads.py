"""notify in Slack bot-token mode against moto (ledger, idempotency, Secrets Manager) and the emulator's
Slack stand-in over loopback (chat.postMessage, chat.update, their limits): one push, one thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ecr_pipeline.adapters.slack import BotCredentials, SlackBotApi, SlackDeliveryFailed
from ecr_pipeline.adapters.thread_ledger import SlackThreadLedger, StageLine, ThreadKey
from emulator.slack import CHANNEL_ID, POST_BURST, POSTS_PER_SECOND, SlackMessage, SlackWebhook
from tests.events import load_event
from tests.handlers import FakeLambdaContext, create_pipeline_tables, load_handler
from tests.integration.test_notify_handler import topic_with_queue

PUSH = "7a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d#branch#main"
STAGES = ("build_started", "notify_scan_verdict_passed", "deployment_started", "deployment_rolled_back")


@dataclass
class Threads:
    app: ModuleType
    slack: SlackWebhook

    def invoke(self, name: str, **detail: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.app.handler(load_event(name, **detail), FakeLambdaContext(function_name="notify"))
        return result

    def accepted(self, method: str) -> list[SlackMessage]:
        return [message for message in self.slack.messages if message.method == method and message.accepted]


@pytest.fixture
def slack(slack_stand_in: SlackWebhook) -> SlackWebhook:
    return slack_stand_in


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch, slack: SlackWebhook) -> Iterator[Threads]:
    with mock_aws():
        create_pipeline_tables()
        topic_arn, _ = topic_with_queue()
        secret = json.dumps({"token": slack.bot_token, "api_url": slack.api_url})
        arn = boto3.client("secretsmanager").create_secret(Name="slack-bot", SecretString=secret)["ARN"]
        for name, value in {
            "TOPIC_ARN": topic_arn,
            "LEDGER_TABLE": "ledger",
            "IDEMPOTENCY_TABLE": "idempotency",
            "STAGE": "dev",
            "SLACK_BOT_TOKEN_SECRET_ARN": arn,
            "SLACK_CHANNEL_ID": CHANNEL_ID,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SLACK_WEBHOOK_SECRET_ARN", raising=False)
        yield Threads(load_handler("notify"), slack)


def test_a_push_is_one_thread_one_post_updates_and_a_reply_for_its_rollback(threads: Threads) -> None:
    for name in STAGES:
        assert threads.invoke(name)["status"] == "delivered"

    posts = threads.accepted("chat.postMessage")
    [head] = [post for post in posts if not post.thread_ts]
    [reply] = [post for post in posts if post.thread_ts]
    updates = threads.accepted("chat.update")
    assert reply.thread_ts == head.ts
    assert [update.payload["ts"] for update in updates] == [head.ts] * 3
    assert "Deployment rolled back" in updates[-1].payload["blocks"][2]["text"]["text"]
    assert reply.payload["blocks"][0]["text"]["text"].startswith(":rewind: Deployment rolled back")


def test_a_redelivered_event_posts_and_updates_nothing_more(threads: Threads) -> None:
    threads.invoke("build_started")
    threads.invoke("deployment_rolled_back")
    told = len(threads.slack.messages)

    threads.invoke("deployment_rolled_back")  # EventBridge delivered it twice

    assert len(threads.slack.messages) == told


def test_the_thread_is_kept_in_the_ledger_with_the_heads_ts(threads: Threads) -> None:
    threads.invoke("build_started")

    claim = SlackThreadLedger("ledger").read_claim(ThreadKey(CHANNEL_ID, PUSH))
    [head] = threads.accepted("chat.postMessage")
    assert claim is not None and claim.ts == head.ts


def test_two_claims_of_one_push_make_one_owner() -> None:
    with mock_aws():
        create_pipeline_tables()
        ledger, key = SlackThreadLedger("ledger"), ThreadKey(CHANNEL_ID, PUSH)

        first = ledger.claim(key, "event-1", 1000.0, {})
        second = ledger.claim(key, "event-2", 1000.5, {})

        assert (first.created, second.created) == (True, False)
        assert second.owner == "event-1"
        assert ledger.set_ts(key, "event-2", "1.2") is False  # only the owner records the head
        assert ledger.set_ts(key, "event-1", "1.1") is True
        assert ledger.set_ts(key, "event-1", "1.3") is False  # once
        assert ledger.take_over(key, "event-1", "event-2", 2000.0) is False  # posted: nothing to take over


def test_a_late_event_never_replaces_a_later_stage_line() -> None:
    with mock_aws():
        create_pipeline_tables()
        ledger, key = SlackThreadLedger("ledger"), ThreadKey(CHANNEL_ID, PUSH)

        assert ledger.record_line(key, StageLine("build#demo-app", "2026-11-28T10:07:12Z", "Build succeeded"))
        assert not ledger.record_line(key, StageLine("build#demo-app", "2026-11-28T10:05:04Z", "Build started"))
        ledger.record_line(key, StageLine("scan#demo-app", "2026-11-28T10:08:00Z", "Scan passed"))

        assert [line.text for line in ledger.lines(key)] == ["Build succeeded", "Scan passed"]


def _obeys_the_post_rate(posts: list[SlackMessage]) -> bool:
    """Any run of k accepted posts spans at least (k - POST_BURST) / POSTS_PER_SECOND seconds."""
    times = sorted(post.at for post in posts)
    return all(
        (j - i + 1) <= POST_BURST + (times[j] - times[i]) * POSTS_PER_SECOND + 0.05
        for i in range(len(times))
        for j in range(i, len(times))
    )


def test_the_stand_in_refuses_a_burst_beyond_one_post_per_second(slack: SlackWebhook) -> None:
    impatient = SlackBotApi(lambda: BotCredentials(slack.bot_token, slack.api_url), rate_limit_retries=0)

    with pytest.raises(SlackDeliveryFailed, match="429 ratelimited"):
        for index in range(POST_BURST + 2):
            impatient.post_message(CHANNEL_ID, {"text": f"message {index}"})

    refused = [message for message in slack.messages if not message.accepted]
    assert [message.error for message in refused] == ["ratelimited"]


def test_a_burst_of_posts_waits_out_retry_after_and_all_arrive(slack: SlackWebhook) -> None:
    api = SlackBotApi(lambda: BotCredentials(slack.bot_token, slack.api_url))

    for index in range(POST_BURST + 3):
        api.post_message(CHANNEL_ID, {"text": f"push {index}"})

    accepted = [message for message in slack.messages if message.accepted]
    assert [message.payload["text"] for message in accepted] == [f"push {index}" for index in range(POST_BURST + 3)]
    assert any(message.error == "ratelimited" for message in slack.messages)  # the limit was met, and waited out
    assert _obeys_the_post_rate(accepted)


@pytest.mark.parametrize(
    ("token", "channel", "error"),
    [
        ("", CHANNEL_ID, "not_authed"),
        ("xoxb-wrong", CHANNEL_ID, "invalid_auth"),
        (None, "C0NOWHERE", "channel_not_found"),
    ],
)
def test_the_stand_in_answers_slacks_errors(slack: SlackWebhook, token: str | None, channel: str, error: str) -> None:
    api = SlackBotApi(lambda: BotCredentials(slack.bot_token if token is None else token, slack.api_url))

    with pytest.raises(SlackDeliveryFailed, match=error):
        api.post_message(channel, {"text": "hello"})


def test_an_update_of_a_message_never_posted_is_message_not_found(slack: SlackWebhook) -> None:
    api = SlackBotApi(lambda: BotCredentials(slack.bot_token, slack.api_url))

    with pytest.raises(SlackDeliveryFailed, match="message_not_found"):
        api.update_message(CHANNEL_ID, "1700000000.000001", {"text": "changed"})


def test_the_stand_in_refuses_text_over_slacks_limit(slack: SlackWebhook) -> None:
    api = SlackBotApi(lambda: BotCredentials(slack.bot_token, slack.api_url))

    with pytest.raises(SlackDeliveryFailed, match="msg_too_long"):
        api.post_message(CHANNEL_ID, {"text": "x" * 40_001})
    with pytest.raises(SlackDeliveryFailed, match="invalid_blocks"):
        api.post_message(CHANNEL_ID, {"text": "t", "blocks": [{"type": "divider"}] * 51})
