"""The Slack stand-in's Web API (emulator/slack.py): chat.postMessage's rate per channel, form and JSON
bodies, Slack's answers, and the record of every post, update and reply."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import pytest

from emulator.slack import BOT_TOKEN, CHANNEL_ID, POST_BURST, PostRate, SlackWebhook


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_channel_takes_a_short_burst_then_one_post_per_second() -> None:
    clock = Clock()
    rate = PostRate(clock)

    assert [rate.take(CHANNEL_ID) for _ in range(POST_BURST)] == [0] * POST_BURST
    assert rate.take(CHANNEL_ID) == 1  # Retry-After: 1 second
    clock.now += 1.0
    assert rate.take(CHANNEL_ID) == 0
    assert rate.take(CHANNEL_ID) == 1


def test_each_channel_has_its_own_rate() -> None:
    rate = PostRate(Clock())
    for _ in range(POST_BURST):
        rate.take("C0FIRST")

    assert rate.take("C0FIRST") > 0
    assert rate.take("C0SECOND") == 0


@pytest.fixture
def slack(slack_stand_in: SlackWebhook) -> SlackWebhook:
    return slack_stand_in


def _call(slack: SlackWebhook, method: str, body: bytes, content_type: str, token: str = BOT_TOKEN) -> Any:
    request = urllib.request.Request(
        slack.api_url + method,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def test_a_form_post_with_blocks_as_json_text_is_taken_and_a_reply_joins_its_thread(slack: SlackWebhook) -> None:
    blocks = json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "*head*"}}])
    form = urllib.parse.urlencode({"channel": CHANNEL_ID, "text": "head", "blocks": blocks}).encode()

    head = _call(slack, "chat.postMessage", form, "application/x-www-form-urlencoded")
    reply = _call(
        slack,
        "chat.postMessage",
        json.dumps({"channel": CHANNEL_ID, "text": "reply", "thread_ts": head["ts"]}).encode(),
        "application/json; charset=utf-8",
    )
    updated = _call(
        slack,
        "chat.update",
        json.dumps({"channel": CHANNEL_ID, "ts": head["ts"], "text": "head, updated"}).encode(),
        "application/json",
    )

    assert head["ok"] and head["channel"] == CHANNEL_ID and head["message"]["blocks"][0]["type"] == "section"
    assert reply["message"]["thread_ts"] == head["ts"] and reply["ts"] != head["ts"]
    assert updated == {"ok": True, "channel": CHANNEL_ID, "ts": head["ts"], "message": updated["message"]}
    assert [(m.method, m.ts, m.thread_ts) for m in slack.messages] == [
        ("chat.postMessage", head["ts"], ""),
        ("chat.postMessage", reply["ts"], head["ts"]),
        ("chat.update", head["ts"], ""),
    ]


def test_slacks_errors_come_back_as_ok_false(slack: SlackWebhook) -> None:
    body = json.dumps({"channel": CHANNEL_ID}).encode()

    assert _call(slack, "chat.postMessage", body, "application/json") == {"ok": False, "error": "no_text"}
    assert _call(slack, "chat.postMessage", body, "application/json", token="xoxb-other")["error"] == "invalid_auth"
    assert [message.accepted for message in slack.messages] == [False, False]
