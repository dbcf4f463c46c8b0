"""notify's fault matrix over Lambda's three attempts (moto, Stubber, Slack on loopback), the fact its
deliveries are keyed on, strict parsing before any send, and the replay of what was kept.

Each fault ends one of two ways: applied exactly once, or kept (rendered, in the ledger) and alarmed
(`NotificationsUndelivered`), with the calls each channel got bounded.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from pytest_httpserver import HTTPServer
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from werkzeug import Response

from ecr_pipeline.adapters import clients
from ecr_pipeline.adapters.slack import retry_handlers
from ecr_pipeline.notify.delivery import LAMBDA_ATTEMPTS
from ecr_pipeline.notify.undelivered import METRIC, UndeliveredNotifications, replay
from tests.events import load_event
from tests.integration.test_notify_handler import SLOW, WEBHOOK_PATH, Harness, SlackStandIn, start

BLOCKED = "notify_scan_verdict_blocked"  # routed to both channels


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer) -> Iterator[Harness]:
    slack = SlackStandIn()
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_handler(slack)
    webhook_url = httpserver.url_for(WEBHOOK_PATH)
    with mock_aws():
        app, queue_url = start(monkeypatch, webhook_url)
        # slack_sdk's own retries, without their waits.
        app.channels["slack"].webhook._handlers = retry_handlers(FixedValueRetryIntervalCalculator(0))
        yield Harness(app=app, slack=slack, queue_url=queue_url, webhook_url=webhook_url)
    slack.release.set()


def attempts(harness: Harness, event: dict[str, Any], count: int = LAMBDA_ATTEMPTS) -> list[dict[str, Any] | str]:
    """Lambda's attempts: each invocation's result, or the name of what it raised."""
    outcomes: list[dict[str, Any] | str] = []
    for _attempt in range(count):
        try:
            outcomes.append(harness.invoke(event))
        except harness.app.DeliveryFailed as error:
            outcomes.append(type(error).__name__)
    return outcomes


def kept() -> dict[str, Any]:
    return {item.channel: item for item in UndeliveredNotifications("ledger", "idempotency").all_kept()}


def alarms(output: str) -> list[str]:
    """The channels of every NotificationsUndelivered metric the function printed (EMF)."""
    found = []
    for line in output.splitlines():
        if line.startswith("{") and f'"{METRIC}"' in line:
            blob = json.loads(line)
            found.append(blob["channel"])
    return found


# --- the fault matrix --------------------------------------------------------------------


def test_sns_throttled_on_every_attempt_is_kept_and_alarmed_and_slack_told_once(
    faults: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event(BLOCKED)
    with Stubber(clients.client("sns")) as sns:
        for _attempt in range(LAMBDA_ATTEMPTS):
            sns.add_client_error("publish", service_error_code="Throttling", http_status_code=400)

        outcomes = attempts(faults, event, LAMBDA_ATTEMPTS + 1)  # and one more redelivery

        sns.assert_no_pending_responses()  # one publish per attempt: bounded, and none after giving up
    assert outcomes[:2] == ["DeliveryFailed", "DeliveryFailed"]
    last = outcomes[2]
    assert isinstance(last, dict) and last["channels"]["sns"]["status"] == "kept"
    assert outcomes[3] == last
    stored = kept()["sns"]
    assert stored.attempts == LAMBDA_ATTEMPTS and "Throttl" in stored.reason
    assert stored.rendered["subject"] == "Image blocked by its scan: demo-app main a3b2c1d"
    assert json.loads(stored.rendered["message"])["email"].startswith("Image blocked by its scan")
    assert alarms(capsys.readouterr().out) == ["sns"]
    assert len(faults.slack.accepted) == 1 and len(faults.slack.received) == 1


def test_slack_answering_5xx_on_every_attempt_is_kept_and_alarmed_and_the_topic_told_once(
    faults: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    faults.slack.otherwise = Response("service_unavailable", 503)

    outcomes = attempts(faults, load_event(BLOCKED), LAMBDA_ATTEMPTS + 1)

    assert outcomes[:2] == ["DeliveryFailed", "DeliveryFailed"]
    assert isinstance(outcomes[2], dict) and outcomes[2]["channels"]["slack"]["status"] == "kept"
    assert len(faults.slack.received) == LAMBDA_ATTEMPTS * 3  # slack_sdk's two retries per attempt, then no more
    assert faults.slack.accepted == []
    assert kept()["slack"].rendered["text"] == "Image blocked by its scan: demo-app main a3b2c1d"
    assert alarms(capsys.readouterr().out) == ["slack"]
    assert len(faults.sns_messages()) == 1


def test_slack_timing_out_after_the_send_is_kept_and_alarmed_never_sent_again(
    faults: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    faults.slack.script = [SLOW]
    event = load_event(BLOCKED)

    first = faults.invoke(event)
    faults.slack.release.set()
    attempts(faults, event, LAMBDA_ATTEMPTS - 1)

    assert first["channels"]["slack"]["status"] == "kept"
    assert "TimeoutError" in kept()["slack"].reason
    assert len(faults.slack.received) == 1
    assert alarms(capsys.readouterr().out) == ["slack"]
    assert len(faults.sns_messages()) == 1


class DroppingServer:
    """A webhook that reads the whole request, then closes the connection without an answer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/services/T0/B0/dropped"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests += 1

    def close(self) -> None:
        self.listener.close()


