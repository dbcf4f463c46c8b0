"""notify's handler against moto (SNS -> SQS, DynamoDB, Secrets Manager) and a local HTTP server for Slack.

The core (and with it the shared Logger and Metrics) is reached through the loaded handler module
only, so nothing creates them before the test environment is set.

The Slack stand-in answers from a script (429, 500, a slow answer, a permanent 404) and records
what it received and what it accepted. In every fault the SNS topic gets the message exactly
once and Slack accepts it at most once, across Lambda's retries of the same event.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ecr_pipeline.adapters import clients
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.records import BuildRecord
from tests.events import load_event
from tests.handlers import FakeLambdaContext, create_pipeline_tables, load_handler
from tests.notify_fakes import BUILD_ID, COMMIT, DIGEST, NEWER_BUILD_ID, push_record

WEBHOOK_PATH = "/services/T0PIPELINE/B0NOTIFY/s3cr3tW3bh00kT0k3n"
SLOW = "slow"


@dataclass
class SlackStandIn:
    """A Slack incoming webhook that answers from a script, then with `otherwise`."""

    script: list[Response | str] = field(default_factory=list)
    otherwise: Response | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __call__(self, request: Request) -> Response:
        body = request.get_json()
        self.received.append(body)
        answer = self.script.pop(0) if self.script else (self.otherwise or Response("ok", 200))
        if answer == SLOW:
            # Slack got the message but answers after the client stopped waiting.
            self.release.wait(5)
            answer = Response("ok", 200)
        assert isinstance(answer, Response)
        if answer.status_code == 200:
            self.accepted.append(body)
        return answer


@dataclass
class Harness:
    app: ModuleType
    slack: SlackStandIn
    queue_url: str
    webhook_url: str

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.app.handler(event, FakeLambdaContext(function_name="notify"))
        return result

    def sns_messages(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        messages = []
        while True:
            response = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not response.get("Messages"):
                return messages
            for message in response["Messages"]:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def topic_with_queue() -> tuple[str, str]:
    """The notification topic, with an SQS queue subscribed so the test can count what it published."""
    topic_arn = boto3.client("sns").create_topic(Name="notifications")["TopicArn"]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="topic-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def start(monkeypatch: pytest.MonkeyPatch, webhook_url: str | None) -> tuple[ModuleType, str]:
    create_pipeline_tables()
    topic_arn, queue_url = topic_with_queue()
    monkeypatch.setenv("TOPIC_ARN", topic_arn)
    monkeypatch.setenv("LEDGER_TABLE", "ledger")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    monkeypatch.setenv("STAGE", "dev")
    if webhook_url is None:
        monkeypatch.delenv("SLACK_WEBHOOK_SECRET_ARN", raising=False)
    else:
        secret = boto3.client("secretsmanager").create_secret(Name="slack-webhook", SecretString=webhook_url)
        monkeypatch.setenv("SLACK_WEBHOOK_SECRET_ARN", secret["ARN"])
    app = load_handler("notify")
    if webhook_url:
        # A short timeout keeps the timeout test quick; the retry logic is slack_sdk's own.
        app.channels["slack"].webhook.timeout = 1
    return app, queue_url


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer) -> Iterator[Harness]:
    slack = SlackStandIn()
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_handler(slack)
    webhook_url = httpserver.url_for(WEBHOOK_PATH)
    with mock_aws():
        app, queue_url = start(monkeypatch, webhook_url)
        yield Harness(app=app, slack=slack, queue_url=queue_url, webhook_url=webhook_url)
    slack.release.set()


# --- the happy paths ---------------------------------------------------------------------


def test_a_blocked_verdict_goes_once_to_the_topic_and_once_to_slack(harness: Harness) -> None:
    result = harness.invoke(load_event("notify_scan_verdict_blocked"))

    assert result["status"] == "delivered"
    assert set(result["channels"]) == {"sns", "slack"}
    [published] = harness.sns_messages()
    assert json.loads(published["Message"])["content"]["title"] == "⛔ Image blocked by its scan: demo-app"
    assert published["MessageAttributes"]["status"] == {"Type": "String", "Value": "BLOCKED"}
    assert published["Subject"] == "Image blocked by its scan: demo-app main a3b2c1d"
    [accepted] = harness.slack.accepted
    assert accepted["blocks"][0]["text"]["text"] == ":no_entry: Image blocked by its scan: demo-app"


def test_a_redelivered_event_is_not_told_twice(harness: Harness) -> None:
    event = load_event("codebuild_failed")
    harness.invoke(event)
    harness.invoke(event)

    assert len(harness.sns_messages()) == 1
    assert len(harness.slack.received) == 1


def test_a_successful_build_goes_to_slack_only_as_pipeline_yaml_routes_it(harness: Harness) -> None:
    harness.invoke(load_event("codebuild_succeeded"))

    assert harness.sns_messages() == []
    assert len(harness.slack.accepted) == 1


def test_a_build_stopped_by_a_newer_push_is_told_as_superseded_from_the_ledger(harness: Harness) -> None:
    ledger = Ledger("ledger")
    ledger.record_push(push_record())
    ledger.record_build(BuildRecord(BUILD_ID, repository="demo-app", ref_name="main", commit=COMMIT))
    ledger.mark_superseded(BUILD_ID, NEWER_BUILD_ID)

    harness.invoke(load_event("codebuild_stopped"))

    [accepted] = harness.slack.accepted
    assert accepted["text"] == "Build superseded: demo-app main a3b2c1d"
    assert "by *Ada Lovelace*\n> Add login page" in accepted["blocks"][1]["text"]["text"]
    assert harness.sns_messages() == []  # superseded is not a failure: email stays quiet


def test_a_failed_deployment_is_told_as_a_failure_with_its_reason_and_what_serves_now(harness: Harness) -> None:
    harness.invoke(load_event("deployment_failed"))

    [published] = harness.sns_messages()
    assert published["Subject"] == "Deployment failed: demo-app main a3b2c1d -> dev"
    assert json.loads(published["MessageAttributes"]["kinds"]["Value"]) == ["deployment", "failures"]
    description = json.loads(published["Message"])["content"]["description"]
    assert "Reason: HEALTH_CONSTRAINTS" in description and "*Serving now:* 9f8e7d6c5b4a" in description
    [accepted] = harness.slack.accepted
    assert f"`demo-app@{DIGEST}`" in json.dumps(accepted["blocks"])


def test_a_malformed_event_is_dropped_without_retry(harness: Harness) -> None:
    event = load_event("deployment_failed")
    del event["detail"]["deployment_id"]

    result = harness.invoke(event)

    assert result["status"] == "rejected"
    assert "detail.deployment_id" in result["reason"]
    assert harness.slack.received == []


def test_a_codedeploy_state_change_is_rejected_not_told(harness: Harness) -> None:
    # deploy reads a deployment's end and tells it; CodeDeploy's own event reaching notify is a stray.
    result = harness.invoke(load_event("codedeploy_failure"))

    assert (result["status"], result["field"]) == ("rejected", "detail-type")
    assert harness.sns_messages() == [] and harness.slack.received == []


# --- Slack faults ------------------------------------------------------------------------


def test_a_rate_limit_with_retry_after_is_waited_out_and_slack_gets_it_once(harness: Harness) -> None:
    harness.slack.script = [Response("rate_limited", 429, headers={"Retry-After": "0"})]

    harness.invoke(load_event("notify_scan_verdict_blocked"))

    assert len(harness.slack.received) == 2
    assert len(harness.slack.accepted) == 1
    assert len(harness.sns_messages()) == 1


def test_a_server_error_then_success_gives_slack_the_message_once(harness: Harness) -> None:
    harness.slack.script = [Response("rollup_error", 500)]

    harness.invoke(load_event("notify_scan_verdict_blocked"))

    assert len(harness.slack.received) == 2
    assert len(harness.slack.accepted) == 1
    assert len(harness.sns_messages()) == 1


def test_a_timeout_is_not_retried_so_slack_never_gets_it_twice(harness: Harness) -> None:
    harness.slack.script = [SLOW]
    event = load_event("notify_scan_verdict_blocked")

    result = harness.invoke(event)
    harness.slack.release.set()
    harness.invoke(event)  # a redelivery of the same event

    assert result["channels"]["slack"]["status"] == "kept"  # not delivered: kept for ops, and alarmed
    assert len(harness.slack.received) == 1
    assert len(harness.sns_messages()) == 1


def test_a_permanently_failing_webhook_fails_the_invocation_but_not_the_topic(harness: Harness) -> None:
    harness.slack.otherwise = Response("no_service", 404)
    event = load_event("notify_scan_verdict_blocked")

    for _attempt in range(2):  # the invocation and Lambda's first retry
        with pytest.raises(
            harness.app.DeliveryFailed, match="slack: SlackDeliveryFailed: Slack webhook answered 404 no_service"
        ):
            harness.invoke(event)
    last = harness.invoke(event)  # Lambda's last retry: kept for replay instead of lost

    assert last["channels"]["slack"]["status"] == "kept"
    assert len(harness.sns_messages()) == 1
    assert harness.slack.accepted == []
    assert len(harness.slack.received) == 3


def test_an_unreachable_webhook_still_lets_the_topic_deliver(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        app, queue_url = start(monkeypatch, "http://127.0.0.1:9/services/T0/B0/unreachable")
        app.channels["slack"].webhook._handlers = []  # no backoff waits against a closed port
        with pytest.raises(app.DeliveryFailed, match="could not reach the Slack webhook"):
            app.handler(load_event("codebuild_failed"), FakeLambdaContext(function_name="notify"))
        assert len(boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]) == 1


# --- SNS faults --------------------------------------------------------------------------


def test_sns_throttling_is_retried_by_lambda_and_neither_channel_repeats(harness: Harness) -> None:
    event = load_event("notify_scan_verdict_blocked")
    with Stubber(clients.client("sns")) as sns:
        sns.add_client_error("publish", service_error_code="Throttling", http_status_code=400)
        sns.add_response(
            "publish",
            {"MessageId": "m-1"},
            {"TopicArn": ANY, "Subject": ANY, "Message": ANY, "MessageStructure": "json", "MessageAttributes": ANY},
        )

        with pytest.raises(harness.app.DeliveryFailed, match="sns: PublishThrottled"):
            harness.invoke(event)
        result = harness.invoke(event)  # Lambda's retry

        sns.assert_no_pending_responses()
    assert result["channels"]["sns"] == {"message_id": "m-1"}
    assert len(harness.slack.accepted) == 1
    assert len(harness.slack.received) == 1


def test_without_a_webhook_secret_only_the_topic_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        app, _ = start(monkeypatch, None)
        result = app.handler(load_event("codebuild_failed"), FakeLambdaContext(function_name="notify"))
        assert set(result["channels"]) == {"sns"}


# --- the secret --------------------------------------------------------------------------


def test_the_webhook_url_appears_in_no_log_output(
    harness: Harness, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # The stand-in server's access log is Slack's side of the wire, not the function's output.
    caplog.set_level(logging.ERROR, logger="werkzeug")
    caplog.set_level(logging.DEBUG)  # every library's DEBUG records too: botocore, slack_sdk, Powertools
    function_log = io.StringIO()  # the JSON lines the function itself writes, as CloudWatch would get them
    handler = harness.app.logger.registered_handler
    previous_stream = handler.setStream(function_log)
    harness.app.logger.setLevel("DEBUG")
    try:
        harness.slack.script = [
            Response("rate_limited", 429, headers={"Retry-After": "0"}),
            Response("rollup_error", 500),
        ]
        results = [harness.invoke(load_event("notify_scan_verdict_blocked"))]
        harness.slack.otherwise = Response(f"no_service {harness.webhook_url}", 404)
        with pytest.raises(harness.app.DeliveryFailed) as failed:
            harness.invoke(load_event("codebuild_failed"))
    finally:
        harness.app.logger.setLevel("INFO")
        handler.setStream(previous_stream)

    captured = capfd.readouterr()
    records = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    everything = "\n".join(
        [function_log.getvalue(), records, captured.out, captured.err, str(failed.value), str(results)]
    )
    assert "notification not delivered" in function_log.getvalue()  # the failure was logged
    assert "GetSecretValue" in records  # the secret was read while DEBUG records were captured
    assert len(harness.slack.received) == 4  # and the webhook was really called, answering with the URL
    secret_part = WEBHOOK_PATH.rsplit("/", 1)[1]
    assert secret_part not in everything
