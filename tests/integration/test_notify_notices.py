"""notify notes each fact it told in the ledger, for the story of the commit (notify/notices.py):
per channel, delivered, failed (retried) or kept for replay; a retry rewrites the same notice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from moto import mock_aws
from pytest_httpserver import HTTPServer
from werkzeug import Response

from ecr_pipeline.notify.notices import NoticeLedger
from ecr_pipeline.records import NoticeRecord
from tests.events import load_event
from tests.integration.test_notify_handler import WEBHOOK_PATH, Harness, SlackStandIn, start

BLOCKED = "notify_scan_verdict_blocked"  # routed to both channels


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer) -> Iterator[Harness]:
    slack = SlackStandIn()
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_handler(slack)
    with mock_aws():
        app, queue_url = start(monkeypatch, httpserver.url_for(WEBHOOK_PATH))
        app.channels["slack"].webhook._handlers = []  # no slack_sdk retries: each attempt is one request
        yield Harness(app=app, slack=slack, queue_url=queue_url, webhook_url=httpserver.url_for(WEBHOOK_PATH))
    slack.release.set()


def notices(event_name: str) -> list[NoticeRecord]:
    detail = load_event(event_name)["detail"]
    return NoticeLedger("ledger").notices_of_commit(detail["repository"], detail["commit"])


def test_a_told_fact_is_noted_once_with_each_channel_delivered(harness: Harness) -> None:
    event = load_event(BLOCKED)
    harness.invoke(event)
    harness.invoke(event)  # a redelivery tells nothing new and notes nothing new

    [notice] = notices(BLOCKED)
    assert (notice.event, notice.status, notice.ref) == ("scan", "BLOCKED", event["detail"]["ref"])
    assert notice.channels == (("slack", "delivered"), ("sns", "delivered"))
    assert notice.image_digest == event["detail"]["image_digest"]
    assert dt.datetime.fromisoformat(notice.time) == dt.datetime.fromisoformat(event["time"])


def test_a_failed_channel_is_noted_as_failed_then_as_delivered_by_the_retry(harness: Harness) -> None:
    harness.slack.script = [Response("internal_error", 500)]
    event = load_event(BLOCKED)
    with pytest.raises(harness.app.DeliveryFailed):
        harness.invoke(event)
    [first] = notices(BLOCKED)
    assert first.channels == (("slack", "failed"), ("sns", "delivered"))

    harness.invoke(event)  # Lambda's retry: the topic is not told again, Slack is

    [notice] = notices(BLOCKED)
    assert notice.channels == (("slack", "delivered"), ("sns", "delivered"))
    assert len(harness.sns_messages()) == 1


def test_a_notification_given_up_on_is_noted_as_kept(harness: Harness) -> None:
    harness.slack.otherwise = Response("no_service", 404)
    event = load_event(BLOCKED)
    for _attempt in range(2):
        with pytest.raises(harness.app.DeliveryFailed):
            harness.invoke(event)
    harness.invoke(event)  # the last attempt keeps it for replay

    [notice] = notices(BLOCKED)
    assert notice.channels == (("slack", "kept"), ("sns", "delivered"))


def test_a_message_routed_nowhere_is_not_noted(harness: Harness) -> None:
    # codebuild_succeeded goes to Slack only (pipeline.yaml); with no channel configured it goes nowhere.
    harness.app.notifier.channels.pop("slack")
    result = harness.invoke(load_event("codebuild_succeeded"))

    assert result["channels"] == {}
    table = harness.app.notifier.notices._client.scan(TableName="ledger")["Items"]
    assert [item for item in table if item["pk"]["S"].startswith("NOTICES#")] == []