def test_slack_dropping_the_connection_without_an_answer_is_kept_and_alarmed_not_delivered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = DroppingServer()
    try:
        with mock_aws():
            app, queue_url = start(monkeypatch, server.url)
            harness = Harness(app=app, slack=SlackStandIn(), queue_url=queue_url, webhook_url=server.url)

            outcomes = attempts(harness, load_event(BLOCKED))

            assert all(isinstance(outcome, dict) for outcome in outcomes)
            assert [outcome["channels"]["slack"]["status"] for outcome in outcomes if isinstance(outcome, dict)] == [
                "kept"
            ] * LAMBDA_ATTEMPTS
            assert "no answer" in kept()["slack"].reason
            assert len(harness.sns_messages()) == 1
    finally:
        server.close()
    assert server.requests == 1  # never re-sent blindly
    assert alarms(capsys.readouterr().out) == ["slack"]


# --- the fact, not the event id ----------------------------------------------------------


@pytest.mark.parametrize(
    "event_name",
    [
        "build_started",
        "build_skipped",
        BLOCKED,
        "notify_image_promoted",
        "notify_promotion_failed",
        "deployment_started",
        "deployment_skipped",
        "codebuild_failed",
        "deployment_succeeded",
        "deployment_failed",
        "deployment_rolled_back",
    ],
)
def test_a_republished_event_is_told_once_per_channel(faults: Harness, event_name: str) -> None:
    event = load_event(event_name)
    faults.invoke(event)
    told = (len(faults.sns_messages()), len(faults.slack.received))

    republished = {**event, "id": str(uuid.uuid4())}
    result = faults.invoke(republished)

    assert (len(faults.sns_messages()), len(faults.slack.received)) == (0, told[1])
    assert sum(told) >= 1 and result["status"] == "delivered"


def test_a_new_verdict_for_the_same_image_is_a_new_fact(faults: Harness) -> None:
    faults.invoke(load_event(BLOCKED))
    passed = load_event(BLOCKED, verdict="PASSED", reasons=[])
    faults.invoke({**passed, "id": str(uuid.uuid4())})

    assert len(faults.slack.received) == 2


# --- strict parsing before any send ------------------------------------------------------


@pytest.mark.parametrize("verdict", [None, "MAYBE", 3])
def test_a_scan_verdict_without_a_valid_verdict_is_rejected_before_any_send(faults: Harness, verdict: object) -> None:
    result = faults.invoke(load_event(BLOCKED, verdict=verdict))

    assert result["status"] == "rejected"
    assert result["field"] == "detail.verdict"
    assert faults.sns_messages() == [] and faults.slack.received == []
    assert boto3.client("dynamodb").scan(TableName="idempotency")["Items"] == []


# --- replay ------------------------------------------------------------------------------


def test_a_kept_notification_is_replayed_as_rendered_and_then_forgotten(faults: Harness) -> None:
    event = load_event(BLOCKED)
    with Stubber(clients.client("sns")) as sns:
        for _attempt in range(LAMBDA_ATTEMPTS):
            sns.add_client_error("publish", service_error_code="Throttling", http_status_code=400)
        attempts(faults, event)
    store = UndeliveredNotifications("ledger", "idempotency")

    listed = replay(store, faults.app.channels)
    results = replay(store, faults.app.channels, send=True)

    assert [result["outcome"] for result in listed] == ["listed"]
    assert [(result["channel"], result["outcome"]) for result in results] == [("sns", "delivered")]
    [published] = faults.sns_messages()
    assert published["Subject"] == "Image blocked by its scan: demo-app main a3b2c1d"
    assert store.all_kept() == []


def test_the_replay_script_lists_what_was_kept(faults: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    faults.slack.otherwise = Response("service_unavailable", 503)
    attempts(faults, load_event(BLOCKED))
    capsys.readouterr()
    path = Path(__file__).resolve().parents[2] / "scripts" / "replay_notifications.py"
    spec = importlib.util.spec_from_file_location("replay_notifications", path)
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    assert script.main(["--ledger-table", "ledger"]) == 0

    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert (listed["channel"], listed["outcome"]) == ("slack", "listed")


# --- a throttled idempotency success-save ------------------------------------------------


def test_a_throttled_success_save_does_not_fail_the_invocation_so_nothing_is_told_twice(faults: Harness) -> None:
    saves: list[str] = []

    def throttle_success_saves(params: dict[str, Any], **_kwargs: Any) -> None:
        if params.get("TableName") == "idempotency" and "#response_data" in params.get("UpdateExpression", ""):
            saves.append(params["Key"]["id"]["S"])
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}, "UpdateItem"
            )

    dynamodb = clients.client("dynamodb")
    dynamodb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", throttle_success_saves)
    try:
        result = faults.invoke(load_event(BLOCKED))  # Lambda sees no error, so it retries nothing
    finally:
        dynamodb.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", throttle_success_saves)

    assert len(saves) == 2  # one per channel, both throttled
    assert result["status"] == "delivered" and set(result["channels"]) == {"sns", "slack"}
    assert len(faults.sns_messages()) == 1 and len(faults.slack.accepted) == 1
