"""Delivery: every channel is tried, failures are raised after, and a retry skips delivered channels."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ecr_pipeline.adapters.slack import WebhookSecretInvalid, webhook_url_from_secret
from ecr_pipeline.notify.delivery import (
    KEPT,
    LAMBDA_ATTEMPTS,
    DeliveryAmbiguous,
    DeliveryFailed,
    Undelivered,
    deliver,
)
from ecr_pipeline.notify.model import Message
from ecr_pipeline.notify.notifier import message_attributes, sns_payload
from tests.notify_fakes import message_for

URL = "https://hooks.slack.com/services/T000/B000/secretpart"


@dataclass
class FakeChannel:
    name: str
    failures_left: int = 0
    ambiguous: bool = False
    sent: list[str] = field(default_factory=list)

    def render(self, message: Message) -> dict[str, Any]:
        return {"text": message.headline, "event_id": message.event_id}

    def post(self, rendered: dict[str, Any]) -> dict[str, Any]:
        if self.ambiguous:
            raise DeliveryAmbiguous("connection dropped")
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError(f"{self.name} is down")
        self.sent.append(rendered["event_id"])
        return {"status": "sent"}


@dataclass
class MemoryOnce:
    """An idempotency store in memory: a completed delivery is remembered, a failed one is not."""

    done: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __call__(self, *, delivery: dict[str, str], send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = (delivery["fact"], delivery["channel"])
        if key not in self.done:
            self.done[key] = send()
        return self.done[key]


def test_a_slack_failure_does_not_stop_the_sns_message() -> None:
    sns, slack = FakeChannel("sns"), FakeChannel("slack", failures_left=1)
    message = message_for("notify_scan_verdict_blocked")

    with pytest.raises(DeliveryFailed) as failed:
        deliver(message, [sns, slack], MemoryOnce())

    assert sns.sent == [message.event_id]
    assert list(failed.value.failures) == ["slack"]


def test_an_sns_failure_does_not_stop_the_slack_message() -> None:
    sns, slack = FakeChannel("sns", failures_left=1), FakeChannel("slack")
    with pytest.raises(DeliveryFailed, match="sns: RuntimeError: sns is down"):
        deliver(message_for("codebuild_failed"), [sns, slack], MemoryOnce())
    assert len(slack.sent) == 1


def test_a_retry_sends_only_to_the_channel_that_failed() -> None:
    sns, slack = FakeChannel("sns"), FakeChannel("slack", failures_left=1)
    once = MemoryOnce()
    message = message_for("codebuild_failed")
    with pytest.raises(DeliveryFailed):
        deliver(message, [sns, slack], once)

    deliver(message, [sns, slack], once)

    assert (len(sns.sent), len(slack.sent)) == (1, 1)


def test_the_sns_payload_gives_email_the_text_and_everything_else_the_chatbot_json() -> None:
    payload = json.loads(sns_payload(message_for("notify_scan_verdict_blocked")))
    assert set(payload) == {"default", "email"}
    assert payload["email"].startswith("Image blocked by its scan: demo-app main a3b2c1d\n")
    chatbot = json.loads(payload["default"])
    assert (chatbot["version"], chatbot["source"]) == ("1.0", "custom")
    assert chatbot["content"]["title"] == "⛔ Image blocked by its scan: demo-app"


def test_message_attributes_carry_what_filter_policies_need_and_leave_out_unknowns() -> None:
    assert message_attributes(message_for("notify_scan_verdict_blocked")) == {
        "event": "scan",
        "status": "BLOCKED",
        "severity": "ERROR",
        "repository": "demo-app",
        "branch": "main",
        "commit": "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4",
        "push_id": "7a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d#branch#main",
        "kinds": ["verdict", "blocked"],
    }


def test_a_secret_holding_the_url_gives_the_url() -> None:
    assert webhook_url_from_secret(URL + "\n", "slack-webhook") == URL


def test_a_json_secret_with_a_url_key_gives_the_url() -> None:
    assert webhook_url_from_secret(json.dumps({"url": URL}), "slack-webhook") == URL
    assert webhook_url_from_secret(json.dumps({"webhook_url": URL}).encode(), "slack-webhook") == URL


@pytest.mark.parametrize("value", ["not a url but a secret", '{"token": "not a url but a secret"}', "{broken"])
def test_a_secret_without_a_url_is_refused_without_repeating_its_value(value: str) -> None:
    with pytest.raises(WebhookSecretInvalid, match="slack-webhook") as refused:
        webhook_url_from_secret(value, "slack-webhook")
    assert "not a url but a secret" not in str(refused.value)


@dataclass
class MemoryKeeper:
    attempts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    kept: list[Undelivered] = field(default_factory=list)

    def count_failure(self, *, fact: str, channel: str, event_id: str) -> int:
        key = (fact, channel, event_id)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        return self.attempts[key]

    def keep(self, undelivered: Undelivered) -> None:
        self.kept.append(undelivered)


def test_the_same_fact_under_a_new_event_id_is_sent_once_per_channel() -> None:
    sns = FakeChannel("sns")
    once = MemoryOnce()
    first = message_for("notify_scan_verdict_blocked")
    republished = first._replace(event_id="another-event-id")

    deliver(first, [sns], once, fact="Scan Verdict#demo-app@sha256:1#BLOCKED")
    deliver(republished, [sns], once, fact="Scan Verdict#demo-app@sha256:1#BLOCKED")

    assert sns.sent == [first.event_id]


def test_a_channel_failing_on_every_lambda_attempt_is_kept_rendered_on_the_last() -> None:
    sns, slack = FakeChannel("sns", failures_left=LAMBDA_ATTEMPTS), FakeChannel("slack")
    once, keeper = MemoryOnce(), MemoryKeeper()
    message = message_for("codebuild_failed")

    for _attempt in range(LAMBDA_ATTEMPTS - 1):
        with pytest.raises(DeliveryFailed, match="sns: RuntimeError: sns is down"):
            deliver(message, [sns, slack], once, keeper, fact="f")
    delivery = deliver(message, [sns, slack], once, keeper, fact="f")

    assert delivery.kept == ["sns"] and delivery.delivered == ["slack"]
    [kept] = keeper.kept
    assert (kept.channel, kept.fact, kept.attempts) == ("sns", "f", LAMBDA_ATTEMPTS)
    assert kept.rendered == {"text": "Build failed", "event_id": message.event_id}
    assert "sns is down" in kept.reason
    assert len(slack.sent) == 1


def test_an_ambiguous_answer_is_kept_at_once_and_never_sent_again() -> None:
    slack = FakeChannel("slack", ambiguous=True)
    once, keeper = MemoryOnce(), MemoryKeeper()
    message = message_for("codebuild_failed")

    first = deliver(message, [slack], once, keeper, fact="f")
    slack.ambiguous = False
    second = deliver(message, [slack], once, keeper, fact="f")  # a retry or a republication

    assert first.results["slack"]["status"] == KEPT == second.results["slack"]["status"]
    assert slack.sent == []
    assert [kept.channel for kept in keeper.kept] == ["slack"]
